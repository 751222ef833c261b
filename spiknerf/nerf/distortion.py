r"""Lens distortion: OpenCV's radial-tangential model, inverted so that a photo's pixels get straight rays.

A point at normalized camera coordinates ``(x, y)`` (``x = X / Z``, ``y = Y / Z``,
image y down, as OpenCV and COLMAP write them) lands in the photo at::

    r² = x² + y²,   g = 1 + k1 r² + k2 r⁴ + k3 r⁶
    x_d = g x + 2 p1 x y + p2 (r² + 2 x²)
    y_d = g y + p1 (r² + 2 y²) + 2 p2 x y

and at pixel ``(fx x_d + cx, fy y_d + cy)``. Rays start from the photo's pixels,
so :func:`undistort` inverts the map: Newton's method on the 2 x 2 Jacobian,
started at the distorted point (the coefficients of real lenses move a point by a
few per cent, where it converges in a handful of steps). Distorting the rays
instead of resampling the photos keeps every photo pixel and adds no blur.

Coefficients are ``(k1, k2, k3, p1, p2)``, the order of :data:`COEFFICIENTS`;
zeros are a pinhole camera.
"""

from __future__ import annotations

import torch
from torch import Tensor

COEFFICIENTS: tuple[str, ...] = ("k1", "k2", "k3", "p1", "p2")


def distort(x: Tensor, y: Tensor, coeffs: Tensor) -> tuple[Tensor, Tensor]:
    """Where undistorted normalized coordinates ``(x, y)`` land in the photo; ``coeffs [..., 5]`` broadcast."""
    k1, k2, k3, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    g = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return g * x + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), g * y + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


def _jacobian(x: Tensor, y: Tensor, coeffs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """∂(x_d, y_d) / ∂(x, y) of :func:`distort`."""
    k1, k2, k3, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    g = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    dg = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # dg / d(r²)
    dxx = g + 2 * x * x * dg + 2 * p1 * y + 6 * p2 * x
    dxy = 2 * x * y * dg + 2 * p1 * x + 2 * p2 * y
    dyx = 2 * x * y * dg + 2 * p1 * x + 2 * p2 * y
    dyy = g + 2 * y * y * dg + 6 * p1 * y + 2 * p2 * x
    return dxx, dxy, dyx, dyy


def undistort(xd: Tensor, yd: Tensor, coeffs: Tensor, iterations: int = 10) -> tuple[Tensor, Tensor]:
    """The normalized coordinates ``(x, y)`` whose :func:`distort` is ``(xd, yd)`` (Newton's method)."""
    x, y = xd.clone(), yd.clone()
    for _ in range(iterations):
        fx, fy = distort(x, y, coeffs)
        ex, ey = fx - xd, fy - yd
        a, b, c, d = _jacobian(x, y, coeffs)
        det = a * d - b * c
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        x = x - (d * ex - b * ey) / det
        y = y - (a * ey - c * ex) / det
    return x, y


def inversion_error(coeffs: Tensor, intrinsics: Tensor, width: int, height: int, n: int = 17) -> Tensor:
    """Per camera, the largest error in pixels of :func:`undistort` over an ``n x n`` grid of pixels spanning the
    image (border included): how far the distorted undistorted point lands from where it started.

    ``coeffs [N, 5]``, ``intrinsics [N, 4]``. Coefficients from a file may describe a map that folds over within
    the image, where no inverse exists and Newton's method wanders; a large error tells them apart.
    """
    fx, fy, cx, cy = (v[:, None] for v in intrinsics.double().unbind(-1))
    grid = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    px, py = (g.reshape(-1) for g in torch.meshgrid(grid * width, grid * height, indexing="ij"))
    xd, yd = (px - cx) / fx, (py - cy) / fy
    c = coeffs.double()[:, None, :]
    x, y = undistort(xd, yd, c, iterations=20)
    rx, ry = distort(x, y, c)
    err = torch.maximum(((rx - xd) * fx).abs(), ((ry - yd) * fy).abs())
    return torch.nan_to_num(err, nan=float("inf")).amax(-1)
