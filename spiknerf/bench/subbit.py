"""Binary and sub-bit weights, trained through a straight-through estimator.

Binary weights (the binary-weight SNN baseline): each output row ``r`` keeps a
float scale and one sign per weight, ``w_q = α_r sign(w)`` with
``α_r = mean |w_r|`` (XNOR-Net scaling): 1 bit per weight plus the scales.

Sub-bit weights (S2NN, Sub-bit Spiking Neural Networks): each row is cut into
blocks of ``k`` consecutive weights, and a block's sign pattern is replaced by
the nearest codeword of a per-layer codebook of ``2^η`` binary blocks, η < k.
A block is then stored as an η-bit index, so a weight costs η/k bits, plus the
codebook (``2^η k`` bits) and the row scales (32 bits a row), all counted by
:func:`bits_per_weight`.

* Codebook: the ``2^η`` most frequent sign patterns among the layer's blocks
  (binary kernels concentrate on few patterns; Sub-bit Neural Networks, Wang et
  al., NeurIPS 2021), chosen again from the latent weights at every forward.
* Outlier-aware scaling (S2NN): Tukey's fences ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``
  of the layer's latent weights mark outliers; they are pulled in to the fence
  before the scale and the codeword are chosen, so that one large weight
  neither inflates its row's scale nor decides its block's codeword alone.
* Nearest codeword: all codewords have the same norm, so the nearest one in
  Euclidean distance is the one with the largest inner product with the block.
* Gradient: straight through to the latent weights, zero beyond the fences.

Layers get these weights through ``torch.nn.utils.parametrize``, so a
quantized model is still a plain :class:`~spiknerf.neurons.SpikingMLP`: its
forward, op counting and evaluation are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

FLOAT_BITS = 32


def tukey_fences(w: Tensor, k: float = 1.5) -> tuple[Tensor, Tensor]:
    """``(Q1 - k IQR, Q3 + k IQR)`` of all entries of ``w`` (quartiles as order statistics)."""
    flat = w.detach().flatten()
    n = flat.numel()
    q1 = flat.kthvalue(1 + round(0.25 * (n - 1))).values
    q3 = flat.kthvalue(1 + round(0.75 * (n - 1))).values
    iqr = q3 - q1
    return q1 - k * iqr, q3 + k * iqr


class QuantizedWeight(nn.Module):
    """Parametrization of a ``[out, in]`` weight: binary (``eta=None``) or sub-bit with ``2^eta`` codewords."""

    def __init__(self, block: int = 8, eta: int | None = None, outlier_aware: bool = False) -> None:
        super().__init__()
        if eta is not None and not 0 <= eta < block:
            raise ValueError(f"eta must be in [0, block) for sub-bit weights (got eta={eta}, block={block})")
        if eta is not None and block > 16:
            raise ValueError(f"block must be <= 16 (got {block}): codewords are counted over all 2^block patterns")
        self.block, self.eta, self.outlier_aware = block, eta, outlier_aware

    def _clamped(self, w: Tensor) -> Tensor:
        if not self.outlier_aware:
            return w
        lo, hi = tukey_fences(w)
        return torch.maximum(torch.minimum(w, hi), lo)  # gradient 0 beyond the fences

    def _signs(self, w: Tensor) -> Tensor:
        """±1 pattern of each weight: its own sign, or its block's nearest codeword."""
        signs = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        if self.eta is None:
            return signs
        out_f, in_f = w.shape
        pad = -in_f % self.block
        blocks = F.pad(w, (0, pad)).reshape(-1, self.block)
        bits = (F.pad(signs, (0, pad)).reshape(-1, self.block) > 0).long()
        codes = (bits << torch.arange(self.block)).sum(1)
        top = torch.bincount(codes, minlength=1 << self.block).topk(1 << self.eta).indices
        codebook = ((top[:, None] >> torch.arange(self.block)) & 1).to(w.dtype) * 2 - 1  # [2^eta, block]
        chosen = codebook[(blocks @ codebook.t()).argmax(1)]
        return chosen.reshape(out_f, in_f + pad)[:, :in_f]

    def forward(self, w: Tensor) -> Tensor:
        wc = self._clamped(w)
        alpha = wc.detach().abs().mean(1, keepdim=True)
        q = alpha * self._signs(wc.detach())
        return q + (wc - wc.detach())

    def storage_bits(self, out_features: int, in_features: int) -> int:
        """Bits to store the quantized weight: signs or block indices, codebook, row scales."""
        scales = FLOAT_BITS * out_features
        if self.eta is None:
            return out_features * in_features + scales
        blocks = out_features * -(-in_features // self.block)
        return blocks * self.eta + (1 << self.eta) * self.block + scales


def quantize_weights(model: nn.Module, block: int = 8, eta: int | None = None, outlier_aware: bool = False) -> None:
    """Give every linear layer of ``model`` binary (``eta=None``) or sub-bit weights, in place."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            parametrize.register_parametrization(m, "weight", QuantizedWeight(block, eta, outlier_aware))


def bits_per_weight(model: nn.Module) -> float:
    """Storage bits per weight over all linear layers (biases, kept in float, are not weights)."""
    bits = weights = 0
    for m in model.modules():
        if not isinstance(m, nn.Linear):
            continue
        out_f, in_f = m.out_features, m.in_features
        weights += out_f * in_f
        if parametrize.is_parametrized(m, "weight"):
            bits += m.parametrizations.weight[0].storage_bits(out_f, in_f)
        else:
            bits += FLOAT_BITS * out_f * in_f
    return bits / weights if weights else 0.0
