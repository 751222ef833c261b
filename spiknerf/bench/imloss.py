"""IM-Loss: information maximisation loss with an evolving surrogate (Guo et al., NeurIPS 2022).

* Information maximisation: a binary spike carries the most information
  (entropy) when it fires with probability 0.5, which for a membrane potential
  distributed symmetrically about its mean happens when that mean sits at the
  threshold. The regulariser pulls each spiking layer's mean membrane
  potential (before firing, over batch, steps and neurons) to its threshold::

      L = CE + λ Σ_l (mean(H_l) - θ_l)²

* Evolving surrogate gradient (ESG): the tanh surrogate
  ``g(x) = (K/2)(1 - tanh²(K x))`` starts wide (K_min: every neuron gets some
  gradient) and sharpens each epoch towards the true step (K_max: the gradient
  matches the forward spike), ``K_i = K_min (K_max / K_min)^(i / (N - 1))``.
  The core's ``Surrogate.alpha`` is K, changed in place.

The membrane potentials come from :func:`~spiknerf.bench.classifier.membrane_forward`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from spiknerf.bench.classifier import Objective, membrane_forward
from spiknerf.neurons import LIFNeuron, SpikingMLP

IM_WEIGHT, K_MIN, K_MAX = 0.1, 2.0, 8.0


def esg_sharpness(epoch: int, epochs: int, k_min: float, k_max: float) -> float:
    """K of the evolving surrogate at ``epoch`` of ``epochs``: geometric from k_min to k_max."""
    frac = epoch / (epochs - 1) if epochs > 1 else 1.0
    return k_min * (k_max / k_min) ** frac


class IMLossObjective(Objective):
    """Cross-entropy plus the information-maximisation regulariser, with the evolving tanh surrogate."""

    def __init__(self, model: SpikingMLP, weight: float = IM_WEIGHT, k_min: float = K_MIN,
                 k_max: float = K_MAX) -> None:
        super().__init__(model)
        if not 0 < k_min <= k_max:
            raise ValueError(f"need 0 < k_min <= k_max (got {k_min}, {k_max})")
        self.weight, self.k_min, self.k_max = weight, k_min, k_max

    def neurons(self) -> list[LIFNeuron]:
        return [m for m in self.model.modules() if isinstance(m, LIFNeuron)]

    def start_epoch(self, epoch: int, epochs: int) -> None:
        k = esg_sharpness(epoch, epochs, self.k_min, self.k_max)
        for n in self.neurons():
            n.surrogate.alpha = k

    def information_loss(self, potentials: list[Tensor]) -> Tensor:
        """Σ_l (mean(H_l) - θ_l)² over the spiking layers."""
        return sum((h.mean() - layer.neuron.threshold) ** 2
                   for h, layer in zip(potentials, self.model.layers, strict=True))

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        logits, potentials = membrane_forward(self.model, x)
        return F.cross_entropy(logits, y) + self.weight * self.information_loss(potentials)
