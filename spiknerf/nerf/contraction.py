r"""Scene contraction: all of space squeezed into a finite box, for unbounded scenes (mip-NeRF 360).

The scene box ``[lo, hi]`` is first normalized to ``[-1, 1]^3`` (``y = (x - c) / h``,
centre ``c``, half-size ``h``); then, with ``m = ‖y‖∞``::

    contract(y) = y                      if m ≤ 1
                = (2 - 1/m) · y / m      otherwise

so the box keeps its shape and resolution and everything beyond it, out to
infinity, fills the shell between ``‖y‖∞ = 1`` and ``2``. Points far away get
ever coarser cells, as a distant background needs (its pixels cover ever larger
footprints). The L∞ norm, as in nerfstudio, rather than mip-NeRF 360's L2: the
box stays a box, and the contracted space a cube that a hash grid and an
occupancy grid tile without waste.

Grids read points in the unit cube: :func:`to_unit` maps a world point to
``contract(y) / 4 + 1/2`` (the scene box is the middle half of each axis), and
:func:`from_unit` maps it back (points at the cube's faces are at infinity and
come back as far but finite points).
"""

from __future__ import annotations

import torch
from torch import Tensor

# the unit cube's faces are infinitely far away: from_unit stops short of them
EDGE = 1e-4


def contract(y: Tensor) -> Tensor:
    """Box-normalized points ``[..., 3]`` into ``[-2, 2]^3`` (the identity inside ``[-1, 1]^3``)."""
    m = y.abs().amax(-1, keepdim=True)
    return torch.where(m <= 1, y, (2 - 1 / m.clamp_min(1)) * y / m.clamp_min(1))


def uncontract(z: Tensor) -> Tensor:
    """The inverse of :func:`contract` for points ``[..., 3]`` with ``‖z‖∞ < 2``."""
    m = z.abs().amax(-1, keepdim=True)
    # ‖z‖∞ = 2 - 1/m  ->  m = 1 / (2 - ‖z‖∞)
    scale = torch.where(m <= 1, torch.ones_like(m), 1 / ((2 - m).clamp_min(EDGE) * m.clamp_min(1)))
    return z * scale


def to_unit(x: Tensor, aabb: Tensor) -> Tensor:
    """World points ``[..., 3]`` into the unit cube, the scene box ``aabb [6]`` filling ``[1/4, 3/4]^3``."""
    lo, hi = aabb[:3], aabb[3:]
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    return contract((x - centre) / half) / 4 + 0.5


def from_unit(u: Tensor, aabb: Tensor) -> Tensor:
    """The inverse of :func:`to_unit`: points of the unit cube back to world points."""
    lo, hi = aabb[:3], aabb[3:]
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    z = ((u - 0.5) * 4).clamp(-2 + EDGE, 2 - EDGE)
    return centre + uncontract(z) * half
