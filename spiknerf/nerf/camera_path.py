"""Camera paths for novel-view videos: an orbit, a forward-facing spiral, or cameras from a JSON file.

Paths follow the training cameras' distribution: the orbit circles the point
the training cameras look at (least-squares focus of their optical axes) at
their mean elevation and distance, around their mean up vector; the spiral
wanders around the mean forward-facing pose within the cameras' spread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spiknerf.errors import InputError
from spiknerf.nerf.rays import look_at

PATHS: tuple[str, ...] = ("orbit", "spiral")


@dataclass
class CameraPath:
    """Cameras of a video: ``c2w [N, 4, 4]`` and ``intrinsics [N, 4]`` for ``width x height`` frames."""

    c2w: Tensor
    intrinsics: Tensor
    width: int
    height: int


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


def from_json(path: Path, default_intrinsics: Tensor, width: int, height: int) -> CameraPath:
    """Cameras from a JSON list (or ``{"frames": [...]}``) of ``{"c2w": 4x4, "fx", "fy", "cx", "cy", "width",
    "height"}``; missing intrinsics default to the first training camera's."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"--path {path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--path {path}: invalid JSON ({exc})") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list) or not frames:
        raise InputError(f"--path {path}: expected a non-empty list of cameras (or {{\"frames\": [...]}})")
    c2ws, intr = [], []
    for i, f in enumerate(frames):
        matrix = f.get("c2w", f.get("transform_matrix")) if isinstance(f, dict) else None
        m = torch.tensor(matrix, dtype=torch.float32) if matrix is not None else None
        if m is None or m.shape not in ((4, 4), (3, 4)) or not torch.isfinite(m).all():
            raise InputError(f"--path {path}: camera {i} needs a finite 4x4 'c2w' matrix")
        c2ws.append(torch.cat([m[:3], torch.tensor([[0.0, 0.0, 0.0, 1.0]])]))
        w, h = int(f.get("width", width)), int(f.get("height", height))
        if (w, h) != (int(frames[0].get("width", width)), int(frames[0].get("height", height))):
            raise InputError(f"--path {path}: camera {i} has a different frame size; a video needs one size")
        fx, fy, cx, cy = default_intrinsics.tolist()
        sx, sy = w / width, h / height
        intr.append([f.get("fx", fx * sx), f.get("fy", fy * sy), f.get("cx", cx * sx), f.get("cy", cy * sy)])
    w0, h0 = int(frames[0].get("width", width)), int(frames[0].get("height", height))
    return CameraPath(torch.stack(c2ws), torch.tensor(intr, dtype=torch.float32), w0, h0)


def make_path(kind: str, train_c2w: Tensor, intrinsics: Tensor, width: int, height: int, frames: int) -> CameraPath:
    """A named path (orbit, spiral) or a JSON file of cameras."""
    if kind in PATHS:
        if frames < 1:
            raise InputError(f"--frames must be >= 1 (got {frames})")
        c2w = orbit(train_c2w, frames) if kind == "orbit" else spiral(train_c2w, frames)
        return CameraPath(c2w, intrinsics.expand(frames, 4).clone(), width, height)
    if not kind.endswith(".json"):
        raise InputError(f"--path must be orbit, spiral or a .json file of cameras (got {kind!r})")
    return from_json(Path(kind), intrinsics, width, height)
