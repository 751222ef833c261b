r"""Knowledge distillation from the ANN teacher to the spiking student (Spik-NeRF).

At the sample points of the student's own rendering the frozen teacher gives
density and colour targets::

    L = L_photo + λσ · MSE(log(1 + σ_s), log(1 + σ_t)) + λc · MSE(c_s, c_t)

Densities are compared after ``log(1 + σ)``: raw densities span several orders
of magnitude (the hash-grid field's reach 10^3), and an MSE on them would be
dominated by the few opaque samples and drown the photometric term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def kd_loss(sigma_s: Tensor, rgb_s: Tensor, sigma_t: Tensor, rgb_t: Tensor,
            weight_sigma: float = 0.5, weight_color: float = 0.5) -> Tensor:
    """The distillation terms (without the photometric loss)."""
    if sigma_s.numel() == 0:
        return sigma_s.sum()
    density = F.mse_loss(torch.log1p(sigma_s), torch.log1p(sigma_t))
    return weight_sigma * density + weight_color * F.mse_loss(rgb_s, rgb_t)


@torch.no_grad()
def teacher_targets(teacher: nn.Module, points: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """The frozen teacher's density and colour at the student's sample points."""
    sigma, rgb = teacher(points, dirs)
    return sigma.float(), rgb.float()
