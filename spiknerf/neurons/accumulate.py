"""Accumulate-only evaluation of a folded spike-reading layer.

With inputs ``s' ∈ {-1, 0, 1}`` a layer ``W s' + b`` needs no multiplication:
each output row is the bias plus the weight columns of the +1 inputs minus the
weight columns of the -1 inputs. This module does exactly that (gathers and
``index_add_``), in row chunks so the gathered columns stay small.
"""

from __future__ import annotations

import torch
from torch import Tensor

# gathered weight entries per chunk: bounds the temporary [nnz, out] buffer
_CHUNK_ENTRIES = 1 << 22


def accumulate_linear(s: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``W s + b`` for ``s`` in {-1, 0, 1} ``[..., in]`` by gathering and adding weight columns."""
    out_features, in_features = weight.shape
    if s.shape[-1] != in_features:
        raise ValueError(f"s must end in {in_features} features (got shape {tuple(s.shape)})")
    flat = s.reshape(-1, in_features)
    if flat.numel() and not bool(((flat == 0) | (flat == 1) | (flat == -1)).all()):
        raise ValueError("s must hold only -1, 0 and 1 (a folded ternary spike tensor)")
    columns = weight.t().contiguous()  # row i = the weights leaving input i
    rows_per_chunk = max(1, _CHUNK_ENTRIES // (in_features * out_features))
    outs = []
    for start in range(0, flat.shape[0], rows_per_chunk):
        chunk = flat[start : start + rows_per_chunk]
        plus = torch.zeros(chunk.shape[0], out_features, dtype=weight.dtype, device=weight.device)
        minus = torch.zeros_like(plus)
        r, c = (chunk > 0).nonzero(as_tuple=True)
        plus.index_add_(0, r, columns[c])
        r, c = (chunk < 0).nonzero(as_tuple=True)
        minus.index_add_(0, r, columns[c])
        outs.append(plus - minus)
    out = torch.cat(outs) if outs else flat.new_zeros(0, out_features)
    if bias is not None:
        out = out + bias
    return out.reshape(*s.shape[:-1], out_features)
