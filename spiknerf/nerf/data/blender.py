"""Blender / NeRF-synthetic scenes: ``transforms_{train,val,test}.json`` with ``camera_angle_x``.

The object sits inside [-1.5, 1.5]^3 and the cameras about 4 units from the
origin, so rays are sampled between distances 2 and 6 (the original NeRF's
bounds). Images are usually RGBA with a transparent background.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from spiknerf.errors import InputError
from spiknerf.limits import Budget
from spiknerf.nerf.data.confine import SceneFolder
from spiknerf.nerf.data.frames import frame_images, frame_list, frame_poses, number, read_json
from spiknerf.nerf.data.images import load_image_files
from spiknerf.nerf.data.scene import Scene, Split, hold_out, holdout_order, make_split, scale_intrinsics
from spiknerf.nerf.rays import focal_from_fov

SPLITS: tuple[str, ...] = ("train", "val", "test")
AABB: tuple[float, ...] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
NEAR, FAR = 2.0, 6.0


def split_files(scene: SceneFolder) -> dict[str, Path]:
    """The ``transforms_<split>.json`` files present, by split name."""
    files = {s: scene.existing_file(f"transforms_{s}.json", "scene file") for s in SPLITS}
    return {s: path for s, path in files.items() if path is not None}


def is_blender(folder: Path) -> bool:
    """Whether ``folder`` holds any ``transforms_<split>.json``."""
    return bool(split_files(SceneFolder(folder)))


def load_split(
    scene: SceneFolder, path: Path, downscale: int, cache_dir: Path, label: str, budget: Budget,
    for_holdout: bool = False,
) -> tuple[Split, str | None]:
    """One ``transforms_<split>.json`` and its images; the note says where downscaled images came from.

    ``for_holdout`` loads the views in :func:`holdout_order`, ready for :func:`hold_out`.
    """
    meta = read_json(path)
    angle = number(meta, "camera_angle_x", path)
    if angle is None:
        raise InputError(f"{path}: camera_angle_x is missing")
    if not 0 < angle < math.pi:
        raise InputError(f"{path}: camera_angle_x must be in (0, pi) radians (got {angle})")
    frames = frame_list(meta, path)
    files = frame_images(scene, frames, path)
    names = [p.name for p in files]
    c2w = frame_poses(frames, names, path)
    if for_holdout:
        order = holdout_order(len(frames))
        files, names, c2w = [files[i] for i in order], [names[i] for i in order], c2w[order]
    stack = load_image_files(files, downscale, cache_dir, label, budget)
    H, W = stack.source_size
    f = focal_from_fov(W, angle)  # square pixels: one focal length from the horizontal field of view
    intrinsics = scale_intrinsics(np.array([f, f, W / 2, H / 2]), (H, W), stack.images.shape[1:3])
    return make_split(stack.images, c2w, np.tile(intrinsics, (len(files), 1)), names), stack.note


def load_blender(folder: Path, downscale: int, cache_dir: Path, background: str, budget: Budget) -> Scene:
    """A Blender-format scene; a missing test split is taken from val, else held out of train."""
    splits: dict[str, Split] = {}
    notes: list[str] = []
    scene = SceneFolder(folder)
    files = split_files(scene)
    present = list(files)
    if "train" not in present:
        raise InputError(f"{folder}: transforms_train.json is missing (found {', '.join(present)})")
    holdout = present == ["train"]
    for name, path in files.items():
        splits[name], note = load_split(scene, path, downscale, cache_dir, f"{folder.name}-{name}", budget, holdout)
        notes += [note] if note else []
    if holdout:
        splits["train"], splits["test"], note = hold_out(splits["train"], "only a train split")
        notes.append(note)
    elif "test" not in splits:
        splits["test"] = splits["val"]
        notes.append("no test split: the val views are used for test")
    return Scene(
        name=folder.name,
        format="blender",
        splits=splits,
        aabb=torch.tensor(AABB),
        near=NEAR,
        far=FAR,
        background=background,
        ndc=False,
        notes=notes,
        path=folder,
        downscale=downscale,
    )
