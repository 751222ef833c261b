"""The ``transforms*.json`` files shared by the Blender and instant-ngp / nerfstudio formats.

Both list ``frames``, each with a ``file_path`` (relative to the JSON's folder,
with or without an extension) and a 4x4 camera-to-world ``transform_matrix`` in
the OpenGL convention.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from spiknerf.errors import InputError
from spiknerf.nerf.data.poses import check_poses

# Extensions tried, in order, when a frame's file_path has none (Blender writes "./train/r_0").
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``."""
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    return meta


def number(meta: dict[str, Any], key: str, path: Path, where: str = "") -> float | None:
    """``meta[key]`` as a finite float, None when absent."""
    if key not in meta:
        return None
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{path}: {where}{key} must be a finite number (got {value!r})")
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


def frame_image(folder: Path, frame: dict[str, Any], i: int, path: Path) -> Path:
    """The image file of frame ``i``; an extension is guessed when ``file_path`` has none."""
    rel = frame.get("file_path")
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{path}: frame {i} has no file_path")
    image = folder / rel
    if image.is_file():
        return image
    if not image.suffix:
        for ext in IMAGE_EXTENSIONS:
            candidate = image.with_name(image.name + ext)
            if candidate.is_file():
                return candidate
    raise InputError(f"{path}: frame {i}: image {rel} not found in {folder}")


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
