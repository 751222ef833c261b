"""Operation and energy counting: MACs for analog layers, SOPs for spike-driven ones.

* An ``nn.Linear`` or ``nn.Conv*d`` reading analog values costs multiply-accumulates
  (MACs): ``rows × in × out`` for a linear layer. A layer whose analog input is
  constant over the T steps is evaluated once (see ``SpikingLinear``) and so is
  counted once.
* A :class:`~spiknerf.neurons.layers.SpikeLinear` costs synaptic operations
  (SOPs): ``(number of non-zero inputs) × out``, summed over all T steps; a 2
  is one shifted addition. In a re-parameterized model the inputs are
  ``s - c``, so a spike equal to the unit's offset ``c`` costs nothing (see
  :mod:`~spiknerf.neurons.reparam`).
* Energy = MACs · E_MAC + SOPs · E_AC, with 45 nm figures by default
  (E_MAC = 4.6 pJ, E_AC = 0.9 pJ; Horowitz, ISSCC 2014).

Counting runs the model once with forward hooks (:class:`OpRecorder`, which can also split a batch's
energy by sample); nothing is left attached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from spiknerf.neurons.layers import SpikeLinear
from spiknerf.neurons.lif import LIFNeuron

E_MAC_PJ = 4.6
E_AC_PJ = 0.9


@dataclass
class LayerOps:
    """Ops of one layer: ``kind`` is ``"mac"`` or ``"sop"``."""

    name: str
    kind: str
    ops: float


@dataclass
class OpCount:
    """Totals over one forward pass, and per sample (divided by ``samples``).

    Attributes:
        macs, sops: multiply-accumulates and synaptic operations over the pass.
        samples: what the per-sample figures divide by.
        e_mac, e_ac: energy of one MAC and of one accumulate, in pJ.
        layers: each layer's kind (``"mac"`` or ``"sop"``) and count.
        firing_rate: each neuron module's fraction of non-zero outputs.
        unit_firing_rate: the same per unit ``[units]``.
        neuron_outputs: outputs of all neuron modules over the pass (units × steps × samples, summed over
            modules): what a firing rate divides by.
    """

    macs: float
    sops: float
    samples: int
    e_mac: float = E_MAC_PJ
    e_ac: float = E_AC_PJ
    layers: list[LayerOps] = field(default_factory=list)
    firing_rate: dict[str, float] = field(default_factory=dict)
    unit_firing_rate: dict[str, Tensor] = field(default_factory=dict)
    neuron_outputs: float = 0.0

    @property
    def energy_pj(self) -> float:
        return self.macs * self.e_mac + self.sops * self.e_ac

    @property
    def macs_per_sample(self) -> float:
        return self.macs / self.samples

    @property
    def sops_per_sample(self) -> float:
        return self.sops / self.samples

    @property
    def energy_pj_per_sample(self) -> float:
        return self.energy_pj / self.samples


def _conv_macs(m: nn.modules.conv._ConvNd, out: Tensor) -> float:
    k = 1
    for d in m.kernel_size:
        k *= d
    return float(out.numel() * (m.in_channels // m.groups) * k)


def linear_ops(m: nn.Linear, x: Tensor) -> tuple[str, Tensor]:
    """The kind (``"mac"`` or ``"sop"``) and the ops of one call of a linear layer on ``x``, per row of ``x``'s
    second-last dimension (``[B]`` for ``[B, in]`` and ``[T, B, in]`` inputs; float64, exact counts).

    A spike-reading layer costs its fan-out for every non-zero input; an analog one ``in × out`` MACs for
    every input vector, so a ``[T, B, in]`` input costs each row T times that.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from spiknerf.neurons import linear_ops
        >>> kind, ops = linear_ops(nn.Linear(4, 3), torch.rand(2, 5, 4))  # T = 2 steps of 5 rows
        >>> kind, ops.tolist()
        ('mac', [24.0, 24.0, 24.0, 24.0, 24.0])
    """
    x = x.reshape(-1, *x.shape[-2:]) if x.dim() >= 2 else x.reshape(1, 1, -1)
    if isinstance(m, SpikeLinear):
        return "sop", (x != 0).sum(dim=(0, 2)).to(torch.float64) * m.out_features
    per_row = float(x.shape[0] * m.in_features * m.out_features)
    return "mac", torch.full((x.shape[1],), per_row, dtype=torch.float64, device=x.device)


class OpRecorder:
    """Forward hooks that count a model's ops while the ``with`` block runs; nothing stays attached.

    Every call of an ``nn.Linear`` (MACs) or :class:`SpikeLinear` (SOPs) and every convolution (MACs) adds
    to its layer's count; every neuron module adds to its firing rate. With ``per_sample`` each linear
    call also appends its energy per row (``[B]`` pJ, see :func:`linear_ops`) to ``sample_energy``, so that
    a caller evaluating a batch of B samples in one forward pass gets each sample's energy as
    ``torch.stack(recorder.sample_energy).sum(0)`` (convolutions are not split by sample).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from spiknerf.neurons import OpRecorder, SpikeReadout, SpikingLinear
        >>> model = nn.Sequential(SpikingLinear(16, 8, T=2), SpikeReadout(8, 3))
        >>> with OpRecorder(model, per_sample=True) as recorder:
        ...     _ = model(torch.rand(4, 16))
        >>> torch.stack(recorder.sample_energy).sum(0).shape  # one energy per sample, in pJ
        torch.Size([4])
    """

    def __init__(self, model: nn.Module, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ,
                 per_sample: bool = False) -> None:
        self.model, self.e_mac, self.e_ac, self.per_sample = model, e_mac, e_ac, per_sample
        self.layers: dict[str, LayerOps] = {}
        self.sample_energy: list[Tensor] = []
        self._rates: dict[str, list[float]] = {}
        self._units: dict[str, list] = {}
        self._handles: list = []

    def _add(self, name: str, kind: str, n: float) -> None:
        self.layers.setdefault(name, LayerOps(name, kind, 0.0)).ops += n

    def _linear_hook(self, name: str):
        def hook(m: nn.Linear, args: tuple, out: Tensor) -> None:
            kind, ops = linear_ops(m, args[0])
            self._add(name, kind, float(ops.sum()))
            if self.per_sample:
                self.sample_energy.append(ops * (self.e_mac if kind == "mac" else self.e_ac))
        return hook

    def _conv_hook(self, name: str):
        def hook(m: nn.modules.conv._ConvNd, args: tuple, out: Tensor) -> None:
            self._add(name, "mac", _conv_macs(m, out))
        return hook

    def _neuron_hook(self, name: str):
        def hook(m: LIFNeuron, args: tuple, out: Tensor) -> None:
            nonzero = (out != 0).reshape(-1, out.shape[-1])
            n = self._rates.setdefault(name, [0.0, 0.0])
            n[0] += nonzero.numel()
            n[1] += float(nonzero.sum())
            u = self._units.setdefault(name, [0, torch.zeros(out.shape[-1])])
            u[0] += nonzero.shape[0]
            u[1] += nonzero.sum(0).cpu()
        return hook

    def __enter__(self) -> OpRecorder:
        for name, m in self.model.named_modules():
            if isinstance(m, nn.Linear):
                self._handles.append(m.register_forward_hook(self._linear_hook(name)))
            elif isinstance(m, nn.modules.conv._ConvNd):
                self._handles.append(m.register_forward_hook(self._conv_hook(name)))
            elif isinstance(m, LIFNeuron):
                self._handles.append(m.register_forward_hook(self._neuron_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def result(self, samples: int) -> OpCount:
        """The counts so far, per sample divided by ``samples``."""
        if samples < 1:
            raise ValueError(f"samples must be >= 1 (got {samples})")
        macs = sum(v.ops for v in self.layers.values() if v.kind == "mac")
        sops = sum(v.ops for v in self.layers.values() if v.kind == "sop")
        firing = {k: (v[1] / v[0] if v[0] else 0.0) for k, v in self._rates.items()}
        per_unit = {k: v[1] / max(v[0], 1) for k, v in self._units.items()}
        outputs = sum(v[0] for v in self._rates.values())
        return OpCount(macs, sops, samples, self.e_mac, self.e_ac, list(self.layers.values()), firing, per_unit,
                       outputs)


@torch.no_grad()
def count_ops(
    model: nn.Module,
    inputs: Tensor | tuple,
    samples: int | None = None,
    e_mac: float = E_MAC_PJ,
    e_ac: float = E_AC_PJ,
) -> OpCount:
    """Run ``model(*inputs)`` once and count its MACs, SOPs and firing rates.

    Args:
        model: any module; its ``nn.Linear`` and convolutions reading analog values count MACs,
            its :class:`SpikeLinear` layers count SOPs (non-zero inputs × fan-out).
        inputs: what ``model`` is called with (a tensor or a tuple).
        samples: divides the totals for the per-sample figures (default: the first input's first dimension).
        e_mac, e_ac: energy of a multiply-accumulate and of an accumulate, in pJ.

    Returns:
        An :class:`OpCount`. ``firing_rate`` maps each neuron module's name to
        the fraction of non-zero outputs over all steps and units;
        ``unit_firing_rate`` gives that fraction per unit (the last dimension).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from spiknerf.neurons import SpikeReadout, SpikingLinear, count_ops
        >>> model = nn.Sequential(SpikingLinear(16, 8, T=2), SpikeReadout(8, 3))
        >>> ops = count_ops(model, torch.rand(4, 16))
        >>> ops.macs_per_sample  # the analog layer, counted once for both steps
        128.0
        >>> ops.layers[1].name, ops.layers[1].kind  # the readout reads spikes: synaptic operations
        ('1.fc', 'sop')
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    if samples is None:
        samples = int(inputs[0].shape[0])
    if samples < 1:
        raise ValueError(f"samples must be >= 1 (got {samples})")
    with OpRecorder(model, e_mac, e_ac) as recorder, torch.no_grad():  # a training model's steps are compiled
        model(*inputs)
    return recorder.result(samples)
