"""The ``transforms*.json`` files shared by the Blender and instant-ngp / nerfstudio formats.

Both list ``frames``, each with a ``file_path`` (relative to the JSON's folder,
with or without an extension) and a 4x4 camera-to-world ``transform_matrix`` in
the OpenGL convention. A ``file_path`` must stay inside the scene folder
(:mod:`spiknerf.nerf.data.confine`), and no two frames may name the same file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spiknerf.errors import InputError
from spiknerf.limits import format_bytes, json_byte_limit
from spiknerf.nerf.data.confine import SceneFolder, shown
from spiknerf.nerf.data.poses import check_poses

# Extensions tried, in order, when a frame's file_path has none (Blender writes "./train/r_0").
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
# Python refuses to turn more than 4300 digits into an int; longer integers are read as floats instead
# (every number of a scene file is used as a float anyway).
INT_DIGITS = 18


def _number(text: str) -> int | float:
    return int(text) if len(text) <= INT_DIGITS else float(text)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, refused beyond :func:`spiknerf.limits.json_byte_limit` bytes."""
    limit = json_byte_limit()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            text = f.read(limit + 1) if size <= limit else b""
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if size > limit or len(text) > limit:
        raise InputError(f"{path}: {format_bytes(max(size, len(text)))}, more than the {format_bytes(limit)} "
                         "a scene's JSON file may have (set SPIKNERF_MAX_JSON_BYTES to raise it)")
    try:
        meta = json.loads(text, parse_int=_number)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: invalid JSON (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise InputError(f"{path}: invalid JSON ({str(exc)[:200]})") from None
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
