"""The recurrent spiking network of the temporal benchmarks.

One recurrent :class:`~spiknerf.neurons.HetSynLIF` layer, configured as one of
four neurons, then a non-spiking readout:

==========  ==============================================================
lif         one fixed time constant for the layer (the core LIF, soft reset)
alif        as lif, plus threshold adaptation θ + β A (Bellec et al. 2018)
hetneuron   a learnable time constant per neuron
hetsyn      a learnable time constant per synapse (and per neuron for the reset)
==========  ==============================================================

Readouts: :class:`~spiknerf.neurons.SpikeReadout` (mean over the last
``window`` steps, for classification) or :class:`LeakyReadout` (a trace per
step, for pattern generation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spiknerf.neurons import HetSynLIF, SpikeLinear, SpikeReadout

NEURONS: tuple[str, ...] = ("lif", "alif", "hetneuron", "hetsyn")

# ALIF: threshold step per spike and adaptation time constant, relative to the membrane τ
ADAPTATION = 0.2
ADAPT_TAU_FACTOR = 5.0


def temporal_neuron(
    name: str, n_in: int, hidden: int, tau: float, tau_spread: float, weight_gain: float
) -> HetSynLIF:
    """A recurrent HetSynLIF layer configured as ``lif``, ``alif``, ``hetneuron`` or ``hetsyn``.

    The heterogeneous neurons start with time constants log-uniform in
    ``[tau / tau_spread, tau * tau_spread]``; lif and alif keep ``tau`` fixed.
    """
    common = dict(recurrent=True, tau=tau, weight_gain=weight_gain)
    if name == "lif":
        return HetSynLIF(n_in, hidden, decay="layer", learn_decay=False, **common)
    if name == "alif":
        return HetSynLIF(n_in, hidden, decay="layer", learn_decay=False, adaptation=ADAPTATION,
                         tau_adapt=ADAPT_TAU_FACTOR * tau, **common)
    if name == "hetneuron":
        return HetSynLIF(n_in, hidden, decay="neuron", tau_spread=tau_spread, **common)
    if name == "hetsyn":
        return HetSynLIF(n_in, hidden, decay="synapse", tau_spread=tau_spread, **common)
    raise ValueError(f"neuron must be one of {', '.join(NEURONS)} (got {name!r})")


class LeakyReadout(nn.Module):
    """Non-spiking leaky integrator per output: ``y[t] = κ y[t-1] + (1 - κ) W z[t]``, plus a bias."""

    def __init__(self, in_features: int, out_features: int, tau: float) -> None:
        super().__init__()
        if not tau >= 1:
            raise ValueError(f"tau must be >= 1 (got {tau})")
        self.fc = SpikeLinear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.kappa = 1.0 - 1.0 / tau

    def forward(self, s: Tensor) -> Tensor:
        drive = (1.0 - self.kappa) * self.fc(s)
        y, out = torch.zeros_like(drive[0]), []
        for t in range(drive.shape[0]):
            y = self.kappa * y + drive[t]
            out.append(y)
        return torch.stack(out) + self.bias


class RecurrentSNN(nn.Module):
    """``[T, B, n_in]`` -> (readout, spikes ``[T, B, hidden]``).

    With ``trace_tau`` the readout is a :class:`LeakyReadout` trace ``[T, B, n_out]``;
    otherwise it is ``[B, n_out]``, averaged over the last ``window`` steps (all if None).
    """

    def __init__(self, layer: HetSynLIF, n_out: int, window: int | None = None,
                 trace_tau: float | None = None) -> None:
        super().__init__()
        if window is not None and trace_tau is not None:
            raise ValueError("window applies to the averaging readout, not to a trace (trace_tau)")
        self.layer = layer
        self.window = window
        hidden = layer.out_features
        self.readout = LeakyReadout(hidden, n_out, trace_tau) if trace_tau else SpikeReadout(hidden, n_out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.layer(x)
        return self.readout(z[-self.window:] if self.window else z), z
