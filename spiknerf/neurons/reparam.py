r"""Re-parameterization of ternary spiking models for inference (Spik-NeRF).

A ternary spike ``s ∈ {0, 1, 2}`` is rewritten as ``s' = s - 1 ∈ {-1, 0, 1}``;
every layer reading it keeps its weights and absorbs the shift into its bias::

    W s + b = W (s' + 1) + b = W s' + (W·1 + b)

so a spike-reading layer needs only additions and subtractions of weight
columns. The folded model gives the training form's outputs up to float
rounding of the changed summation (tested to 1e-5 in float32).

Assumes what :class:`~spiknerf.neurons.layers.SpikingMLP` and the NeRF student
guarantee: every :class:`~spiknerf.neurons.layers.SpikeLinear` reads the output
of a ternary neuron, and nothing else reads it.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from spiknerf.neurons.layers import SpikeLinear
from spiknerf.neurons.lif import LIFNeuron, TernaryLIF


class ShiftedSpikes(nn.Module):
    """Wraps a ternary neuron so that it emits ``s - 1 ∈ {-1, 0, 1}``."""

    def __init__(self, neuron: TernaryLIF) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: Tensor) -> Tensor:
        return self.neuron(x) - 1.0


def reparameterize(model: nn.Module, accumulate: bool = False) -> nn.Module:
    """The inference form of a ternary model (a folded copy; ``model`` is untouched).

    With ``accumulate=True`` the spike-reading layers run gather-and-add
    (:func:`~spiknerf.neurons.accumulate.accumulate_linear`) instead of a
    float matmul by {-1, 0, 1}.
    """
    neurons = [m for m in model.modules() if isinstance(m, LIFNeuron)]
    if not neurons or not all(isinstance(m, TernaryLIF) for m in neurons):
        raise ValueError("model must contain only ternary neurons (TernaryLIF) to be reparameterized")
    if any(isinstance(m, ShiftedSpikes) for m in model.modules()):
        raise ValueError("model is already reparameterized")
    folded = copy.deepcopy(model)
    for parent in list(folded.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, TernaryLIF):
                setattr(parent, name, ShiftedSpikes(child))
    with torch.no_grad():
        for layer in folded.modules():
            if isinstance(layer, SpikeLinear):
                ones_term = layer.weight.sum(dim=1)
                if layer.bias is None:
                    layer.bias = nn.Parameter(ones_term.clone())
                else:
                    layer.bias += ones_term
                layer.accumulate = accumulate
    return folded
