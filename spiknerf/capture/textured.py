"""A generated capture with known cameras, for checking estimated poses: the built-in scene, finely textured.

The built-in scene's textures vary smoothly (a NeRF learns them quickly), which
leaves a feature detector a few dozen corners per view: too few to pose the
cameras. Here every surface's albedo is multiplied by a colour-cell texture
(3D cells of side ``cell``, each a hashed colour; :data:`CELL` suits 400 x 300
views, smaller images need larger cells), so that every view is full of
corners, as a real object's surface is. ``background=True`` encloses the
shapes in a textured sphere of radius :data:`ENVIRONMENT_RADIUS` (an all-around
scene with a background, unbounded in NeRF terms).

Cameras circle the shapes in capture order, as a person walking around them
would take photos: one turn (or ``arc_deg``) of a rising spiral from :data:`ELEVATION_DEG`
low to high, at :data:`builtin.CAMERA_RADIUS`, with a small seeded jitter. The capture
folder holds ``images/`` (RGB on white) and a ``transforms.json`` with the true
cameras, which :func:`spiknerf.nerf.data.load_scene` reads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from spiknerf.errors import InputError
from spiknerf.nerf.data import builtin
from spiknerf.nerf.data.images import downscale_float, quantize
from spiknerf.nerf.data.ngp import NGP_SCALE
from spiknerf.nerf.rays import focal_from_fov, look_at, pixel_rays

CELL = 0.05  # side of a texture cell, scene units (the shapes span about 3); 0.08 left views unposed
ENVIRONMENT_RADIUS = 8.0
ENVIRONMENT_CELL = 0.6
ELEVATION_DEG = (15.0, 55.0)
JITTER = 0.1  # scene units of random offset of each camera and of its look-at point
_PRIMES = (73856093, 19349663, 83492791)


def cell_colour(p: Tensor, cell: float) -> Tensor:
    """A colour in [0.25, 1] per 3D cell of side ``cell`` containing each point ``p [n, 3]``, ``[n, 3]``."""
    k = torch.floor(p / cell).to(torch.int64)
    channels = []
    for salt in (0, 1, 2):
        h = (k[:, 0] * _PRIMES[salt]) ^ (k[:, 1] * _PRIMES[(salt + 1) % 3]) ^ (k[:, 2] * _PRIMES[(salt + 2) % 3])
        h = (h ^ (h >> 13)) * 1274126177
        channels.append(((h >> 7) & 0xFFFF).to(torch.float32) / 65535.0)
    return 0.25 + 0.75 * torch.stack(channels, -1)


def textured_shapes(background: bool = False, cell: float = CELL) -> list[builtin.Shape]:
    """The built-in scene's shapes with cell-textured albedos, inside a textured sphere when ``background``."""
    def textured(base):
        return lambda p, n: base(p, n) * cell_colour(p, cell)

    shapes = [builtin.Shape(s.hit, textured(s.albedo), s.specular, s.shininess) for s in builtin.scene_shapes()]
    if background:
        centre = torch.zeros(3)
        shapes.append(builtin.Shape(
            lambda o, d: builtin.hit_sphere(o, d, centre, ENVIRONMENT_RADIUS),
            lambda p, n: 0.8 * cell_colour(p, ENVIRONMENT_CELL), 0.0, 1.0))
    return shapes


def capture_cameras(count: int, seed: int = 0, arc_deg: float = 360.0) -> list[Tensor]:
    """``count`` camera-to-world matrices (OpenGL) on ``arc_deg`` of a rising spiral around the shapes."""
    rng = np.random.default_rng(seed)
    lo, hi = (math.radians(e) for e in ELEVATION_DEG)
    cameras = []
    for i in range(count):
        azimuth = math.radians(arc_deg) * i / count
        elevation = lo + (hi - lo) * i / max(count - 1, 1)
        eye = builtin.CAMERA_RADIUS * np.array(
            [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
        eye, target = eye + rng.normal(0, JITTER, 3), rng.normal(0, JITTER, 3)
        cameras.append(look_at(torch.tensor(eye, dtype=torch.float32), torch.tensor(target, dtype=torch.float32),
                               torch.tensor([0.0, 0.0, 1.0])))
    return cameras


def render_rgb(shapes: list[builtin.Shape], c2w: Tensor, width: int, height: int, supersample: int) -> np.ndarray:
    """One uint8 RGB view, on white where no shape is hit, with ``supersample``² rays a pixel."""
    w, h = width * supersample, height * supersample
    f = focal_from_fov(w, builtin.CAMERA_ANGLE_X)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    o, d = pixel_rays(c2w, torch.tensor([f, f, w / 2, h / 2]), xs.reshape(-1), ys.reshape(-1))
    rgb, alpha = builtin.shade(shapes, o, d)
    rgb = rgb + (1.0 - alpha.unsqueeze(-1))  # shade() leaves misses black; white shows through instead
    image = rgb.reshape(h, w, 3).numpy()
    return quantize(downscale_float(image, (height, width)) if supersample > 1 else image)


def write_capture(out: str | os.PathLike, views: int = 24, width: int = 400, height: int = 300,
                  supersample: int = 2, background: bool = False, seed: int = 0, arc_deg: float = 360.0,
                  cell: float = CELL) -> Path:
    """Render a capture into the new folder ``out``: ``images/`` and the true cameras in ``transforms.json``.

    The folder appears complete or not at all (written under a temporary name beside it, then renamed).
    """
    out = Path(out)
    if views < 1 or width < 8 or height < 8 or supersample < 1:
        raise InputError("a capture needs views >= 1, width and height >= 8 and supersample >= 1")
    if out.exists():
        raise InputError(f"{out} already exists; choose another folder")
    with builtin.rendering_into(out) as tmp:
        (tmp / "images").mkdir()
        shapes = textured_shapes(background, cell)
        frames = []
        for i, c2w in enumerate(tqdm(capture_cameras(views, seed, arc_deg), desc="render capture", unit="view")):
            name = f"images/view_{i:03d}.png"
            iio.imwrite(tmp / name, render_rgb(shapes, c2w, width, height, supersample))
            frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
        f = focal_from_fov(width, builtin.CAMERA_ANGLE_X)
        meta = {"camera_model": "OPENCV", "fl_x": f, "fl_y": f, "cx": width / 2, "cy": height / 2,
                "w": width, "h": height, "frames": frames,
                "generator": {"name": "textured-shapes", "views": views, "width": width, "height": height,
                              "supersample": supersample, "background": background, "seed": seed,
                              "arc_deg": arc_deg, "cell": cell}}
        if background:  # instant-ngp's box grown to hold the environment sphere
            meta["aabb_scale"] = 2 * ENVIRONMENT_RADIUS * NGP_SCALE
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out

