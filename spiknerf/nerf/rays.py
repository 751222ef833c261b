"""Camera rays: the one place pixels become rays (pinhole camera, OpenGL convention).

A camera-to-world matrix ``c2w = [R t; 0 1]`` maps camera coordinates to world
coordinates. The camera looks down its -z axis with x to the right and y up
(OpenGL / Blender / NeRF-synthetic). Pixel coordinates count from the top-left
corner of the image, and integer indices address pixel centres::

    d_cam = ((x + 0.5 - cx) / fx,  -(y + 0.5 - cy) / fy,  -1)
    d     = R d_cam / |R d_cam|,      o = t

so directions are unit length and a ray's parameter is the Euclidean distance
from the camera centre. Fractional ``x, y`` give sub-pixel rays (supersampling).
A photo taken through a distorting lens gives its pixels bent rays: with
``distortion`` coefficients the pixel's normalized coordinates are undistorted
first (:mod:`spiknerf.nerf.distortion`).

Forward-facing (LLFF) scenes march in normalized device coordinates instead
(:func:`to_ndc`, as in the original NeRF): there ``t`` in [0, 1] spans the near
plane to infinity and the NDC directions are not unit length.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spiknerf.nerf.distortion import undistort


def focal_from_fov(size: float, fov: float) -> float:
    """Focal length in pixels of a pinhole with field of view ``fov`` (radians) across ``size`` pixels."""
    return 0.5 * size / math.tan(0.5 * fov)


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """Camera-to-world ``[4, 4]`` of a camera at ``eye`` looking at ``target``, ``up`` roughly up.

    The camera's +z axis points from the target back to the eye (it looks down -z).
    """
    eye, target, up = (torch.as_tensor(v, dtype=torch.float32) for v in (eye, target, up))
    z = eye - target
    z = z / z.norm()
    x = torch.linalg.cross(up, z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def pixel_rays(c2w: Tensor, intrinsics: Tensor, xs: Tensor, ys: Tensor,
               distortion: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Origins and unit directions ``[..., 3]`` of the rays through pixels ``(xs, ys)``.

    ``c2w`` is ``[..., 4, 4]`` (or ``[..., 3, 4]``) and ``intrinsics`` ``[..., 4]`` =
    ``(fx, fy, cx, cy)`` in pixels; both broadcast against ``xs`` and ``ys``, so one
    camera (``[4, 4]``, ``[4]``) serves a whole image and per-ray cameras serve a batch
    mixed from many views. ``distortion`` ``[..., 5]`` (k1, k2, k3, p1, p2) broadcasts
    the same way.
    """
    c2w = c2w.to(torch.float32)
    fx, fy, cx, cy = intrinsics.to(torch.float32).unbind(-1)
    u = (xs.to(torch.float32) + 0.5 - cx) / fx
    v = (ys.to(torch.float32) + 0.5 - cy) / fy  # y down here, as the distortion model has it
    if distortion is not None:
        u, v = undistort(u, v, distortion.to(torch.float32))
    v = -v
    d_cam = torch.stack(torch.broadcast_tensors(u, v, -torch.ones_like(u)), dim=-1)
    d = (c2w[..., :3, :3] @ d_cam.unsqueeze(-1)).squeeze(-1)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[..., :3, 3].expand(d.shape).contiguous()
    return o, d


def to_ndc(
    origins: Tensor,
    directions: Tensor,
    fx: Tensor | float,
    fy: Tensor | float,
    width: int,
    height: int,
    near: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Rays in normalized device coordinates of a forward-facing camera (original NeRF, appendix C).

    Origins first move to the plane ``z = -near``; then a world point maps to
    ``(-2 fx / W * x / z,  -2 fy / H * y / z,  1 + 2 near / z)`` and the ray becomes
    ``o' + t d'`` with ``t`` in [0, 1] from the near plane to infinity::

        o' = (-2 fx/W ox/oz, -2 fy/H oy/oz, 1 + 2 near/oz)
        d' = (-2 fx/W (dx/dz - ox/oz), -2 fy/H (dy/dz - oy/oz), -2 near/oz)

    Only rays that travel towards -z (forward-facing scenes) are meaningful here.
    """
    t = -(near + origins[..., 2]) / directions[..., 2]
    o = origins + t.unsqueeze(-1) * directions
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = directions.unbind(-1)
    ax = -2.0 * fx / width
    ay = -2.0 * fy / height
    o_ndc = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], dim=-1)
    d_ndc = torch.stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * near / oz], dim=-1)
    return o_ndc, d_ndc


def camera_rays(
    c2w: Tensor, intrinsics: Tensor, xs: Tensor, ys: Tensor, width: int, height: int, ndc: bool,
    distortion: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Marching origins and directions, and (NDC scenes only) the unit world view directions.

    For world-space scenes the view directions are the marching directions, so
    ``None`` is returned for them.
    """
    o, d = pixel_rays(c2w, intrinsics, xs, ys, distortion)
    if not ndc:
        return o, d, None
    o_ndc, d_ndc = to_ndc(o, d, intrinsics[..., 0], intrinsics[..., 1], width, height)
    return o_ndc, d_ndc, d


def frame_rays(c2w: Tensor, intrinsics: Tensor, width: int, height: int,
              ndc_camera: tuple[float, float, int, int] | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Rays of every pixel of a ``width x height`` frame seen from any camera, row-major: as :func:`camera_rays`,
    but a forward-facing scene's NDC is the one of the camera it was trained with, ``ndc_camera = (fx, fy, width,
    height)``, whatever the frame's own focal length and size (a video or a viewer may zoom and resize; the
    scene's space stays)."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    o, d = pixel_rays(c2w, intrinsics, xs.reshape(-1), ys.reshape(-1))
    if ndc_camera is None:
        return o, d, None
    fx, fy, w, h = ndc_camera
    o_ndc, d_ndc = to_ndc(o, d, fx, fy, w, h)
    return o_ndc, d_ndc, d
