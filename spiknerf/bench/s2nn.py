"""S2NN: sub-bit spiking neural networks (sub-bit weights + membrane-potential distillation).

The student is the shared network with sub-bit weights on every linear layer
(:mod:`spiknerf.bench.subbit`: blocks of ``k`` binary weights replaced by the
index of the nearest of ``2^η`` per-layer codewords, outlier-aware scaling
with Tukey's fences). Its teacher is the same network in full precision,
trained first with plain BPTT and then frozen.

Membrane-potential distillation: the quantized student learns to reproduce the
teacher's membrane potentials, which carry more than its binary spikes (how
far each neuron is from firing)::

    L = CE(student) + λ Σ_l mean_{t,b,n} (H_l^student - H_l^teacher)²

with both sets of potentials from
:func:`~spiknerf.bench.classifier.membrane_forward`. The student starts from
the teacher's weights (its latent full-precision weights), the usual start for
quantization-aware training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spiknerf.bench.classifier import Objective, membrane_forward
from spiknerf.neurons import SpikingMLP

DISTILL_WEIGHT = 1.0


class S2NNObjective(Objective):
    """Cross-entropy plus membrane-potential distillation from a frozen full-precision teacher."""

    def __init__(self, student: SpikingMLP, teacher: SpikingMLP, weight: float = DISTILL_WEIGHT) -> None:
        super().__init__(student)
        self.teacher, self.weight = teacher.eval(), weight
        for p in teacher.parameters():
            p.requires_grad_(False)

    def frozen_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.teacher.parameters())

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        logits, potentials = membrane_forward(self.model, x)
        with torch.no_grad():
            _, targets = membrane_forward(self.teacher, x)
        distill = sum(F.mse_loss(h, g) for h, g in zip(potentials, targets, strict=True))
        return F.cross_entropy(logits, y) + self.weight * distill
