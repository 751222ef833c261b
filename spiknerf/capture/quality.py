"""Two scenes that tell what estimated poses cost: trained alike, scored on the very same views and pixels.

Given a capture whose cameras are known (``transforms.json`` and ``images/``, as
:mod:`spiknerf.capture.textured` writes) and the folder ``spiknerf process`` made
of its images, :func:`write_quality_scenes` writes

* ``true``: every view with its true camera;
* ``estimated``: the training views as ``process`` wrote them (its images, poses
  and lens), the held-out views with their true cameras;

both in ``process``'s frame, with its scene kind and box. Only the training
cameras differ, so the difference in test PSNR is what the estimated cameras
cost. The true cameras are brought into that frame by the similarity that best
aligns the true training cameras' centres with the estimated ones
(:func:`~spiknerf.capture.accuracy.umeyama`); the held-out views take no part in
it, as a held-out view would not. Both scenes list the views in the capture's
order, so the loader holds out the same every-8th views in both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from spiknerf.atomic import write_json_atomic
from spiknerf.capture.accuracy import umeyama
from spiknerf.nerf.data.scene import HOLDOUT

LENS_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "p1", "p2")


def alignment(true: dict[str, np.ndarray], estimated: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """The similarity ``[4, 4]`` taking the true frame onto the estimated one, fitted on the centres of ``names``."""
    src = np.stack([true[n][:3, 3] for n in names])
    dst = np.stack([estimated[n][:3, 3] for n in names])
    scale, rotation, shift = umeyama(src, dst)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = scale * rotation, shift
    return m


def moved(m: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """A camera-to-world ``[4, 4]`` moved by the similarity ``m`` (it stays a rotation; its centre moves)."""
    scale = np.cbrt(np.linalg.det(m[:3, :3]))
    out = np.eye(4)
    out[:3, :3] = m[:3, :3] @ c2w[:3, :3] / scale
    out[:3, 3] = m[:3, :3] @ c2w[:3, 3] + m[:3, 3]
    return out


def lens(meta: dict[str, Any]) -> dict[str, float]:
    """The camera of a ``transforms.json`` (top level) as per-frame fields, absent coefficients 0."""
    return {k: meta.get(k, 0.0) for k in LENS_KEYS}


def write_quality_scenes(capture: Path, processed: Path, out: Path) -> dict[str, Path]:
    """Write ``out/true`` and ``out/estimated`` (see the module's doc); their paths by name.

    Every view of the capture must have been posed by ``process``.
    """
    truth = json.loads((capture / "transforms.json").read_text())
    made = json.loads((processed / "transforms.json").read_text())
    names = [Path(f["file_path"]).name for f in truth["frames"]]
    true_c2w = {Path(f["file_path"]).name: np.array(f["transform_matrix"]) for f in truth["frames"]}
    est_c2w = {f["source"]: np.array(f["transform_matrix"]) for f in made["frames"]}
    est_file = {f["source"]: f["file_path"] for f in made["frames"]}
    missing = [n for n in names if n not in est_c2w]
    if missing:
        raise ValueError(f"{processed}: views without an estimated pose: {', '.join(missing[:5])}")
    test = {n for i, n in enumerate(names) if i % HOLDOUT == 0}
    m = alignment(true_c2w, est_c2w, [n for n in names if n not in test])
    framing = {"spiknerf": made["spiknerf"], "camera_model": "OPENCV"}
    true_lens, est_lens = lens(truth), lens(made)
    paths = {}
    for side in ("true", "estimated"):
        folder = out / side
        (folder / "images").mkdir(parents=True, exist_ok=True)
        frames = []
        for n in names:
            if side == "estimated" and n not in test:
                shutil.copyfile(processed / est_file[n], folder / "images" / n)
                frames.append({"file_path": f"images/{n}", "transform_matrix": est_c2w[n].tolist(), **est_lens})
            else:
                shutil.copyfile(capture / "images" / n, folder / "images" / n)
                frames.append({"file_path": f"images/{n}", "transform_matrix": moved(m, true_c2w[n]).tolist(),
                               **true_lens})
        write_json_atomic(folder / "transforms.json", {**framing, "frames": frames})
        paths[side] = folder
    return paths
