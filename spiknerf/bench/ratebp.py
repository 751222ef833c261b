"""Rate-based backpropagation (Yu et al., NeurIPS 2024: rate-based BP for deep SNNs).

BPTT keeps every step's state for the backward pass, so its memory grows with
T. Rate-based BP keeps none: it backpropagates through firing rates only.

1. Spike pass, without a graph: the network runs its T steps with the core's
   ``charge``/``fire``/``reset``, one step at a time, and each neuron keeps two
   running sums, its rate ``r = (1/T) Σ_t S[t]`` and its eligibility ``e``,
   the derivative of r with respect to a shift of its input current applied at
   every step (reset treated as constant, as with ``detach_reset``)::

       κ[t] = c + a (1 - R[t-1]) κ[t-1]      (∂H[t]/∂shift; soft reset: 1 - R -> 1)
       e    = (1/T) Σ_t g(H[t] - θ) κ[t]      (g: the surrogate derivative)

2. Rate pass, with a graph but no time axis: the mean input current of layer
   l is ``u_l = W_l r_{l-1} + b_l`` (exact, the synapses are linear), and::

       r_l = rate_l + e_l (u_l - stop_grad(u_l))

   has the spike pass's value and the local derivative e_l. The readout
   ``mean_t(W s[t] + b) = W r + b`` is exact too, so the loss is the true
   loss of the spiking network; only its gradient is approximated.

The backward pass stores a few ``[B, N]`` tensors per layer, whatever T is.
For one spiking layer fed a constant input this gradient equals BPTT's with a
detached reset.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from spiknerf.bench.classifier import Objective
from spiknerf.neurons import LIFNeuron, SpikingMLP
from spiknerf.neurons.dynamics import charge, fire, reset


class TraceState(NamedTuple):
    """Per-neuron state of the spike pass: membrane, ∂H/∂shift, 1 - reset, and the two running sums."""

    v: Tensor
    kappa: Tensor
    keep: Tensor
    rate_sum: Tensor
    elig_sum: Tensor


def trace_step(current: Tensor, st: TraceState, neuron: LIFNeuron) -> tuple[Tensor, TraceState]:
    """One step of a binary LIF layer that also advances its rate and eligibility sums."""
    p, theta = neuron.p, neuron.threshold
    h = charge(st.v, current, p)
    s, fired = fire(h, theta, p, neuron.surrogate)
    # ∂H/∂shift obeys the charge equation itself: a ∂V[t-1]/∂shift + c · 1
    kappa = charge(st.keep * st.kappa, torch.ones_like(h), p)
    keep = 1.0 - fired if p.reset == "hard" else torch.ones_like(fired)
    new = TraceState(reset(h, s, fired, theta, p), kappa, keep,
                     st.rate_sum + s, st.elig_sum + neuron.surrogate.grad(h - theta) * kappa)
    return s, new


@torch.no_grad()
def spike_pass(model: SpikingMLP, x: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(rate, eligibility) ``[B, N]`` of each spiking layer, from T steps run without a graph."""
    for layer in model.layers:
        if layer.neuron.p.kind != "binary":
            raise ValueError(f"rate-based BP is written for binary neurons (got {layer.neuron.p.kind})")
    first = model.layers[0].fc(x)
    states = []
    for layer in model.layers:
        zeros = torch.zeros(x.shape[0], layer.fc.out_features, dtype=x.dtype)
        states.append(TraceState(zeros, zeros, torch.ones_like(zeros), zeros, zeros))
    for _ in range(model.T):
        s = None
        for k, layer in enumerate(model.layers):
            s, states[k] = trace_step(first if k == 0 else layer.fc(s), states[k], layer.neuron)
    return [(st.rate_sum / model.T, st.elig_sum / model.T) for st in states]


def rate_forward(model: SpikingMLP, x: Tensor) -> Tensor:
    """Logits of the spiking network whose gradient flows through rates and eligibilities."""
    r = x
    for layer, (rate, elig) in zip(model.layers, spike_pass(model, x), strict=True):
        u = layer.fc(r)
        r = rate + elig * (u - u.detach())
    return model.readout.fc(r)


class RateBPObjective(Objective):
    """Cross-entropy of the spiking network, backpropagated through rates (memory constant in T)."""

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(rate_forward(self.model, x), y)
