"""LLFF scenes: ``poses_bounds.npy`` with ``images/`` (and ``images_N/``).

``poses_bounds.npy`` holds one row of 17 numbers a view: a 3x5 matrix
``[R | t | (H, W, f)]`` whose rotation columns are (down, right, backwards), then
the near and far depth bounds of the view's content. Loading:

1. columns reordered to (right, up, backwards), the OpenGL convention;
2. each view's own (H, W, f): COLMAP may estimate a camera per photo, and a
   file that repeats the first camera's focal length for every row reads the same;
   where the folder keeps COLMAP's model (``sparse/0``), each photo's camera
   (focal lengths, principal point, lens) comes from it instead
   (:mod:`spiknerf.nerf.data.colmap`): LLFF's tools write camera 1's focal
   length into every row;
3. translations and bounds scaled by ``1 / min bound``, so that scenes of any
   unit come out alike (the nearest content at depth 1);
4. the bounds handed to the framing (:mod:`spiknerf.nerf.data.framing`), which
   decides from the poses whether the capture is forward-facing (recentred,
   NDC) or taken around an object; LLFF folders hold both kinds.

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
from spiknerf.nerf.data import colmap
from spiknerf.nerf.data.arrays import read_npy_file
from spiknerf.nerf.data.confine import SceneFolder
from spiknerf.nerf.data.framing import Hints
from spiknerf.nerf.data.images import load_image_files
from spiknerf.nerf.data.poses import MAX_COORDINATE, check_poses
from spiknerf.nerf.data.scene import Scene, hold_out, holdout_order, lens_distortion, make_split

FILENAME = "poses_bounds.npy"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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
    """An LLFF scene in world space, its depth bounds as hints for the framing."""
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
        scale = 1.0 / bounds.min()
        c2w[:, :3, 3] *= scale
    if not np.abs(c2w).max() <= MAX_COORDINATE:  # also catches nan and inf
        raise InputError(f"{path}: scaled by 1 / (nearest bound), the poses are out of range")
    stack = load_image_files(files, factor, cache_dir, f"{folder.name}-{image_dir.name}", budget)
    # each row has its own (H, W, focal), for images of H x W
    H, W, f = raw[:, :, 4].T
    h, w = stack.images.shape[1:3]
    intrinsics = np.stack([f * w / W, f * h / H, np.full_like(f, w / 2), np.full_like(f, h / 2)], axis=1)
    distortion = None
    model = [scene.existing_file(f"{colmap.MODEL}/{n}", "COLMAP model") for n in ("cameras.bin", "images.bin")]
    if model[0] is not None and model[1] is not None:  # the photos' own cameras, where COLMAP has them
        cameras, note = colmap.photo_cameras(model[0], model[1], names)
        if cameras is not None:
            intrinsics, coeffs = colmap.intrinsics_for(cameras, (h, w))
            distortion, lens_note = lens_distortion(coeffs, intrinsics, (h, w), names, str(model[0]))
            notes += [lens_note] if lens_note else []
        notes.append(note)
    views = make_split(stack.images, c2w, intrinsics, names, distortion=distortion)
    train, test, holdout_note = hold_out(views, "LLFF has no test split")
    notes += [holdout_note, f"poses and depth bounds scaled by {scale:.4g} (the nearest bound at 1)"]
    notes += [stack.note] if stack.note else []
    return Scene(
        name=folder.name,
        format="llff",
        splits={"train": train, "test": test},
        aabb=torch.zeros(6),  # the framing sets it
        near=0.0,
        far=1.0,
        background=background,
        ndc=False,
        notes=notes,
        path=folder,
        downscale=downscale,
        hints=Hints(depths=bounds[order] * scale),
    )
