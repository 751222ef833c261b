"""The ``transforms*.json`` files shared by the Blender and instant-ngp / nerfstudio formats.

Both list ``frames``, each with a ``file_path`` (relative to the JSON's folder,
with or without an extension) and a 4x4 camera-to-world ``transform_matrix`` in
the OpenGL convention. A ``file_path`` must stay inside the scene folder
(:mod:`spiknerf.nerf.data.confine`), and no two frames may name the same file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spiknerf.errors import InputError
from spiknerf.json_input import read_json as read_json_file
from spiknerf.limits import json_byte_limit
from spiknerf.nerf.data.confine import SceneFolder, shown
from spiknerf.nerf.data.poses import check_poses

# Extensions tried, in order, when a frame's file_path has none (Blender writes "./train/r_0").
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, refused beyond :func:`spiknerf.limits.json_byte_limit` bytes."""
    # NaN and Infinity pass the parser: each value's own check then names the frame and key that holds it
    meta = read_json_file(path, json_byte_limit(), finite=False,
                          raise_hint=" (set SPIKNERF_MAX_JSON_BYTES to raise it)")
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    return meta


def number(meta: dict[str, Any], key: str, path: Path, where: str = "") -> float | None:
    """``meta[key]`` as a finite float, None when absent."""
    if key not in meta:
        return None
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{path}: {where}{key} must be a finite number (got {shown(value)})")
    return float(value)


def frame_list(meta: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The non-empty list of frame objects."""
    frames = meta.get("frames")
    if not isinstance(frames, list):
        raise InputError(f"{path}: no 'frames' list")
    if not frames:
        raise InputError(f"{path}: zero frames")
    for i, f in enumerate(frames):
        if not isinstance(f, dict):
            raise InputError(f"{path}: frame {i} is not a JSON object")
    return frames


def frame_image(scene: SceneFolder, frame: dict[str, Any], i: int, path: Path) -> Path:
    """The image file of frame ``i``, inside the scene folder; an extension is guessed when ``file_path`` has none."""
    rel = frame.get("file_path")
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{path}: frame {i} has no file_path")
    where = f"{path}: frame {i}: file_path"
    image = scene.existing_file(rel, where)
    if image is not None:
        return image
    if not Path(rel).suffix:
        for ext in IMAGE_EXTENSIONS:
            candidate = scene.existing_file(rel + ext, where)
            if candidate is not None:
                return candidate
    raise InputError(f"{path}: frame {i}: image {shown(rel, quoted=False)} not found in {scene.path}")


def frame_images(scene: SceneFolder, frames: list[dict[str, Any]], path: Path) -> list[Path]:
    """The image file of every frame (:func:`frame_image`); two frames naming one file are refused."""
    files = [frame_image(scene, f, i, path) for i, f in enumerate(frames)]
    first: dict[str, int] = {}
    for i, file in enumerate(files):
        j = first.setdefault(os.path.realpath(file), i)
        if j != i:
            raise InputError(f"{path}: frames {j} and {i} both show {file.relative_to(scene.path)}; "
                             "each frame needs its own image")
    return files


def frame_poses(frames: list[dict[str, Any]], names: list[str], path: Path) -> np.ndarray:
    """Validated float32 ``[N, 4, 4]`` camera-to-world matrices of ``frames``."""
    matrices = []
    for i, f in enumerate(frames):
        try:
            m = np.array(f["transform_matrix"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: frame {i} ({names[i]}) has no numeric transform_matrix") from None
        if m.shape != (4, 4):
            raise InputError(f"{path}: frame {i} ({names[i]}): transform_matrix must be 4x4 (got {m.shape})")
        matrices.append(m)
    return check_poses(np.stack(matrices), names, str(path))
