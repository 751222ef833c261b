r"""Re-parameterization of ternary spiking models for inference (Spik-NeRF).

A ternary spike ``s ∈ {0, 1, 2}`` is rewritten as ``s' = s - c`` and every
layer reading it absorbs the shift into its bias::

    W s + b = W (s' + c) + b = W s' + (W c + b)

The paper's fold takes ``c = 1`` for every neuron: ``s' ∈ {-1, 0, 1}``, so a
spike-reading layer needs only additions and subtractions of weight columns.
A spike equal to ``c`` costs nothing, every other value costs one addition;
with ``c = 1`` a silent neuron (``s = 0``) costs a subtraction, so the paper's
fold makes a sparsely firing model *more* expensive. :func:`calibrate_offsets`
therefore picks ``c`` per unit: its most frequent spike value on calibration
inputs (the training data, not the data later measured). Then ``s'`` lies in
{-2, ..., 2}, where ±2 is the weight column shifted by one bit (as a 2 is in
the unfolded form). Either way the folded model gives the training form's
outputs up to float rounding of the changed summation (tested).

Assumes what :class:`~spiknerf.neurons.layers.SpikingMLP` and the NeRF student
guarantee: every :class:`~spiknerf.neurons.layers.SpikeLinear` reads the
output of one ternary neuron module as it is (no slicing or concatenation).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from spiknerf.neurons.layers import SpikeLinear
from spiknerf.neurons.lif import LIFNeuron, TernaryLIF

# spike values a ternary neuron emits
TERNARY_VALUES = (0.0, 1.0, 2.0)


class ShiftedSpikes(nn.Module):
    """Wraps a ternary neuron so that it emits ``s - offset`` (``offset``: one per unit ``[N]``, or a scalar)."""

    def __init__(self, neuron: TernaryLIF, offset: Tensor) -> None:
        super().__init__()
        self.neuron = neuron
        self.register_buffer("offset", offset)

    def forward(self, x: Tensor | None, current: Tensor | None = None, steps: int | None = None) -> Tensor:
        return self.neuron(x, current, steps) - self.offset


def _ternary_neurons(model: nn.Module) -> dict[str, TernaryLIF]:
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, LIFNeuron)}
    if not neurons or not all(isinstance(m, TernaryLIF) for m in neurons.values()):
        raise ValueError("model must contain only ternary neurons (TernaryLIF) to be reparameterized")
    if any(isinstance(m, ShiftedSpikes) for m in model.modules()):
        raise ValueError("model is already reparameterized")
    return neurons


@torch.no_grad()
def wiring(model: nn.Module, *inputs: Tensor) -> dict[str, str]:
    """Which neuron module feeds each :class:`SpikeLinear` (names), found by running ``model(*inputs)``."""
    made: dict[int, tuple[str, Tensor]] = {}  # holding each output keeps its id from being reused
    fed: dict[str, str] = {}
    unmatched: list[str] = []

    def neuron_hook(name: str):
        return lambda m, args, out: made.__setitem__(id(out), (name, out))

    def linear_hook(name: str):
        def hook(m: nn.Module, args: tuple) -> None:
            source = made.get(id(args[0]))
            if source is None:
                unmatched.append(name)
            else:
                fed[name] = source[0]
        return hook

    handles = [m.register_forward_hook(neuron_hook(n)) for n, m in model.named_modules()
               if isinstance(m, LIFNeuron)]
    handles += [m.register_forward_pre_hook(linear_hook(n)) for n, m in model.named_modules()
                if isinstance(m, SpikeLinear)]
    try:
        with torch.no_grad():  # a training model's steps are compiled, and then make no calls to hook
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    if unmatched:
        raise ValueError(f"cannot fold {', '.join(sorted(set(unmatched)))}: its input is not a neuron's output")
    return fed


@torch.no_grad()
def calibrate_offsets(model: nn.Module, *inputs: Tensor) -> dict[str, Tensor]:
    """Per ternary neuron module, each unit's most frequent spike value on ``model(*inputs)``.

    Used as the folding offsets, these make the most common spike of every unit
    free, which minimises the folded model's synaptic operations on data like
    ``inputs``.

    Args:
        model: a model whose neurons are all :class:`TernaryLIF`.
        *inputs: calibration data, as ``model`` is called (training data, not the data measured later).

    Returns:
        ``{neuron module name: offsets [units]}``, each offset 0, 1 or 2.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from spiknerf.neurons import SpikeReadout, SpikingLinear, calibrate_offsets
        >>> model = nn.Sequential(SpikingLinear(16, 8, neuron="ternary", T=2), SpikeReadout(8, 3))
        >>> offsets = calibrate_offsets(model, torch.rand(32, 16))
        >>> list(offsets), offsets["0.neuron"].shape
        (['0.neuron'], torch.Size([8]))
    """
    neurons = _ternary_neurons(model)
    counts: dict[str, Tensor] = {}

    def hook(name: str):
        def count(m: nn.Module, args: tuple, out: Tensor) -> None:
            flat = out.reshape(-1, out.shape[-1])
            c = torch.stack([(flat == v).sum(0) for v in TERNARY_VALUES])
            counts[name] = counts[name] + c if name in counts else c
        return count

    handles = [m.register_forward_hook(hook(n)) for n, m in neurons.items()]
    try:
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
    values = torch.tensor(TERNARY_VALUES)
    return {n: values[c.argmax(0).cpu()] for n, c in counts.items()}


def reparameterize(model: nn.Module, accumulate: bool = False, offsets: dict[str, Tensor] | None = None,
                   inputs: tuple[Tensor, ...] | None = None) -> nn.Module:
    """The inference form of a ternary model (a folded copy; ``model`` is untouched).

    Args:
        model: a model whose neurons are all :class:`TernaryLIF`, each read by one :class:`SpikeLinear`.
        accumulate: run the spike-reading layers as gather-and-add
            (:func:`~spiknerf.neurons.accumulate.accumulate_linear`) instead of a float matmul.
        offsets: ``None`` for the paper's fold (``c = 1`` everywhere), else each neuron module's
            per-unit ``c`` (from :func:`calibrate_offsets`).
        inputs: with ``offsets``, any batch the model accepts, run once to find which neuron feeds
            which layer.

    Returns:
        The folded copy: its outputs equal ``model``'s up to float rounding.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from spiknerf.neurons import SpikeReadout, SpikingLinear, calibrate_offsets, reparameterize
        >>> model = nn.Sequential(SpikingLinear(16, 8, neuron="ternary", T=2), SpikeReadout(8, 3))
        >>> x = torch.rand(32, 16)
        >>> folded = reparameterize(model, offsets=calibrate_offsets(model, x), inputs=(x,))
        >>> torch.allclose(folded(x), model(x), atol=1e-6)
        True
    """
    neurons = _ternary_neurons(model)
    if offsets is not None:
        if inputs is None:
            raise ValueError("per-unit offsets need inputs to find which neuron feeds which layer")
        if set(offsets) != set(neurons):
            raise ValueError(f"offsets must name every ternary neuron module: {', '.join(sorted(neurons))}")
    feeds = wiring(model, *inputs) if offsets is not None else {}
    folded = copy.deepcopy(model)
    param = next(model.parameters())
    # the paper's fold: one scalar c = 1 for every unit
    shifts = {n: (torch.ones(()) if offsets is None else offsets[n]).to(param.device, param.dtype) for n in neurons}
    modules = dict(folded.named_modules())
    for name, shift in shifts.items():
        parent, _, child = name.rpartition(".")
        setattr(modules[parent] if parent else folded, child, ShiftedSpikes(modules[name], shift))
    with torch.no_grad():
        for name, layer in modules.items():
            if isinstance(layer, SpikeLinear):
                shift_term = layer.weight.sum(dim=1) if offsets is None else layer.weight @ shifts[feeds[name]]
                if layer.bias is None:
                    layer.bias = nn.Parameter(shift_term.clone())
                else:
                    layer.bias += shift_term
                layer.accumulate = accumulate
    return folded

