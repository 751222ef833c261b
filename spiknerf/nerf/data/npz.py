"""tiny-NeRF ``.npz`` scenes: arrays ``images [N, H, W, C]``, ``poses [N, 4, 4]``, ``focal``.

Images may be uint8 or float in [0, 1]; ``focal`` is one number in pixels (or
one a view). The views form one set, so every 8th is held out for test. The
file carries no bounds; tiny-NeRF is a downscaled Blender lego, so the Blender
bounds apply (box [-1.5, 1.5]^3, near 2, far 6).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from spiknerf.errors import InputError
from spiknerf.limits import Budget
from spiknerf.nerf.data.arrays import read_npz as read_arrays
from spiknerf.nerf.data.blender import AABB, FAR, NEAR
from spiknerf.nerf.data.images import check_layout, check_pixels, load_stack, to_uint8
from spiknerf.nerf.data.poses import check_poses
from spiknerf.nerf.data.scene import Scene, hold_out, holdout_order, make_split, scale_intrinsics

KEYS: tuple[str, ...] = ("images", "poses", "focal")


def read_npz(path: Path, budget: Budget) -> dict[str, np.ndarray]:
    """The arrays ``images``, ``poses`` and ``focal`` of ``path``, shapes and sizes checked before reading."""
    shapes: dict[str, tuple[int, ...]] = {}

    def check(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        n = shapes["images"][0] if shapes else None
        if key == "images":
            if len(shape) != 4:
                raise InputError(f"{path}: images must be [N, H, W, C] (got shape {shape})")
            if shape[0] == 0:
                raise InputError(f"{path}: zero frames")
            check_layout(dtype, shape[1:], f"{path}: images")
            check_pixels(shape[2], shape[1], f"{path}: images")
        elif key == "poses" and shape[:1] != (n,):
            raise InputError(f"{path}: {n} images but {shape[0] if shape else 'no'} poses")
        elif key == "focal" and math.prod(shape) not in (1, n):
            raise InputError(f"{path}: focal must be one number or one a view (got shape {shape})")
        shapes[key] = shape
        budget.take(math.prod(shape) * dtype.itemsize, f"{path}: {key} {shape} {dtype}")

    arrays = read_arrays(path, KEYS, check)
    if not np.isfinite(arrays["focal"]).all() or (arrays["focal"] <= 0).any():
        raise InputError(f"{path}: focal must be positive and finite")
    return arrays


def load_npz(path: Path, downscale: int, cache_dir: Path, background: str, budget: Budget) -> Scene:
    """A tiny-NeRF ``.npz`` scene."""
    arrays = read_npz(path, budget)
    images = arrays["images"]
    order = holdout_order(len(images))
    names = [f"{path.name}[{i}]" for i in order]
    c2w = check_poses(arrays["poses"][order], names, str(path))

    def read(i: int) -> np.ndarray:
        return to_uint8(images[order[i]], names[i])

    stack = load_stack(names, read, images.shape[1:], [path], downscale, cache_dir, path.stem, budget)
    H, W = stack.source_size
    focal = np.broadcast_to(arrays["focal"].astype(np.float64).reshape(-1), (len(images),))[order]
    intrinsics = np.stack([focal, focal, np.full_like(focal, W / 2), np.full_like(focal, H / 2)], axis=1)
    intrinsics = scale_intrinsics(intrinsics, (H, W), stack.images.shape[1:3])
    train, test, holdout_note = hold_out(make_split(stack.images, c2w, intrinsics, names), "one set of views")
    notes = [holdout_note, "no bounds in a .npz: Blender bounds assumed (box [-1.5, 1.5]^3, near 2, far 6)"]
    notes += [stack.note] if stack.note else []
    return Scene(
        name=path.stem,
        format="npz",
        splits={"train": train, "test": test},
        aabb=torch.tensor(AABB),
        near=NEAR,
        far=FAR,
        background=background,
        ndc=False,
        notes=notes,
        path=path,
        downscale=downscale,
    )
