"""ANN radiance fields (the teachers): the fast hash-grid field and the NeRF MLP.

A field maps world points ``[N, 3]`` and unit view directions ``[N, 3]`` to
density ``[N]`` and colour ``[N, 3]``; ``density(x)`` alone is what the
occupancy grid and the sampler's transmittance pass need. A teacher field also
splits its forward in two: ``trunk(x)``, the density and the features its
colour reads, and ``color(features, d)``, so that a distilled student's march
keeps the teacher's features and reads its colour only where samples survive
(``render_rays``). Points outside the
scene box have zero density, unless space beyond the box is contracted into it
(unbounded scenes, :mod:`spiknerf.nerf.contraction`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf.nerf.contraction import to_unit
from spiknerf.nerf.encodings import HashGrid, PositionalEncoding, SphericalHarmonics


class _TruncExp(torch.autograd.Function):
    """exp(x) whose gradient is clamped (Instant-NGP's density activation)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(-15, 15))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


def mlp(dims: list[int], out_activation: nn.Module | None = None) -> nn.Sequential:
    """Linear layers with ReLU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


class SceneBox(nn.Module):
    """Normalises world points into [0, 1]^3 over the scene's axis-aligned box, or, with ``contract``, all of
    space into it (the box filling its middle half)."""

    def __init__(self, aabb: Tensor, contract: bool = False) -> None:
        super().__init__()
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(6))
        self.contract = contract

    def normalize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Points in [0, 1]^3 (clamped) and the mask of points inside the box (every point, contracted)."""
        if self.contract:
            return to_unit(x, self.aabb), torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        lo, hi = self.aabb[:3], self.aabb[3:]
        u = (x - lo) / (hi - lo)
        inside = ((u >= 0) & (u <= 1)).all(-1)
        return u.clamp(0.0, 1.0), inside


class NGPField(nn.Module):
    """Fast preset: hash grid -> density MLP (density + geometry feature) -> colour MLP with SH directions."""

    def __init__(
        self,
        aabb: Tensor,
        n_levels: int = 12,
        log2_table: int = 16,
        max_resolution: int | tuple[int, int, int] = 512,
        hidden: int = 64,
        geo_features: int = 15,
        contract: bool = False,
    ) -> None:
        super().__init__()
        self.box = SceneBox(aabb, contract)
        self.encoding = HashGrid(n_levels=n_levels, log2_table=log2_table, max_resolution=max_resolution)
        self.dir_encoding = SphericalHarmonics()
        self.geo_features = geo_features
        self.density_net = mlp([self.encoding.out_dim, hidden, 1 + geo_features])
        self.color_net = mlp([geo_features + self.dir_encoding.out_dim, hidden, hidden, 3], nn.Sigmoid())

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, inside = self.box.normalize(x)
        h = self.density_net(self.encoding(u))
        sigma = trunc_exp(h[:, 0] - 1.0) * inside  # -1: start near-empty so the grid can prune early
        return sigma, h[:, 1:]

    def color(self, geo: Tensor, d: Tensor) -> Tensor:
        return self.color_net(torch.cat([geo, self.dir_encoding(d)], dim=-1))

    def density(self, x: Tensor) -> Tensor:
        return self.trunk(x)[0]

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        sigma, geo = self.trunk(x)
        return sigma, self.color(geo, d)


class NeRFField(nn.Module):
    """The NeRF MLP: the paper preset's (8 x 256, skip at layer 4, view-direction branch of 128) by default,
    4 x 128 with the skip at layer 2 in the mlp preset (``presets.PRESETS``)."""

    def __init__(self, aabb: Tensor, depth: int = 8, width: int = 256, skip: int = 4,
                 pos_freqs: int = 10, dir_freqs: int = 4, contract: bool = False) -> None:
        super().__init__()
        self.box = SceneBox(aabb, contract)
        self.pos_encoding = PositionalEncoding(3, pos_freqs)
        self.dir_encoding = PositionalEncoding(3, dir_freqs)
        self.skip = skip
        in_dim = self.pos_encoding.out_dim
        self.layers = nn.ModuleList(
            nn.Linear(in_dim if i == 0 else width + (in_dim if i == skip else 0), width) for i in range(depth)
        )
        self.sigma_head = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.view = nn.Linear(width + self.dir_encoding.out_dim, width // 2)
        self.rgb_head = nn.Linear(width // 2, 3)

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, inside = self.box.normalize(x)
        e = self.pos_encoding(u * 2.0 - 1.0)
        h = e
        for i, layer in enumerate(self.layers):
            h = F.relu(layer(torch.cat([h, e], -1) if i == self.skip else h))
        return F.softplus(self.sigma_head(h)[:, 0] - 1.0) * inside, h

    def color(self, h: Tensor, d: Tensor) -> Tensor:
        v = F.relu(self.view(torch.cat([self.feature(h), self.dir_encoding(d)], -1)))
        return torch.sigmoid(self.rgb_head(v))

    def density(self, x: Tensor) -> Tensor:
        return self.trunk(x)[0]

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        sigma, h = self.trunk(x)
        return sigma, self.color(h, d)
