r"""Knowledge distillation from the ANN teacher to the spiking student (Spik-NeRF).

At the sample points of the student's own rendering the frozen teacher gives
density and colour targets::

    L = L_photo + λσ · MSE(α_s, α_t) + λc · MSE(c_s, c_t),    α = 1 - exp(-σ δ)

Densities are compared as the opacity α of each sample's interval (length δ),
which is what volume rendering reads from them. Raw densities span several
orders of magnitude (the hash-grid field's reach 10^3); even after
``log(1 + σ)`` an MSE on them pulls as hard on empty space (σδ ≈ 0) and on
opaque interiors (α ≈ 1), where no value changes the image, as on surfaces.
On both scenes that term left the student further behind its teacher than the
opacity term does (docs/notes/2026-11-28-distillation-weights.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def kd_loss(sigma_s: Tensor, rgb_s: Tensor, sigma_t: Tensor, rgb_t: Tensor, deltas: Tensor,
            weight_sigma: float = 0.5, weight_color: float = 0.5) -> Tensor:
    """The distillation terms (without the photometric loss); ``deltas``: the samples' interval lengths."""
    if sigma_s.numel() == 0:
        return sigma_s.sum()
    density = F.mse_loss(opacity(sigma_s, deltas), opacity(sigma_t, deltas))
    return weight_sigma * density + weight_color * F.mse_loss(rgb_s, rgb_t)


def opacity(sigma: Tensor, deltas: Tensor) -> Tensor:
    """α = 1 - exp(-σ δ), the share of light an interval stops."""
    return -torch.expm1(-sigma * deltas)


@torch.no_grad()
def teacher_targets(teacher: nn.Module, points: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """The frozen teacher's density and colour at the student's sample points."""
    sigma, rgb = teacher(points, dirs)
    return sigma.float(), rgb.float()
