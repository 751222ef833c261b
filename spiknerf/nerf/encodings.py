r"""Input encodings: NeRF positional encoding, a multi-resolution hash grid, spherical harmonics.

Hash grid (Instant-NGP, Müller et al. 2022), written in torch: level ``l`` has
resolution ``N_l = floor(N_min b^l)`` with ``b = exp((ln N_max - ln N_min)/(L-1))``.
A point's 8 surrounding vertices are looked up in the level's table: directly
(dense) when ``(N_l + 1)^3`` vertices fit, else through the spatial hash
``(x·1 ⊕ y·2654435761 ⊕ z·805459861) mod 2^log2_table``; their features are
blended trilinearly. All levels are computed in one vectorised pass; the
backward is a custom autograd function that scatters gradients with
``index_add_`` (several times faster on the CPU than ``F.embedding``'s backward).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spiknerf.kernels import CpuCompiled

# The hash keeps only the low log2_table bits, so int32 arithmetic that wraps
# gives the same rows as int64 and is much faster on the CPU (AVX2 has no
# 64-bit multiply); 2654435761 is written as its int32 two's-complement value.
_PRIMES = (1, 2654435761 - 2**32, 805459861)


class PositionalEncoding(nn.Module):
    """``[x, sin(2^k π x), cos(2^k π x)]`` for k < ``n_freqs`` (NeRF, Mildenhall et al. 2020)."""

    def __init__(self, in_dim: int, n_freqs: int, include_input: bool = True) -> None:
        super().__init__()
        self.include_input = include_input
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi, persistent=False)
        self.out_dim = in_dim * (2 * n_freqs + int(include_input))

    def forward(self, x: Tensor) -> Tensor:
        xf = (x[..., None, :] * self.freqs[:, None]).flatten(-2)
        parts = [x, torch.sin(xf), torch.cos(xf)] if self.include_input else [torch.sin(xf), torch.cos(xf)]
        return torch.cat(parts, dim=-1)


def grid_lookup(x: Tensor, resolution: Tensor, stride: Tensor, corner_offset: Tensor, offset: Tensor,
                n_dense: int, mask: int) -> tuple[Tensor, Tensor]:
    """Table rows ``[N, L, 8]`` (int64) and trilinear weights ``[N, L, 8]`` for points ``[N, 3]`` in [0, 1].

    ``resolution`` ``[L, 3]``: each level's cells per axis.

    Rows and weights are built per axis first (vertex ``i`` or ``i + 1``) and
    combined into the 8 corners by broadcasting; corner ``c`` is ``4 cx + 2 cy + cz``.
    """
    pos = x[:, None, :] * resolution[None]  # [N, L, 3]
    base = pos.floor()
    frac = pos - base
    vert = base.int()
    parts = []
    if n_dense:  # dense levels: sum over the axes of (vertex + corner) * stride
        v = vert[:, :n_dense]
        parts.append((v * stride[:n_dense]).sum(-1)[..., None] + corner_offset[:n_dense] + offset[:n_dense, None])
    if n_dense < resolution.shape[0]:  # hashed levels: xor over the axes of (vertex + corner) * prime
        v = vert[:, n_dense:]
        h = [torch.stack([v[..., a] * p, (v[..., a] + 1) * p], dim=-1) for a, p in enumerate(_PRIMES)]
        hashed = (h[0][..., :, None, None] ^ h[1][..., None, :, None] ^ h[2][..., None, None, :]) & mask
        parts.append(hashed.flatten(-3) + offset[n_dense:, None])
    w = [torch.stack([1.0 - frac[..., a], frac[..., a]], dim=-1) for a in range(3)]
    weights = (w[0][..., :, None, None] * w[1][..., None, :, None] * w[2][..., None, None, :]).flatten(-3)
    return torch.cat(parts, dim=1).long(), weights


def grid_blend(table: Tensor, idx: Tensor, weights: Tensor) -> Tensor:
    """``Σ_corners weight · table[row]`` per level, flattened to ``[N, L * F]``."""
    n, levels, corners = idx.shape
    feats = table.index_select(0, idx.reshape(-1)).view(n, levels, corners, table.shape[1])
    w = feats * weights[..., None]
    # the corners summed as a pairwise tree, written out: it is the order TorchInductor's vectorised sum over them
    # took (so results stay bit for bit), and compiled as plain adds it runs faster than that masked reduction
    c = w.unbind(2)
    out = ((c[0] + c[4]) + (c[2] + c[6])) + ((c[1] + c[5]) + (c[3] + c[7]))
    return out.reshape(n, levels * table.shape[1])


def _encode(x: Tensor, table: Tensor, resolution: Tensor, stride: Tensor, corner_offset: Tensor, offset: Tensor,
            n_dense: int, mask: int) -> tuple[Tensor, Tensor, Tensor]:
    idx, weights = grid_lookup(x, resolution, stride, corner_offset, offset, n_dense, mask)
    return grid_blend(table, idx, weights.to(table.dtype)), idx, weights.to(table.dtype)


_encode_kernel = CpuCompiled(_encode)


class _GridEncode(torch.autograd.Function):
    """Hash-grid encoding with a hand-written backward: one ``bincount`` per feature channel.

    On the CPU that scatter is several times faster than ``index_add_`` into
    ``[rows, 2]`` (itself slower again with int32 indices) and far faster than
    the sort-based backward of ``F.embedding``.
    """

    @staticmethod
    def forward(ctx, table: Tensor, x: Tensor, grid: HashGrid) -> Tensor:  # type: ignore[override]
        n = len(x)
        if n < 2:  # torch compiles a kernel of its own for a batch of 0 or 1 points (seconds, mid-run): pad to 2
            x = torch.cat([x, x.new_zeros(2 - n, 3)])
        out, idx, weights = _encode_kernel(x, table, grid.resolution, grid.stride, grid.corner_offset, grid.offset,
                                           grid.n_dense, grid.mask)
        out, idx, weights = out[:n], idx[:n], weights[:n]
        ctx.save_for_backward(idx, weights)
        ctx.table_shape = table.shape
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        idx, weights = ctx.saved_tensors
        rows, features = ctx.table_shape
        n, levels, _ = weights.shape
        grad = grad.reshape(n, levels, features)
        flat = idx.reshape(-1)
        planes = [torch.bincount(flat, (weights * grad[..., f, None]).reshape(-1), minlength=rows)
                  for f in range(features)]
        return torch.stack(planes, dim=1).to(grad.dtype), None, None


class HashGrid(nn.Module):
    """Multi-resolution hash encoding of points in [0, 1]^3 -> ``[N, n_levels * n_features]``."""

    def __init__(
        self,
        n_levels: int = 12,
        n_features: int = 2,
        log2_table: int = 16,
        base_resolution: int = 16,
        max_resolution: int | tuple[int, int, int] = 512,
    ) -> None:
        super().__init__()
        finest = (max_resolution,) * 3 if isinstance(max_resolution, int) else tuple(max_resolution)
        if n_levels < 1 or n_features < 1 or base_resolution < 1 or min(finest) < base_resolution:
            raise ValueError("hash grid needs n_levels, n_features >= 1 and max_resolution >= base_resolution >= 1")
        # each axis grows from base_resolution to its own finest resolution (a box longer on one side gets more
        # cells along it, as TensoRF allots its voxels)
        growth = [math.exp((math.log(m) - math.log(base_resolution)) / max(n_levels - 1, 1)) for m in finest]
        res = torch.tensor([[math.floor(base_resolution * g**lvl) for g in growth] for lvl in range(n_levels)])
        size = 2**log2_table
        self.out_dim = n_levels * n_features
        self.register_buffer("resolution", res.float(), persistent=False)
        # dense levels index (x, y, z) with strides (1, R+1, (R+1)^2); finer levels hash
        stride = torch.stack([torch.ones_like(res[:, 0]), res[:, 0] + 1, (res[:, 0] + 1) * (res[:, 1] + 1)],
                             dim=-1).int()
        self.register_buffer("stride", stride, persistent=False)
        self.register_buffer("offset", (torch.arange(n_levels) * size).int(), persistent=False)
        corners = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)])  # x slowest
        self.register_buffer("corner_offset", (stride.long() @ corners.T).int(), persistent=False)  # [L, 8]
        self.n_dense = int(((res + 1).prod(-1) <= size).sum())  # coarse levels are dense, and they come first
        self.mask = size - 1
        self.table = nn.Parameter(torch.empty(n_levels * size, n_features).uniform_(-1e-4, 1e-4))

    def lookup(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table rows and trilinear weights ``[N, L, 8]`` of points ``[N, 3]`` in [0, 1] (see :func:`grid_lookup`)."""
        return grid_lookup(x, self.resolution, self.stride, self.corner_offset, self.offset, self.n_dense, self.mask)

    def forward(self, x: Tensor) -> Tensor:
        return _GridEncode.apply(self.table, x.clamp(0.0, 1.0), self)


class SphericalHarmonics(nn.Module):
    """Real spherical harmonics of unit directions up to degree 3 (16 coefficients)."""

    out_dim = 16

    def forward(self, d: Tensor) -> Tensor:
        x, y, z = d.unbind(-1)
        xx, yy, zz = x * x, y * y, z * z
        return torch.stack(
            [
                torch.full_like(x, 0.28209479177387814),
                -0.48860251190291987 * y,
                0.48860251190291987 * z,
                -0.48860251190291987 * x,
                1.0925484305920792 * x * y,
                -1.0925484305920792 * y * z,
                0.94617469575755997 * zz - 0.31539156525251999,
                -1.0925484305920792 * x * z,
                0.54627421529603959 * (xx - yy),
                0.59004358992664352 * y * (-3.0 * xx + yy),
                2.8906114426405538 * x * y * z,
                0.45704579946446572 * y * (1.0 - 5.0 * zz),
                0.3731763325901154 * z * (5.0 * zz - 3.0),
                0.45704579946446572 * x * (1.0 - 5.0 * zz),
                1.4453057213202769 * z * (xx - yy),
                0.59004358992664352 * x * (-xx + 3.0 * yy),
            ],
            dim=-1,
        )
