"""instant-ngp / nerfstudio scenes: one ``transforms.json``.

Intrinsics ``fl_x, fl_y, cx, cy, w, h`` are read per frame, falling back to the
top level (nerfstudio writes them once; instant-ngp either way);
``camera_angle_x`` / ``camera_angle_y`` stand in for missing focal lengths, and
the image size for a missing ``w`` / ``h``. The frames form one set of views, so
every 8th is held out for test.

Bounds follow instant-ngp, which maps a world point ``p`` to ``p * scale + offset``
(defaults 0.33 and 0.5) and marches in the unit cube grown ``aabb_scale`` times
about its centre: the box here is that cube in world coordinates, and near/far
span the box as seen from every camera.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spiknerf.errors import InputError
from spiknerf.limits import Budget
from spiknerf.nerf.data.confine import SceneFolder, shown
from spiknerf.nerf.data.frames import frame_images, frame_list, frame_poses, number, read_json
from spiknerf.nerf.data.framing import SCENE_KINDS, Hints
from spiknerf.nerf.data.images import load_image_files
from spiknerf.nerf.data.poses import MAX_COORDINATE
from spiknerf.nerf.data.scene import Scene, hold_out, holdout_order, lens_distortion, make_split, scale_intrinsics
from spiknerf.nerf.distortion import COEFFICIENTS
from spiknerf.nerf.rays import focal_from_fov

FILENAME = "transforms.json"
NGP_SCALE, NGP_OFFSET = 0.33, 0.5
UNSUPPORTED_MODELS = ("OPENCV_FISHEYE", "FISHEYE", "EQUIRECTANGULAR")
FISHEYE_KEYS = ("k4",)  # OPENCV_FISHEYE's last coefficient; that model is refused, a stray k4 is noted


def _lookup(frame: dict[str, Any], meta: dict[str, Any], key: str, path: Path, i: int) -> float | None:
    """A per-frame value, else the top-level one, else None."""
    value = number(frame, key, path, f"frame {i}: ")
    return value if value is not None else number(meta, key, path)


def _not_negative(value: float | None, key: str, path: Path, i: int) -> float | None:
    if value is not None and value < 0:
        raise InputError(f"{path}: frame {i}: {key} must not be negative (got {value})")
    return value


def _angle(frame: dict[str, Any], meta: dict[str, Any], key: str, path: Path, i: int) -> float | None:
    value = _lookup(frame, meta, key, path, i)
    if value is not None and not 0 < value < math.pi:
        raise InputError(f"{path}: frame {i}: {key} must be in (0, pi) radians (got {value})")
    return value


def frame_intrinsics(
    frame: dict[str, Any], meta: dict[str, Any], path: Path, i: int, image_size: tuple[int, int]
) -> np.ndarray:
    """(fx, fy, cx, cy) of frame ``i`` for images of ``image_size = (H, W)``.

    Values are given for the frame's declared ``w`` x ``h`` (the image size when
    not declared) and rescaled to the actual images.
    """
    H, W = image_size
    w = _not_negative(_lookup(frame, meta, "w", path, i), "w", path, i) or W
    h = _not_negative(_lookup(frame, meta, "h", path, i), "h", path, i) or H
    fx = _lookup(frame, meta, "fl_x", path, i)
    fy = _lookup(frame, meta, "fl_y", path, i)
    if fx is None:
        angle_x = _angle(frame, meta, "camera_angle_x", path, i)
        fx = focal_from_fov(w, angle_x) if angle_x is not None else None
    if fy is None:
        angle_y = _angle(frame, meta, "camera_angle_y", path, i)
        fy = focal_from_fov(h, angle_y) if angle_y is not None else fx
    if fx is None:
        raise InputError(f"{path}: frame {i}: no focal length (fl_x or camera_angle_x)")
    if fx <= 0 or fy <= 0:
        raise InputError(f"{path}: frame {i}: focal lengths must be positive (got {fx}, {fy})")
    cx = _lookup(frame, meta, "cx", path, i)
    cy = _lookup(frame, meta, "cy", path, i)
    declared = np.array([fx, fy, w / 2 if cx is None else cx, h / 2 if cy is None else cy])
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values are refused just below
        intrinsics = scale_intrinsics(declared, (h, w), (H, W))
    if not np.isfinite(intrinsics).all():
        raise InputError(f"{path}: frame {i}: intrinsics {declared.tolist()} for {w} x {h} pixels are out of range")
    return intrinsics


def ngp_box(meta: dict[str, Any], path: Path) -> np.ndarray:
    """instant-ngp's marching box in world coordinates, ``[6]``; an empty, inverted or unbounded box is refused."""
    scale = number(meta, "scale", path)
    k = number(meta, "aabb_scale", path)
    for key, value in (("scale", scale), ("aabb_scale", k)):
        if value is not None and value <= 0:
            raise InputError(f"{path}: {key} must be positive (got {value})")
    scale, k = scale or NGP_SCALE, k or 1.0
    offset = meta.get("offset", [NGP_OFFSET] * 3)
    try:
        offset = np.array(offset, dtype=np.float64).reshape(3)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise InputError(f"{path}: offset must be 3 numbers (got {shown(offset)})") from None
    if not np.isfinite(offset).all():
        raise InputError(f"{path}: offset must be 3 finite numbers (got {offset.tolist()})")
    with np.errstate(over="ignore", invalid="ignore"):  # an unbounded box is refused just below
        lo = (0.5 - k / 2 - offset) / scale
        hi = (0.5 + k / 2 - offset) / scale
    box = np.concatenate([lo, hi])
    if not np.abs(box).max() <= MAX_COORDINATE or not (lo < hi).all():
        raise InputError(f"{path}: scale {scale}, aabb_scale {k} and offset {offset.tolist()} give no usable box")
    return box


def spiknerf_block(meta: dict[str, Any], path: Path) -> tuple[str | None, np.ndarray | None]:
    """The scene kind and world box a ``"spiknerf"`` block declares (each None when absent):
    ``{"scene_kind": "forward" | "object" | "unbounded", "aabb": [xmin, ymin, zmin, xmax, ymax, zmax]}``."""
    block = meta.get("spiknerf")
    if block is None:
        return None, None
    if not isinstance(block, dict):
        raise InputError(f"{path}: 'spiknerf' must be an object (got {shown(block)})")
    unknown = sorted(set(block) - {"scene_kind", "aabb"})
    if unknown:
        raise InputError(f"{path}: spiknerf: unknown key {shown(unknown[0])} (expected scene_kind, aabb)")
    kind = block.get("scene_kind")
    if kind is not None and kind not in SCENE_KINDS:
        raise InputError(f"{path}: spiknerf: scene_kind must be one of {', '.join(SCENE_KINDS)} (got {shown(kind)})")
    aabb = block.get("aabb")
    if aabb is not None:
        values = aabb if isinstance(aabb, list) and len(aabb) == 6 else None
        if values is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise InputError(f"{path}: spiknerf: aabb must be 6 numbers [xmin, ymin, zmin, xmax, ymax, zmax] "
                             f"(got {shown(aabb)})")
        aabb = np.array(values, dtype=np.float64)
        if not np.abs(aabb).max() <= MAX_COORDINATE or not (aabb[:3] < aabb[3:]).all():
            raise InputError(f"{path}: spiknerf: aabb {aabb.tolist()} is not a box (each min below its max, finite)")
    return kind, aabb


def load_ngp(folder: Path, downscale: int, cache_dir: Path, background: str, budget: Budget) -> Scene:
    """A ``transforms.json`` scene."""
    scene = SceneFolder(folder)
    path = scene.file(FILENAME, "scene file")
    meta = read_json(path)
    model = meta.get("camera_model", "OPENCV")
    if model in UNSUPPORTED_MODELS:
        raise InputError(f"{path}: camera_model {model} is not supported (pinhole cameras only)")
    frames = frame_list(meta, path)
    files = frame_images(scene, frames, path)
    names = [str(p.relative_to(folder)) for p in files]
    c2w = frame_poses(frames, names, path)
    order = holdout_order(len(frames))
    files, names, c2w = [files[i] for i in order], [names[i] for i in order], c2w[order]
    stack = load_image_files(files, downscale, cache_dir, f"{folder.name}-all", budget)
    intrinsics = np.stack([frame_intrinsics(frames[i], meta, path, i, stack.source_size) for i in order])
    intrinsics = scale_intrinsics(intrinsics, stack.source_size, stack.images.shape[1:3])
    coeffs = np.array([[_lookup(frames[i], meta, k, path, i) or 0.0 for k in COEFFICIENTS] for i in order])
    distortion, lens_note = lens_distortion(coeffs, intrinsics, stack.images.shape[1:3], names, str(path))
    views = make_split(stack.images, c2w, intrinsics, names, distortion=distortion)
    train, test, holdout_note = hold_out(views, "one set of views")
    kind, aabb = spiknerf_block(meta, path)
    notes = [holdout_note]
    notes += [lens_note] if lens_note else []
    if any(_lookup(f, meta, k, path, i) for k in FISHEYE_KEYS for i, f in enumerate(frames)):
        notes.append(f"lens coefficient {', '.join(FISHEYE_KEYS)} ignored (a fisheye's; the model here is OpenCV's "
                     "radial-tangential)")
    notes += [stack.note] if stack.note else []
    return Scene(
        name=folder.name,
        format="ngp",
        splits={"train": train, "test": test},
        aabb=torch.zeros(6),  # the framing sets it
        near=0.0,
        far=1.0,
        background=background,
        ndc=False,
        notes=notes,
        path=folder,
        downscale=downscale,
        hints=Hints(alpha=stack.images.shape[-1] == 4, kind=kind, aabb=aabb, format_box=ngp_box(meta, path)),
    )
