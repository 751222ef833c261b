"""``spiknerf export depth``: per test view, the expected depth and the opacity of a run's model.

For view ``i`` of the test split ``DIR`` gets:

* ``view_iii_depth.npy``: float32 ``[H, W]``, the expected depth of the surface
  the ray sees (:mod:`spiknerf.export.views`), in scene units along the ray; 0
  where the ray sees nothing;
* ``view_iii_depth.png``: the same as 16-bit integers, ``depth * depth_scale``
  rounded, with ``depth_scale = 65535 / far`` (so the far bound maps to 65535),
  and 0 where the opacity is below one half;
* ``view_iii_opacity.npy`` (float32) and ``view_iii_opacity.png`` (8-bit);

and ``cameras.json`` records, per view, its name, camera-to-world matrix
(OpenGL convention), intrinsics (fx, fy, cx, cy in pixels), and the files, plus
``depth_scale``, ``near`` and ``far``. Each file is written atomically; files of
the same names already in ``DIR`` are replaced, others are left alone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from spiknerf.atomic import atomic_path, write_json_atomic
from spiknerf.errors import InputError
from spiknerf.export.source import held_if_inside, open_run, output_folder
from spiknerf.export.views import render_view

PNG_MIN_OPACITY = 0.5


@dataclass
class DepthConfig:
    """Export the expected depth and opacity of each test view of a run (16-bit PNG and .npy)."""

    run: str = field(metadata={"help": "run directory"})
    out: str = field(metadata={"help": "output folder"})
    model: str = field(default="student", metadata={"choices": ("student", "teacher")})
    split: str = field(default="test", metadata={"help": "split whose views are exported"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def depth_png(depth: np.ndarray, opacity: np.ndarray, scale: float) -> np.ndarray:
    """uint16 ``round(depth * scale)``, 0 where the opacity is below :data:`PNG_MIN_OPACITY`."""
    value = np.clip(np.rint(depth.astype(np.float64) * scale), 0, 65535).astype(np.uint16)
    return np.where(opacity >= PNG_MIN_OPACITY, value, 0).astype(np.uint16)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _save_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")


def export_depth(cfg: DepthConfig, progress: bool = True) -> Path:
    """Write the depth maps of ``cfg``; returns the folder."""
    source = open_run(cfg.run, cfg.model, cfg.device)
    if cfg.split not in source.scene.splits:
        raise InputError(f"--split {cfg.split}: the scene has the splits {', '.join(source.scene.splits)}")
    out = output_folder(cfg.out)
    split, scene = source.scene.splits[cfg.split], source.scene
    scale = 65535.0 / scene.far
    views = []
    with held_if_inside(cfg.run, out):
        for i in tqdm(range(len(split)), desc="depth", unit="view", file=sys.stderr, dynamic_ncols=True,
                      disable=not progress):
            view = render_view(source, split, i)
            depth, opacity = view.depth.numpy().astype(np.float32), view.opacity.numpy().astype(np.float32)
            stem = f"view_{i:03d}"
            _save_npy(out / f"{stem}_depth.npy", depth)
            _save_npy(out / f"{stem}_opacity.npy", opacity)
            _save_png(out / f"{stem}_depth.png", depth_png(depth, opacity, scale))
            _save_png(out / f"{stem}_opacity.png", (np.clip(opacity, 0, 1) * 255 + 0.5).astype(np.uint8))
            views.append({"name": split.names[i], "c2w": split.c2w[i].tolist(),
                          "intrinsics": split.intrinsics[i].tolist(), "width": split.width, "height": split.height,
                          "depth": f"{stem}_depth.npy", "depth_png": f"{stem}_depth.png",
                          "opacity": f"{stem}_opacity.npy", "opacity_png": f"{stem}_opacity.png"})
        write_json_atomic(out / "cameras.json", {
            "model": cfg.model, "split": cfg.split, "depth_scale": scale, "near": scene.near, "far": scene.far,
            "depth": "expected depth of the surface seen, scene units along the ray (unit directions); "
                     "png = round(depth * depth_scale), 0 where opacity < 0.5", "views": views})
    return out


def main(cfg: DepthConfig) -> int:
    out = export_depth(cfg)
    print(f"wrote {out}")
    return 0
