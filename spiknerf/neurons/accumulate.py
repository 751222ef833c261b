"""Accumulate-only evaluation of a folded spike-reading layer.

With inputs ``s'`` in {-2, -1, 0, 1, 2} a layer ``W s' + b`` needs no
multiplication: each output row is the bias plus the weight columns of the +1
inputs, minus those of the -1 inputs, plus and minus the columns of the ±2
inputs shifted by one bit. This module does exactly that (gathers and
``index_add_``), in row chunks so the gathered columns stay small.
"""

from __future__ import annotations

import torch
from torch import Tensor

# gathered weight entries per chunk: bounds the temporary [nnz, out] buffer
_CHUNK_ENTRIES = 1 << 22
SPIKE_VALUES = (1, -1, 2, -2)  # the non-zero values a folded ternary spike can take


def accumulate_linear(s: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``W s + b`` for ``s`` in {-2, -1, 0, 1, 2} ``[..., in]`` by gathering and adding weight columns.

    Args:
        s: folded spikes ``[..., in]``, each -2, -1, 0, 1 or 2.
        weight: ``[out, in]``.
        bias: ``[out]`` or ``None``.

    Returns:
        ``[..., out]``, equal to ``F.linear(s, weight, bias)`` up to float rounding.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import accumulate_linear
        >>> w = torch.tensor([[1.0, 2.0, 3.0]])
        >>> accumulate_linear(torch.tensor([[1.0, -2.0, 0.0]]), w, torch.tensor([0.5])).tolist()
        [[-2.5]]
    """
    out_features, in_features = weight.shape
    if s.shape[-1] != in_features:
        raise ValueError(f"s must end in {in_features} features (got shape {tuple(s.shape)})")
    flat = s.reshape(-1, in_features)
    if flat.numel() and not bool(((flat == flat.round()) & (flat.abs() <= 2)).all()):
        raise ValueError("s must hold only -2, -1, 0, 1 and 2 (a folded ternary spike tensor)")
    columns = weight.t().contiguous()  # row i = the weights leaving input i
    rows_per_chunk = max(1, _CHUNK_ENTRIES // (in_features * out_features))
    outs = []
    for start in range(0, flat.shape[0], rows_per_chunk):
        chunk = flat[start : start + rows_per_chunk]
        out = torch.zeros(chunk.shape[0], out_features, dtype=weight.dtype, device=weight.device)
        for value in SPIKE_VALUES:
            r, c = (chunk == value).nonzero(as_tuple=True)
            if len(r):
                out.index_add_(0, r, columns[c], alpha=value)  # alpha ±1 adds or subtracts, ±2 is a shift
        outs.append(out)
    out = torch.cat(outs) if outs else flat.new_zeros(0, out_features)
    if bias is not None:
        out = out + bias
    return out.reshape(*s.shape[:-1], out_features)
