"""Neuron modules: multi-step LIF with binary, ternary or signed-ternary spikes.

A module holds only constants and (optionally) a learnable threshold; it keeps no
state between calls. Called on input currents ``[T, B, ...]`` (and a current
held over the steps) it returns spikes of that shape, starting from a zero
membrane potential. ``step`` exposes the
single-step form with explicit state.

Learnable threshold (LTMD): with ``learnable_threshold=True`` the layer's
threshold is ``θ = tanh(w)`` for one parameter ``w`` per layer, initialised so
that θ starts at ``v_threshold`` (which must then be < 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spiknerf.neurons.dynamics import (
    LIFParameters,
    LIFState,
    check_parameters,
    lif_multistep,
    lif_step,
)
from spiknerf.neurons.surrogate import Surrogate


def check_sequence(x: Tensor, name: str = "x") -> None:
    """A multi-step tensor must be ``[T, B, ...]`` with T >= 1."""
    if x.dim() < 2:
        raise ValueError(f"{name} must be a [T, B, ...] tensor (got shape {tuple(x.shape)})")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have T >= 1 time steps (got shape {tuple(x.shape)})")


class LIFNeuron(nn.Module):
    """Multi-step LIF neuron; see :mod:`spiknerf.neurons.dynamics` for the equations.

    Use a subclass (:class:`BinaryLIF`, :class:`TernaryLIF`, :class:`SignedTernaryLIF`) or
    :func:`make_neuron`. Called on input currents ``[T, B, ...]``, it returns spikes of the same shape.

    Args:
        tau: membrane time constant τ >= 1 (leak ``1 - 1/τ`` per step).
        v_threshold: the threshold θ > 0 (its initial value when learnable).
        surrogate: the surrogate derivative by name (``spiknerf.neurons.SURROGATES``).
        alpha: the surrogate's sharpness; ``None`` takes the surrogate's default.
        reset: ``"hard"`` (to 0) or ``"soft"`` (subtract θ S, so what a step leaves carries over).
        decay_input: scale the input by ``1/τ``.
        detach_reset: leave the reset out of the gradient.
        learnable_threshold: θ = tanh(w) with one trainable ``w`` per layer (LTMD); needs θ < 1.
        delta_v: a ternary neuron's second level, ``θ + delta_v``.
    """

    kind: str = "binary"

    def __init__(
        self,
        tau: float = 4.0,
        v_threshold: float = 0.5,
        surrogate: str = "atan",
        alpha: float | None = None,
        reset: str = "hard",
        decay_input: bool = True,
        detach_reset: bool = False,
        learnable_threshold: bool = False,
        delta_v: float = 1.0,
    ) -> None:
        super().__init__()
        self.p = LIFParameters(self.kind, float(tau), float(delta_v), reset, decay_input, detach_reset)
        check_parameters(self.p, v_threshold)
        self.surrogate = Surrogate(surrogate, alpha)
        self.v_threshold = float(v_threshold)
        if learnable_threshold:
            if v_threshold >= 1:
                raise ValueError(f"v_threshold must be < 1 with learnable_threshold (θ = tanh(w)); got {v_threshold}")
            self.threshold_weight = nn.Parameter(torch.tensor(math.atanh(v_threshold)))
        else:
            self.threshold_weight = None

    @property
    def threshold(self) -> Tensor | float:
        """θ: ``tanh(w)`` when learnable, else the constant ``v_threshold``."""
        if self.threshold_weight is None:
            return self.v_threshold
        return torch.tanh(self.threshold_weight)

    def forward(self, x: Tensor | None, current: Tensor | None = None, steps: int | None = None) -> Tensor:
        """Spikes ``[T, B, ...]`` of input currents ``x`` ``[T, B, ...]`` plus ``current`` ``[B, ...]`` held over
        the steps (``x`` None: the held current alone, for ``steps`` steps); see :func:`lif_multistep`."""
        if x is not None:
            check_sequence(x)
        return lif_multistep(x, self.p, self.threshold, self.surrogate, current, steps)

    def step(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        """One time step on ``[B, ...]`` input; ``state=None`` starts from V = 0."""
        if state is None:
            state = LIFState(torch.zeros_like(x))
        return lif_step(x, state, self.p, self.threshold, self.surrogate)

    def extra_repr(self) -> str:
        learn = ", learnable_threshold" if self.threshold_weight is not None else ""
        return (f"tau={self.p.tau}, v_threshold={self.v_threshold}, reset={self.p.reset}, "
                f"surrogate={self.surrogate.name}{learn}")


class BinaryLIF(LIFNeuron):
    """LIF neuron with spikes in {0, 1} (arguments: :class:`LIFNeuron`).

    Example:
        >>> import torch
        >>> from spiknerf.neurons import BinaryLIF
        >>> BinaryLIF(tau=2.0, decay_input=False)(torch.full((3, 1, 1), 0.4)).flatten().tolist()
        [0.0, 1.0, 0.0]
    """

    kind = "binary"


class TernaryLIF(LIFNeuron):
    """Spik-NeRF ternary neuron: fires 1 at θ and 2 at θ + Δv (arguments: :class:`LIFNeuron`; the paper's
    defaults: τ = 4, θ = 0.5, Δv = 1, hard reset).

    Example:
        >>> import torch
        >>> from spiknerf.neurons import TernaryLIF
        >>> neuron = TernaryLIF(v_threshold=0.5, delta_v=0.5, reset="soft", decay_input=False)
        >>> neuron(torch.tensor([[[0.3, 0.6, 1.2]]])).tolist()  # T = 1, B = 1, three units
        [[[0.0, 1.0, 2.0]]]
    """

    kind = "ternary"

    def extra_repr(self) -> str:
        return super().extra_repr() + f", delta_v={self.p.delta_v}"


class SignedTernaryLIF(LIFNeuron):
    """Ternary Spike (AAAI 2024): fires +1 at H >= θ and -1 at H <= -θ (arguments: :class:`LIFNeuron`).

    Example:
        >>> import torch
        >>> from spiknerf.neurons import SignedTernaryLIF
        >>> SignedTernaryLIF(decay_input=False)(torch.tensor([[[-0.9, 0.1, 0.9]]])).tolist()
        [[[-1.0, 0.0, 1.0]]]
    """

    kind = "signed_ternary"


NEURONS: dict[str, type[LIFNeuron]] = {
    "binary": BinaryLIF,
    "ternary": TernaryLIF,
    "signed_ternary": SignedTernaryLIF,
}


def make_neuron(kind: str, **kwargs) -> LIFNeuron:
    """A neuron module by name.

    Args:
        kind: ``"binary"``, ``"ternary"`` or ``"signed-ternary"`` (``"signed_ternary"`` too).
        **kwargs: the arguments of :class:`LIFNeuron`.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import make_neuron
        >>> make_neuron("ternary", tau=2.0, reset="soft")
        TernaryLIF(tau=2.0, v_threshold=0.5, reset=soft, surrogate=atan, delta_v=1.0)
    """
    key = kind.replace("-", "_")
    if key not in NEURONS:
        raise ValueError(f"neuron must be one of binary, ternary, signed-ternary (got {kind!r})")
    return NEURONS[key](**kwargs)
