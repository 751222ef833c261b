"""Camera paths for novel-view videos: an orbit, a forward-facing spiral, or cameras from a JSON file.

Paths follow the training cameras' distribution: the orbit circles the point
the training cameras look at (least-squares focus of their optical axes) at
their mean elevation and distance, around their mean up vector; the spiral
wanders around the mean forward-facing pose within the cameras' spread.

A JSON file of cameras may come from anyone: its size, its number of cameras
and their frame size are bounded, and every value is checked before use.

Two kinds of file are read: our own list of cameras (:func:`from_json`, ``--path
FILE.json``) and nerfstudio's ``camera_path.json`` (:func:`from_nerfstudio`,
``--camera-path FILE``), which its viewer and ours (:mod:`spiknerf.viewer`)
write: ``render_width`` and ``render_height`` in pixels, and a ``camera_path``
list of frames, each a ``camera_to_world`` matrix (OpenGL convention, 16
numbers row by row) and a vertical ``fov`` in degrees; the principal point is
the frame's centre. Frames are in the scene's world coordinates, which is where
nerfstudio's viewer puts them for a Blender scene (its Blender reader keeps the
world as it is); its other readers recentre and rescale the world first.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from spiknerf.errors import InputError
from spiknerf.json_input import is_number, read_json
from spiknerf.nerf.rays import focal_from_fov, look_at

PATHS: tuple[str, ...] = ("orbit", "spiral")
MAX_FRAMES = 100_000  # about an hour at 30 frames a second
MAX_SIDE = 8192  # pixels of a frame's width or height
MAX_JSON_BYTES = 64 << 20
MAX_FPS = 1000


@dataclass
class CameraPath:
    """Cameras of a video: ``c2w [N, 4, 4]`` and ``intrinsics [N, 4]`` for ``width x height`` frames."""

    c2w: Tensor
    intrinsics: Tensor
    width: int
    height: int
    fps: float | None = None  # the frame rate a file asks for, if it does

    def within(self, rays: int) -> CameraPath:
        """The same cameras with frames downscaled evenly (focal lengths and centres alike) so that all frames
        together hold at most ``rays`` pixels; itself when they already do."""
        scale = math.sqrt(rays / (len(self.c2w) * self.width * self.height))
        if scale >= 1:
            return self
        width, height = max(1, int(self.width * scale)), max(1, int(self.height * scale))
        factor = torch.tensor([width / self.width, height / self.height] * 2, dtype=self.intrinsics.dtype)
        return dataclasses.replace(self, intrinsics=self.intrinsics * factor, width=width, height=height)


def focus_point(c2w: Tensor) -> Tensor:
    """The point closest (least squares) to all cameras' optical axes."""
    origins, forward = c2w[:, :3, 3], -c2w[:, :3, 2]
    forward = forward / forward.norm(dim=-1, keepdim=True)
    proj = torch.eye(3) - forward[:, :, None] * forward[:, None, :]  # projects out each axis direction
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)
    return torch.linalg.lstsq(a.double(), b.double()).solution[:, 0].float()


def orbit(c2w: Tensor, frames: int) -> Tensor:
    """``frames`` cameras circling the focus point at the training cameras' mean elevation and radius."""
    target = focus_point(c2w)
    up = c2w[:, :3, 1].mean(0)
    up = up / up.norm()
    offsets = c2w[:, :3, 3] - target
    radius = float(offsets.norm(dim=-1).mean())
    height = offsets @ up
    elevation = float(torch.asin((height / offsets.norm(dim=-1)).clamp(-1, 1)).mean())
    e1 = offsets[0] - (offsets[0] @ up) * up
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(up, e1)
    out = []
    for k in range(frames):
        az = 2 * math.pi * k / frames
        direction = math.cos(elevation) * (math.cos(az) * e1 + math.sin(az) * e2) + math.sin(elevation) * up
        out.append(look_at(target + radius * direction, target, up))
    return torch.stack(out)


def spiral(c2w: Tensor, frames: int, rotations: float = 2.0) -> Tensor:
    """``frames`` cameras spiralling around the mean forward-facing pose, looking at the focus point."""
    centre = c2w[:, :3, 3].mean(0)
    axes = c2w[:, :3, :3].mean(0)
    x, y = axes[:, 0] / axes[:, 0].norm(), axes[:, 1] / axes[:, 1].norm()
    z = torch.linalg.cross(x, y)
    local = (c2w[:, :3, 3] - centre) @ torch.stack([x, y, z], 1)
    radii = local.abs().quantile(0.9, dim=0).clamp_min(1e-3)
    target = focus_point(c2w)
    out = []
    for k in range(frames):
        th = 2 * math.pi * rotations * k / frames
        offset = radii * torch.tensor([math.cos(th), -math.sin(th), -math.sin(0.5 * th)])
        eye = centre + offset[0] * x + offset[1] * y + offset[2] * z
        out.append(look_at(eye, target, y))
    return torch.stack(out)


def _number(value: Any, what: str, positive: bool = False) -> float:
    """``value`` as a float that stays finite in float32, the dtype cameras are kept in."""
    if not is_number(value) or not abs(value) <= FLOAT32_MAX or (positive and value <= 0):
        raise InputError(f"{what} must be a finite{' positive' if positive else ''} number, got {value!r:.80}")
    return float(value)


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _side(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIDE:
        raise InputError(f"{what} must be a whole number of pixels in 1..{MAX_SIDE}, got {value!r:.80}")
    return value


def _matrix(value: Any, what: str, key: str = "c2w") -> Tensor:
    """A camera-to-world matrix from a 4x4 or 3x4 list of rows of finite numbers (``key`` names it in errors)."""
    if (not isinstance(value, list) or len(value) not in (3, 4)
            or not all(isinstance(row, list) and len(row) == 4 for row in value)):
        also = " (or 'transform_matrix')" if key == "c2w" else ""
        raise InputError(f"{what} needs a 4x4 '{key}'{also} list of rows")
    rows = [[_number(x, f"{what}: its '{key}' entries") for x in row] for row in value[:3]]
    return torch.tensor(rows + [[0.0, 0.0, 0.0, 1.0]], dtype=torch.float32)


def from_json(path: Path, default_intrinsics: Tensor, width: int, height: int) -> CameraPath:
    """Cameras from a JSON list (or ``{"frames": [...]}``) of ``{"c2w": 4x4, "fx", "fy", "cx", "cy", "width",
    "height"}``; missing intrinsics default to the first training camera's."""
    label = f"--path {path}"
    data = read_json(path, MAX_JSON_BYTES, label)
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{label}: expected a non-empty list of cameras (or {{\"frames\": [...]}})")
    if len(frames) > MAX_FRAMES:
        raise InputError(f"{label}: {len(frames)} cameras, more than the {MAX_FRAMES} a video may have")
    c2ws, intr, size = [], [], None
    for i, f in enumerate(frames):
        what = f"{label}: camera {i}"
        if not isinstance(f, dict):
            raise InputError(f"{what} is not an object")
        c2ws.append(_matrix(f.get("c2w", f.get("transform_matrix")), what))
        w, h = _side(f.get("width", width), f"{what}: width"), _side(f.get("height", height), f"{what}: height")
        if size is not None and (w, h) != size:
            raise InputError(f"{what} has a different frame size; a video needs one size")
        size = (w, h)
        fx, fy, cx, cy = default_intrinsics.tolist()
        sx, sy = w / width, h / height
        intr.append([_number(f.get("fx", fx * sx), f"{what}: fx", positive=True),
                     _number(f.get("fy", fy * sy), f"{what}: fy", positive=True),
                     _number(f.get("cx", cx * sx), f"{what}: cx"), _number(f.get("cy", cy * sy), f"{what}: cy")])
    return CameraPath(torch.stack(c2ws), torch.tensor(intr, dtype=torch.float32), *size)


NERFSTUDIO_KEYS = ("render_width", "render_height", "camera_path")


def _flat_matrix(value: Any, what: str) -> Tensor:
    """A camera-to-world matrix from 16 numbers row by row (nerfstudio's form) or a list of 4 rows of 4."""
    if isinstance(value, list) and len(value) == 4 and all(isinstance(row, list) for row in value):
        return _matrix(value, what, "camera_to_world")
    if not isinstance(value, list) or len(value) != 16:
        raise InputError(f"{what}: 'camera_to_world' must be 16 numbers (a 4x4 matrix row by row)")
    return _matrix([value[i:i + 4] for i in range(0, 16, 4)], what, "camera_to_world")


def from_nerfstudio(path: Path) -> CameraPath:
    """Cameras of a nerfstudio ``camera_path.json`` (see the module's docstring); only perspective cameras."""
    label = f"--camera-path {path}"
    data = read_json(path, MAX_JSON_BYTES, label)
    if not isinstance(data, dict) or not all(k in data for k in NERFSTUDIO_KEYS):
        raise InputError(f"{label}: not a nerfstudio camera path (it needs {', '.join(NERFSTUDIO_KEYS)})")
    kind = data.get("camera_type", "perspective")
    if kind != "perspective":
        raise InputError(f"{label}: camera_type {kind!r:.40}; only perspective cameras are rendered")
    width, height = _side(data["render_width"], f"{label}: render_width"), _side(data["render_height"],
                                                                                  f"{label}: render_height")
    frames = data["camera_path"]
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{label}: 'camera_path' must be a non-empty list of frames")
    if len(frames) > MAX_FRAMES:
        raise InputError(f"{label}: {len(frames)} frames, more than the {MAX_FRAMES} a video may have")
    c2ws, intr = [], []
    for i, f in enumerate(frames):
        what = f"{label}: frame {i}"
        if not isinstance(f, dict):
            raise InputError(f"{what} is not an object")
        c2ws.append(_flat_matrix(f.get("camera_to_world"), what))
        fov = _number(f.get("fov"), f"{what}: fov (vertical, degrees)", positive=True)
        if fov >= 180:
            raise InputError(f"{what}: fov {fov:g} degrees; a perspective camera sees less than 180")
        focal = focal_from_fov(height, math.radians(fov))
        intr.append([focal, focal, width / 2, height / 2])
    fps = data.get("fps")
    if fps is not None and not (is_number(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"{label}: fps must be a number in (0, {MAX_FPS}], got {fps!r:.40}")
    return CameraPath(torch.stack(c2ws), torch.tensor(intr, dtype=torch.float32), width, height,
                      None if fps is None else float(fps))


def check_path_name(kind: str, frames: int) -> None:
    """``--path`` names a path or a .json file, and a named path has 1..MAX_FRAMES frames."""
    if kind in PATHS:
        if not 1 <= frames <= MAX_FRAMES:
            raise InputError(f"--frames must be in 1..{MAX_FRAMES} (got {frames})")
    elif not kind.endswith(".json"):
        raise InputError(f"--path must be orbit, spiral or a .json file of cameras (got {kind!r})")


def make_path(kind: str, train_c2w: Tensor, intrinsics: Tensor, width: int, height: int, frames: int) -> CameraPath:
    """A named path (orbit, spiral) or a JSON file of cameras."""
    check_path_name(kind, frames)
    if kind in PATHS:
        c2w = orbit(train_c2w, frames) if kind == "orbit" else spiral(train_c2w, frames)
        return CameraPath(c2w, intrinsics.expand(frames, 4).clone(), width, height)
    return from_json(Path(kind), intrinsics, width, height)
