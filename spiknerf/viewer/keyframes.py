"""Camera paths recorded in the viewer: keyframes, a smooth path through them, saved as nerfstudio's
``camera_path.json``.

The path passes through every keyframe: positions and vertical fields of view
follow Catmull-Rom splines (Kochanek-Bartels with zero tension, continuity and
bias), orientations the same spline on unit quaternions. Frame ``i`` of ``N``
lies at spline parameter ``i / (N - 1)`` of the whole path, so the first and
last frames are the first and last keyframes, and keyframe ``k`` of ``K`` is
frame ``i`` whenever ``i / (N - 1) = k / (K - 1)``.

The file holds what nerfstudio's viewer writes and its ``ns-render
camera-path`` and ``spiknerf render --camera-path`` read
(:func:`spiknerf.nerf.camera_path.from_nerfstudio`): ``camera_type``,
``render_width``, ``render_height``, ``fps``, ``seconds``, ``is_cycle``,
``smoothness_value`` (the spline's tension), ``default_fov``, ``keyframes``
(``matrix``, ``fov``, ``aspect``) and ``camera_path`` (``camera_to_world``,
``fov``, ``aspect``), matrices as 16 numbers row by row in the OpenGL
convention, fields of view vertical in degrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import splines
import splines.quaternion
import viser.transforms as vt

from spiknerf.atomic import write_json_atomic
from spiknerf.errors import InputError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_FRAMES = 100_000  # as spiknerf.nerf.camera_path reads


@dataclass(frozen=True)
class Keyframe:
    """A recorded camera: camera-to-world ``c2w [4, 4]`` (OpenGL convention) and vertical ``fov`` in degrees."""

    c2w: np.ndarray
    fov: float


def _quaternions(keyframes: list[Keyframe]) -> list[splines.quaternion.UnitQuaternion]:
    """Each keyframe's orientation, each on the side of the sphere nearest the previous one (q and -q are the
    same rotation; the spline must not take the long way round)."""
    out, previous = [], None
    for k in keyframes:
        wxyz = vt.SO3.from_matrix(np.asarray(k.c2w, dtype=np.float64)[:3, :3]).wxyz
        if previous is not None and float(np.dot(wxyz, previous)) < 0:
            wxyz = -wxyz
        previous = wxyz
        out.append(splines.quaternion.UnitQuaternion.from_unit_xyzw(np.roll(wxyz, -1)))
    return out


def interpolate(keyframes: list[Keyframe], frames: int) -> list[Keyframe]:
    """``frames`` cameras along the path through ``keyframes`` (see the module's docstring)."""
    if not keyframes:
        raise ValueError("a camera path needs at least one keyframe")
    if frames < 1:
        raise ValueError(f"frames must be >= 1 (got {frames})")
    if len(keyframes) == 1:
        return [keyframes[0]] * frames
    positions = splines.CatmullRom([np.asarray(k.c2w, dtype=np.float64)[:3, 3] for k in keyframes])
    fovs = splines.CatmullRom([k.fov for k in keyframes])
    rotations = splines.quaternion.CatmullRom(_quaternions(keyframes))
    last = len(keyframes) - 1
    out = []
    for i in range(frames):
        t = last * i / (frames - 1) if frames > 1 else 0.0
        c2w = np.eye(4)
        xyzw = np.asarray(rotations.evaluate(t).xyzw, dtype=np.float64)
        c2w[:3, :3] = vt.SO3(np.roll(xyzw, 1)).as_matrix()
        c2w[:3, 3] = positions.evaluate(t)
        out.append(Keyframe(c2w, float(fovs.evaluate(t))))
    return out


def _flat(c2w: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(c2w, dtype=np.float64).reshape(16)]


def camera_path_json(keyframes: list[Keyframe], width: int, height: int, fps: float,
                     seconds: float) -> dict[str, Any]:
    """nerfstudio's ``camera_path.json`` of the path through ``keyframes``: ``round(fps * seconds)`` frames of
    ``width x height``."""
    frames = round(fps * seconds)
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"{fps:g} frames a second for {seconds:g} s is {frames} frames; a path has 1 to "
                         f"{MAX_FRAMES}")
    aspect = width / height
    return {
        "camera_type": "perspective",
        "render_width": int(width),
        "render_height": int(height),
        "fps": fps,
        "seconds": seconds,
        "is_cycle": False,
        "smoothness_value": 0.0,
        "default_fov": keyframes[0].fov if keyframes else 50.0,
        "keyframes": [{"matrix": _flat(k.c2w), "fov": k.fov, "aspect": aspect} for k in keyframes],
        "camera_path": [{"camera_to_world": _flat(f.c2w), "fov": f.fov, "aspect": aspect}
                        for f in interpolate(keyframes, frames)],
    }


def save_camera_path(folder: Path, name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``folder/<name>.json`` (atomically) and return the path; ``name`` is one plain file name
    (letters, digits, ``-`` and ``_``), as it comes from a text box in a browser."""
    if not NAME.fullmatch(name):
        raise InputError(f"camera path name {name!r:.80}: use 1 to 64 letters, digits, '-' and '_'")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    path = folder / f"{name}.json"
    write_json_atomic(path, data)
    return path
