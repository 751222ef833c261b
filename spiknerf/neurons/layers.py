"""Building blocks: linear synapses feeding spiking neurons over T steps.

* :class:`SpikeLinear` is an ``nn.Linear`` whose input is spikes. The op counter
  counts it in synaptic operations, and :func:`~spiknerf.neurons.reparam.reparameterize`
  folds it. After folding it may run accumulate-only (``accumulate=True``).
* :class:`SpikingLinear` is synapses followed by a neuron. An analog input
  ``[B, in]`` is a constant current at every step: its product is computed once
  and broadcast over T (and counted once). A ``[T, B, in]`` input is used step
  by step.
* :class:`SpikeReadout` is a non-spiking readout that averages over T (traced into a compiled graph, it
  reads the spikes' mean once: the same sum, half the matmul).
* :class:`SpikingMLP` chains them: analog input -> spiking hidden layers -> readout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf.neurons.accumulate import accumulate_linear
from spiknerf.neurons.lif import LIFNeuron, check_sequence, make_neuron


def check_steps(T: int) -> int:
    """T must be a positive integer."""
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer (got {T})")
    return int(T)


class SpikeLinear(nn.Linear):
    """A linear layer that reads spikes ``[..., in]``.

    :func:`~spiknerf.neurons.count_ops` counts it in synaptic operations, and
    :func:`~spiknerf.neurons.reparameterize` folds it. ``accumulate`` switches
    to the gather-and-add evaluation of a folded layer (inputs in {-2, ..., 2});
    it is set by ``reparameterize(..., accumulate=True)``.

    Args:
        in_features, out_features, bias: as ``nn.Linear``'s.
    """

    accumulate: bool = False

    def forward(self, s: Tensor) -> Tensor:
        if self.accumulate:
            return accumulate_linear(s, self.weight, self.bias)
        return F.linear(s, self.weight, self.bias)


class SpikingLinear(nn.Module):
    """Synapses (``fc``) then a spiking neuron, over ``T`` steps.

    ``forward(x, current=None)`` takes ``x`` as ``[B, in]`` (a constant analog
    input: computed once, presented at every step) or ``[T, B, in]``, plus an
    optional extra input current ``[B, out]`` or ``[T, B, out]`` (for example a
    view-direction term computed elsewhere). It returns spikes ``[T, B, out]``.

    Args:
        in_features, out_features: sizes of the synapses.
        neuron: a neuron module called as :class:`~spiknerf.neurons.lif.LIFNeuron` is (currents, a held
            current, steps), or its kind by name (``make_neuron``).
        T: time steps of an analog input.
        spike_input: the input is spikes: the synapses are a :class:`SpikeLinear`.
        bias: give the synapses a bias.
        **neuron_kwargs: the neuron's arguments when ``neuron`` is a name.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import SpikingLinear
        >>> layer = SpikingLinear(8, 4, neuron="ternary", T=2)
        >>> layer(torch.rand(5, 8)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        neuron: LIFNeuron | str = "ternary",
        T: int = 2,
        spike_input: bool = False,
        bias: bool = True,
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        self.T = check_steps(T)
        self.spike_input = spike_input
        linear = SpikeLinear if spike_input else nn.Linear
        self.fc = linear(in_features, out_features, bias=bias)
        self.neuron = make_neuron(neuron, **neuron_kwargs) if isinstance(neuron, str) else neuron

    def forward(self, x: Tensor, current: Tensor | None = None) -> Tensor:
        # the neuron takes what does not change over the steps as a held current, read once a step, not T copies
        if x.dim() == 2 and not self.spike_input:
            varying, held = None, self.fc(x)
        elif x.dim() == 3:
            varying, held = self.fc(x), None
        else:
            want = "[T, B, in]" if self.spike_input else "[B, in] or [T, B, in]"
            raise ValueError(f"x must be {want} (got shape {tuple(x.shape)})")
        if current is not None and current.dim() == 3:
            varying = current if varying is None else varying + current
        elif current is not None:
            held = current if held is None else held + current
        return self.neuron(varying, current=held, steps=self.T)


class SpikeReadout(nn.Module):
    """Non-spiking readout: ``mean_t(W s[t] + b)`` over spikes ``[T, B, in]`` -> ``[B, out]``.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import SpikeReadout
        >>> readout = SpikeReadout(4, 3)
        >>> readout(torch.ones(2, 5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = SpikeLinear(in_features, out_features, bias=bias)

    def forward(self, s: Tensor) -> Tensor:
        check_sequence(s, "s")
        if torch.compiler.is_compiling() and not self.fc.accumulate:
            # the same sum read once (W mean_t s + b), half the matmul forward and backward; eager it reads every
            # step, as the op counters and an accumulate-only fold must see it
            return self.fc(s.mean(0))
        return self.fc(s).mean(0)


class SpikingMLP(nn.Module):
    """Analog input -> ``hidden_layers`` spiking layers of ``hidden_features`` -> readout averaged over T.

    Input ``[B, in]`` (a constant current at every step) or ``[T, B, in]``;
    output ``[B, out]``. Extra keyword arguments configure the neurons.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import SpikingMLP
        >>> mlp = SpikingMLP(64, 32, 10, hidden_layers=2, neuron="binary", T=4)
        >>> mlp(torch.rand(8, 64)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int,
        hidden_layers: int = 2,
        neuron: str = "ternary",
        T: int = 2,
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        if hidden_layers < 1:
            raise ValueError(f"hidden_layers must be >= 1 (got {hidden_layers})")
        self.T = check_steps(T)
        self.layers = nn.ModuleList(
            SpikingLinear(in_features if k == 0 else hidden_features, hidden_features, neuron, T,
                          spike_input=k > 0, **neuron_kwargs)
            for k in range(hidden_layers)
        )
        self.readout = SpikeReadout(hidden_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        s = x
        for layer in self.layers:
            s = layer(s)
        return self.readout(s)
