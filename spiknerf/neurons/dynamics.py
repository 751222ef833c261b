r"""Leaky integrate-and-fire dynamics with binary, ternary and signed-ternary spikes.

One step splits into charge, fire and reset (the SpikingJelly split), written as
pure functions of explicit state (the Norse style)::

    charge:  H[t] = a V[t-1] + c X[t],      a = 1 - 1/τ,  c = 1/τ if decay_input else 1
    fire:    binary          S = Θ(H - θ)                         S ∈ {0, 1}
             ternary         S = Θ(H - θ) + Θ(H - θ - Δv)         S ∈ {0, 1, 2}   (Spik-NeRF)
             signed_ternary  S = Θ(H - θ) - Θ(-H - θ)             S ∈ {-1, 0, 1}  (Ternary Spike)
    reset:   hard  V[t] = H[t] (1 - R[t]),  R = 1 where the neuron fired (|S| > 0)
             soft  V[t] = H[t] - θ S[t]

Θ is the Heaviside step with a surrogate derivative (``surrogate.py``).
``lif_step`` advances one step; ``lif_multistep`` runs a whole ``[T, B, ...]``
sequence from a zero state as one autograd node whose backward is the
hand-derived BPTT below. It stores only H (one tensor of the input's size) and
builds no per-step graph, which is what makes it fast and lean::

    ∂L/∂H[t] = ∂L/∂S[t] · ∂S/∂H + ∂L/∂V[t] · ∂V/∂H
    ∂L/∂X[t] = c ∂L/∂H[t],    ∂L/∂V[t-1] = a ∂L/∂H[t]
    ∂L/∂θ   = Σ_t ∂L/∂S[t] · ∂S/∂θ + ∂L/∂V[t] · ∂V/∂θ

with ``detach_reset`` dropping the reset's dependence on H and θ.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spiknerf.neurons.surrogate import Surrogate, heaviside

KINDS: tuple[str, ...] = ("binary", "ternary", "signed_ternary")
RESETS: tuple[str, ...] = ("hard", "soft")


class LIFParameters(NamedTuple):
    """Constants of a LIF neuron (the threshold θ is passed separately: it may be learnable)."""

    kind: str = "ternary"
    tau: float = 4.0
    delta_v: float = 1.0
    reset: str = "hard"
    decay_input: bool = True
    detach_reset: bool = False


class LIFState(NamedTuple):
    """Membrane potential after the reset of the previous step."""

    v: Tensor


def check_parameters(p: LIFParameters, v_threshold: float | None = None) -> None:
    """Raise ValueError naming the first bad argument."""
    if p.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {p.kind!r})")
    if not p.tau >= 1.0:
        raise ValueError(f"tau must be >= 1 (got {p.tau}); a = 1 - 1/tau is the leak per step")
    if p.kind == "ternary" and not p.delta_v > 0:
        raise ValueError(f"delta_v must be > 0 (got {p.delta_v})")
    if p.reset not in RESETS:
        raise ValueError(f"reset must be one of {', '.join(RESETS)} (got {p.reset!r})")
    if v_threshold is not None and not v_threshold > 0:
        raise ValueError(f"v_threshold must be > 0 (got {v_threshold})")


def _coefficients(p: LIFParameters) -> tuple[float, float]:
    """Leak a and input gain c of the charge equation."""
    return 1.0 - 1.0 / p.tau, (1.0 / p.tau if p.decay_input else 1.0)


def charge(v: Tensor, x: Tensor, p: LIFParameters) -> Tensor:
    """H[t] = a V[t-1] + c X[t]."""
    a, c = _coefficients(p)
    return a * v + c * x


def fire(h: Tensor, theta: Tensor | float, p: LIFParameters, surrogate: Surrogate) -> tuple[Tensor, Tensor]:
    """Spikes S and the reset mask R (1 where the neuron fired), both with surrogate gradients."""
    up = heaviside(h - theta, surrogate)
    if p.kind == "binary":
        return up, up
    if p.kind == "ternary":
        return up + heaviside(h - theta - p.delta_v, surrogate), up
    down = heaviside(-h - theta, surrogate)
    return up - down, up + down


def reset(h: Tensor, s: Tensor, fired: Tensor, theta: Tensor | float, p: LIFParameters) -> Tensor:
    """Membrane potential after the spike: hard reset to 0 or soft reset by θ S."""
    if p.detach_reset:
        s, fired = s.detach(), fired.detach()
    if p.reset == "hard":
        return h * (1.0 - fired)
    return h - theta * s


def lif_step(
    x: Tensor,
    state: LIFState,
    p: LIFParameters,
    theta: Tensor | float,
    surrogate: Surrogate,
) -> tuple[Tensor, LIFState]:
    """One step: charge, fire, reset. Returns the spikes and the new state."""
    h = charge(state.v, x, p)
    s, fired = fire(h, theta, p, surrogate)
    return s, LIFState(reset(h, s, fired, theta, p))


def _slopes(h: Tensor, theta: Tensor | float, p: LIFParameters, surrogate: Surrogate):
    """(∂S/∂H, ∂S/∂θ, ∂R/∂H, ∂R/∂θ) of the fire function at H."""
    g_up = surrogate.grad(h - theta)
    if p.kind == "binary":
        return g_up, -g_up, g_up, -g_up
    if p.kind == "ternary":
        g_two = surrogate.grad(h - theta - p.delta_v)
        return g_up + g_two, -(g_up + g_two), g_up, -g_up
    g_down = surrogate.grad(-h - theta)
    return g_up + g_down, g_down - g_up, g_up - g_down, -(g_up + g_down)


class _MultiStepLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, theta: Tensor, p: LIFParameters, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        v = torch.zeros_like(x[0])
        spikes = torch.empty_like(x)
        hs = torch.empty_like(x)
        for t in range(x.shape[0]):
            h = charge(v, x[t], p)
            s, fired = fire(h, theta, p, surrogate)
            v = reset(h, s, fired, theta, p)
            hs[t], spikes[t] = h, s
        ctx.save_for_backward(hs, theta, spikes)
        ctx.p, ctx.surrogate = p, surrogate
        return spikes

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        hs, theta, spikes = ctx.saved_tensors
        p: LIFParameters = ctx.p
        a, c = _coefficients(p)
        grad_x = torch.empty_like(hs)
        grad_theta = torch.zeros_like(hs[0]) if ctx.needs_input_grad[1] else None
        grad_v = torch.zeros_like(hs[0])  # ∂L/∂V[t], flowing back from H[t+1]
        for t in range(hs.shape[0] - 1, -1, -1):
            h = hs[t]
            ds_dh, ds_dth, dr_dh, dr_dth = _slopes(h, theta, p, ctx.surrogate)
            if p.reset == "hard":
                fired = (h >= theta).to(h.dtype) if p.kind != "signed_ternary" else spikes[t].abs()
                dv_dh = 1.0 - fired
                dv_dth = torch.zeros_like(h)
                if not p.detach_reset:
                    dv_dh = dv_dh - h * dr_dh
                    dv_dth = -h * dr_dth
            else:
                dv_dh = torch.ones_like(h)
                dv_dth = -spikes[t]
                if not p.detach_reset:
                    dv_dh = dv_dh - theta * ds_dh
                    dv_dth = dv_dth - theta * ds_dth
            grad_h = grad_s[t] * ds_dh + grad_v * dv_dh
            if grad_theta is not None:
                grad_theta += grad_s[t] * ds_dth + grad_v * dv_dth
            grad_x[t] = c * grad_h
            grad_v = a * grad_h
        if grad_theta is not None:
            grad_theta = grad_theta.sum_to_size(theta.shape)
        return grad_x, grad_theta, None, None


def lif_multistep(x: Tensor, p: LIFParameters, theta: Tensor | float, surrogate: Surrogate) -> Tensor:
    """Spikes ``[T, B, ...]`` for input currents ``[T, B, ...]``, starting from V = 0."""
    theta_t = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
    return _MultiStepLIF.apply(x, theta_t, p, surrogate)
