"""Image quality: PSNR and SSIM (Wang et al. 2004: 11 x 11 Gaussian window, σ = 1.5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(pred: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = float(F.mse_loss(pred.float(), target.float()))
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: Tensor, target: Tensor) -> float:
    """Mean structural similarity of two ``[H, W, 3]`` images in [0, 1] (valid windows only)."""
    c1, c2 = 0.01**2, 0.03**2
    x = pred.double().permute(2, 0, 1)[:, None]  # [3, 1, H, W]
    y = target.double().permute(2, 0, 1)[:, None]
    g = _gaussian_window(min(11, x.shape[-1], x.shape[-2]))  # tiny test images get a smaller window

    def blur(z: Tensor) -> Tensor:
        z = F.conv2d(z, g.view(1, 1, 1, -1))
        return F.conv2d(z, g.view(1, 1, -1, 1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())
