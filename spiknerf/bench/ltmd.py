"""LTMD: learnable thresholds and moderate dropout (Wang et al., NeurIPS 2022).

* Learnable thresholding neurons: each spiking layer's threshold is
  ``θ = tanh(w)`` for one trained parameter ``w`` (the core's
  ``learnable_threshold=True``), starting at the binary LIF's 0.5.
* Moderate dropout: after each spiking layer, neuron ``n`` is dropped with a
  probability that grows with how quiet it is, at a fixed expected rate ``p``::

      r_n = mean firing rate of n over the batch and the T steps (no gradient)
      q_n = 1 - r_n / max_m r_m                      (quietness in [0, 1])
      d_n = min(p q_n / mean_m q_m, d_max)           (mean_n d_n = p unless capped)

  The Bernoulli mask is drawn per sample and neuron and shared over the T
  steps (a dropped neuron is silent for the whole sample); kept spikes are
  scaled by ``1 / (1 - d_n)`` so their expectation is unchanged.
* Paired-pass consistency: each batch runs twice with independent masks and
  the loss is ``0.5 (CE_1 + CE_2) + 0.5 (KL(p_1 || p_2) + KL(p_2 || p_1))``.

At test time no neuron is dropped: the evaluated model is the plain network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spiknerf.bench.classifier import Objective
from spiknerf.neurons import SpikingMLP

MAX_DROP = 0.9
DROP_RATE = 0.2  # p: the expected fraction of neurons dropped (picked on validation splits)


def moderate_dropout(s: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Drop neurons of ``s`` ``[T, B, N]`` with quieter neurons dropped more; mask shared over T."""
    if p == 0:
        return s
    rate = (s.detach() != 0).float().mean((0, 1))  # [N]
    quiet = 1.0 - rate / rate.max().clamp_min(1e-12)
    drop = torch.where(quiet.mean() > 0, p * quiet / quiet.mean().clamp_min(1e-12), torch.full_like(quiet, p))
    drop = drop.clamp(max=MAX_DROP)
    keep = 1.0 - drop
    mask = torch.rand(s.shape[1:], generator=generator, dtype=s.dtype) < keep
    return s * (mask / keep)


def symmetric_kl(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """``KL(p_a || p_b) + KL(p_b || p_a)``, averaged over the batch."""
    la, lb = F.log_softmax(logits_a, 1), F.log_softmax(logits_b, 1)
    return (F.kl_div(lb, la, log_target=True, reduction="batchmean")
            + F.kl_div(la, lb, log_target=True, reduction="batchmean"))


class LTMDObjective(Objective):
    """Two passes with independent moderate-dropout masks and the consistency loss."""

    def __init__(self, model: SpikingMLP, p: float = DROP_RATE, generator: torch.Generator | None = None) -> None:
        super().__init__(model)
        if not 0 <= p < MAX_DROP:
            raise ValueError(f"dropout rate p must be in [0, {MAX_DROP}) (got {p})")
        self.p, self.generator = p, generator

    def dropped_forward(self, x: Tensor) -> Tensor:
        s = x
        for layer in self.model.layers:
            s = moderate_dropout(layer(s), self.p, self.generator)
        return self.model.readout(s)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        a, b = self.dropped_forward(x), self.dropped_forward(x)
        return 0.5 * (F.cross_entropy(a, y) + F.cross_entropy(b, y)) + 0.5 * symmetric_kl(a, b)
