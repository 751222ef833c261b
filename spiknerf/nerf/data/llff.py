"""LLFF forward-facing scenes: ``poses_bounds.npy`` with ``images/`` (and ``images_N/``).

``poses_bounds.npy`` holds one row of 17 numbers a view: a 3x5 matrix
``[R | t | (H, W, f)]`` whose rotation columns are (down, right, backwards), then
the near and far depth bounds. Loading follows the original NeRF code's
forward-facing path:

1. columns reordered to (right, up, backwards), the OpenGL convention;
2. translations and bounds scaled by ``1 / (0.75 * min bound)`` so the nearest
   content sits beyond the NDC near plane at depth 1;
3. poses recentred on their average pose (``recenter_poses``);
4. rays mapped to NDC (:func:`spiknerf.nerf.rays.to_ndc`), marched for ``t`` in [0, 1].

``--downscale N`` reads ``images_N/`` when it exists (intrinsics scaled by the
actual image size), else area-downscales ``images/`` into the cache. Every 8th
view is held out for test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from spiknerf.errors import InputError
from spiknerf.limits import Budget
from spiknerf.nerf.data.arrays import read_npy_file
from spiknerf.nerf.data.confine import SceneFolder
from spiknerf.nerf.data.images import load_image_files
from spiknerf.nerf.data.poses import MAX_COORDINATE, check_poses
from spiknerf.nerf.data.scene import Scene, hold_out, holdout_order, make_split, scale_intrinsics

FILENAME = "poses_bounds.npy"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BOUND_MARGIN = 0.75  # the original code's bd_factor
NDC_AABB = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def _normalize(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    if not 1e-9 < norm < np.inf:  # e.g. cameras looking in directions that cancel out
        raise InputError("the cameras have no average orientation to recentre on")
    return v / norm


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """``[4, 4]`` pose at the mean camera centre, looking along the summed viewing axes."""
    z = _normalize(c2w[:, :3, 2].sum(0))
    up = c2w[:, :3, 1].sum(0)
    x = _normalize(np.cross(up, z))
    y = _normalize(np.cross(z, x))
    avg = np.eye(4)
    avg[:3, 0], avg[:3, 1], avg[:3, 2], avg[:3, 3] = x, y, z, c2w[:, :3, 3].mean(0)
    return avg


def recenter(c2w: np.ndarray) -> np.ndarray:
    """Poses ``[N, 4, 4]`` expressed relative to their average pose."""
    return np.linalg.inv(average_pose(c2w)) @ c2w


def image_files(scene: SceneFolder, name: str) -> list[Path]:
    """The image files of the scene's subfolder ``name``, sorted by name; each must stay inside the scene."""
    folder = scene.file(name, "image folder")
    entries = sorted(e.name for e in os.scandir(folder) if Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
    files = [scene.file(f"{name}/{entry}", "image") for entry in entries]
    return [p for p in files if p.is_file()]


def read_poses_bounds(path: Path, budget: Budget) -> tuple[np.ndarray, np.ndarray]:
    """(raw 3x5 poses ``[N, 3, 5]``, bounds ``[N, 2]``) from ``poses_bounds.npy``, validated."""

    def check(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if len(shape) != 2 or shape[1] != 17:
            raise InputError(f"{path}: expected an [N, 17] array (got shape {shape})")
        if shape[0] == 0:
            raise InputError(f"{path}: zero frames")
        budget.take(shape[0] * 17 * (dtype.itemsize + 8), f"{path}: {shape[0]} poses")

    data = read_npy_file(path, check).astype(np.float64)
    if not np.isfinite(data).all():
        rows = np.flatnonzero(~np.isfinite(data).all(1))
        raise InputError(f"{path}: view {rows[0]} has non-finite values")
    poses, bounds = data[:, :15].reshape(-1, 3, 5), data[:, 15:]
    if (bounds <= 0).any() or (poses[:, :, 4] <= 0).any():
        raise InputError(f"{path}: bounds and (H, W, focal) must be positive")
    return poses, bounds


def load_llff(folder: Path, downscale: int, cache_dir: Path, background: str, budget: Budget) -> Scene:
    """A forward-facing LLFF scene with NDC rays."""
    scene = SceneFolder(folder)
    path = scene.file(FILENAME, "scene file")
    raw, bounds = read_poses_bounds(path, budget)
    notes = []
    pre = scene.file(f"images_{downscale}", "image folder") if downscale > 1 else None
    if pre is not None and pre.is_dir():
        image_dir, factor = pre, 1
        notes.append(f"read the pre-downscaled {pre.name}/")
    else:
        image_dir, factor = scene.file("images", "image folder"), downscale
    if not image_dir.is_dir():
        raise InputError(f"{folder}: no {image_dir.name}/ folder of images beside {FILENAME}")
    files = image_files(scene, image_dir.name)
    if len(files) != len(raw):
        raise InputError(f"{path} has {len(raw)} poses but {image_dir} has {len(files)} images")
    order = holdout_order(len(files))
    files, raw = [files[i] for i in order], raw[order]
    names = [p.name for p in files]
    # (down, right, backwards) -> (right, up, backwards)
    c2w = np.concatenate([raw[:, :, 1:2], -raw[:, :, 0:1], raw[:, :, 2:4]], axis=2)
    c2w = check_poses(c2w, names, str(path)).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range poses are refused below
        scale = 1.0 / (bounds.min() * BOUND_MARGIN)
        c2w[:, :3, 3] *= scale
    try:
        c2w = recenter(c2w)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if not np.abs(c2w).max() <= MAX_COORDINATE:  # also catches nan and inf
        raise InputError(f"{path}: scaled by 1 / (0.75 x nearest bound), the poses are out of range")
    stack = load_image_files(files, factor, cache_dir, f"{folder.name}-{image_dir.name}", budget)
    H, W, f = raw[0, :, 4]
    size = stack.images.shape[1:3]
    intrinsics = scale_intrinsics(np.array([f, f, W / 2, H / 2]), (H, W), size)
    views = make_split(stack.images, c2w, np.tile(intrinsics, (len(files), 1)), names, ndc=True)
    train, test, holdout_note = hold_out(views, "LLFF has no test split")
    notes += [
        holdout_note,
        f"forward-facing: poses recentred, scene scaled by {scale:.4g} (nearest bound at 1/{BOUND_MARGIN}), "
        "rays in NDC with t in [0, 1]",
    ]
    notes += [stack.note] if stack.note else []
    return Scene(
        name=folder.name,
        format="llff",
        splits={"train": train, "test": test},
        aabb=torch.tensor(NDC_AABB),
        near=0.0,
        far=1.0,
        background=background,
        ndc=True,
        notes=notes,
        path=folder,
        downscale=downscale,
    )
