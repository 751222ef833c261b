"""A field's density sampled on a regular grid over its scene box, a slab at a time.

The grid holds the density at ``N`` points per axis from the box's low corner to
its high corner (corners included), so that marching cubes places vertices in
world units with a spacing of ``(hi - lo) / (N - 1)``. Points are evaluated in
chunks of ``chunk`` (memory grows with the chunk, not with ``N``); the grid
itself is ``4 N^3`` bytes and is refused above :data:`MAX_GRID_BYTES`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from spiknerf.errors import InputError

MAX_GRID_BYTES = 1 << 30  # 1 GiB of float32: N up to 645
CHUNK = 1 << 16


@dataclass
class DensityGrid:
    """Density ``values`` ``[N, N, N]`` (float32, indexed x, y, z) at the points ``lo + index * spacing``."""

    values: np.ndarray
    lo: np.ndarray  # [3]
    spacing: np.ndarray  # [3]

    def points(self, index: np.ndarray) -> np.ndarray:
        """World points of (fractional) grid indices ``[..., 3]``."""
        return self.lo + index * self.spacing


def check_resolution(resolution: int) -> None:
    if resolution < 8:
        raise InputError(f"--resolution must be >= 8 (got {resolution})")
    if 4 * resolution**3 > MAX_GRID_BYTES:
        most = int((MAX_GRID_BYTES / 4) ** (1 / 3))
        raise InputError(f"--resolution {resolution}: the grid would take {4 * resolution**3 / 2**30:.1f} GiB; "
                         f"at most {most} fits the {MAX_GRID_BYTES >> 20} MiB the export allows")


@torch.no_grad()
def sample_density(field: nn.Module, aabb: Tensor, resolution: int, device: torch.device,
                   chunk: int = CHUNK, progress: bool = True) -> DensityGrid:
    """``field.density`` at ``resolution^3`` points spanning ``aabb`` = (xmin, ymin, zmin, xmax, ymax, zmax)."""
    check_resolution(resolution)
    box = aabb.detach().cpu().double().reshape(6)
    lo, hi = box[:3], box[3:]
    axes = [torch.linspace(float(lo[i]), float(hi[i]), resolution, dtype=torch.float64) for i in range(3)]
    values = np.empty((resolution,) * 3, dtype=np.float32)
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), -1).reshape(-1, 2)
    slabs = max(1, chunk // len(yz))  # whole x-slabs of the grid per chunk (at least one)
    bar = tqdm(total=resolution, desc="density", unit="slab", file=sys.stderr, dynamic_ncols=True,
               disable=not progress)
    for start in range(0, resolution, slabs):
        xs = axes[0][start:start + slabs]
        pts = torch.cat([torch.cat([x.expand(len(yz), 1), yz], -1) for x in xs]).float()
        sigma = torch.cat([field.density(p.to(device)).float().cpu() for p in pts.split(chunk)])
        values[start:start + len(xs)] = sigma.reshape(len(xs), resolution, resolution).numpy()
        bar.update(len(xs))
    bar.close()
    spacing = ((hi - lo) / (resolution - 1)).numpy()
    return DensityGrid(values, lo.numpy(), spacing)


def optical_threshold(step: float) -> float:
    """The density at which one march step of length ``step`` is half opaque: ``1 - exp(-σ step) = 1/2``."""
    return math.log(2.0) / step
