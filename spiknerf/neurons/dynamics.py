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
hand-derived BPTT below. It builds no per-step graph and keeps only its input X
for backward, which recomputes H and S (the same charge, fire and reset code)::

    ∂L/∂H[t] = ∂L/∂S[t] · ∂S/∂H + ∂L/∂V[t] · ∂V/∂H
    ∂L/∂X[t] = c ∂L/∂H[t],    ∂L/∂V[t-1] = a ∂L/∂H[t]
    ∂L/∂θ   = Σ_t ∂L/∂S[t] · ∂S/∂θ + ∂L/∂V[t] · ∂V/∂θ

with ``detach_reset`` dropping the reset's dependence on H and θ.

Speed on the CPU, where these elementwise steps are bound by memory traffic
(measured in docs/benchmarks.md, "Neuron core speed"): the fused node runs one
batch chunk at a time so that a step's temporaries stay in cache; its forward,
which autograd does not record, fires by plain comparison rather than through
the surrogate's autograd Function; recomputing H in cache costs less than
writing it to memory and reading it back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import EllipsisType
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
    """H[t] = a V[t-1] + c X[t], as one fused op: V + (X - V)/τ (a lerp) with decay_input, else X + a V."""
    a, c = _coefficients(p)
    if p.decay_input:
        return torch.lerp(v, x, c)
    return torch.add(x, v, alpha=a)


def _step_up(h: Tensor, level: Tensor | float, surrogate: Surrogate) -> Tensor:
    """Θ(H - level) with the surrogate gradient while autograd records; a plain comparison otherwise.

    Without autograd (the fused forward) the surrogate's autograd Function and
    the H - level temporary are pure cost; H >= level holds exactly when
    H - level >= 0 in IEEE arithmetic, so both paths fire alike.
    """
    if torch.is_grad_enabled():
        return heaviside(h - level, surrogate)
    return torch.ge(h, level, out=torch.empty_like(h))


def fire(h: Tensor, theta: Tensor | float, p: LIFParameters, surrogate: Surrogate) -> tuple[Tensor, Tensor]:
    """Spikes S and the reset mask R (1 where the neuron fired), both with surrogate gradients."""
    up = _step_up(h, theta, surrogate)
    if p.kind == "binary":
        return up, up
    if p.kind == "ternary":
        return up + _step_up(h, theta + p.delta_v, surrogate), up
    down = _step_up(-h, theta, surrogate)
    return up - down, up + down


def reset(h: Tensor, s: Tensor, fired: Tensor, theta: Tensor | float, p: LIFParameters) -> Tensor:
    """Membrane potential after the spike: hard reset to 0 or soft reset by θ S."""
    if p.detach_reset:
        s, fired = s.detach(), fired.detach()
    if p.reset == "hard":
        return torch.addcmul(h, h, fired, value=-1.0)  # H (1 - R) in one op, exact for R in {0, 1}
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


def _slopes(h: Tensor, theta: Tensor | float, p: LIFParameters, surrogate: Surrogate, wrt_theta: bool):
    """(∂S/∂H, ∂R/∂H, ∂S/∂θ, ∂R/∂θ) of the fire function at H; the last two are None unless ``wrt_theta``."""
    g_up = surrogate.grad(h - theta)
    if p.kind == "signed_ternary":
        g_down = surrogate.grad(-h - theta)
        by_theta = (g_down - g_up, -(g_up + g_down)) if wrt_theta else (None, None)
        return g_up + g_down, g_up - g_down, *by_theta
    ds_dh = g_up if p.kind == "binary" else g_up + surrogate.grad(h - (theta + p.delta_v))
    # binary and ternary fire on H - θ only, so ∂/∂θ = -∂/∂H
    return ds_dh, g_up, *((-ds_dh, -g_up) if wrt_theta else (None, None))


def _reset_slopes(h: Tensor, s: Tensor, theta: Tensor, slopes: tuple, p: LIFParameters):
    """(∂V/∂H, ∂V/∂θ) of the reset at H with spikes S; ∂V/∂H may be a number, ∂V/∂θ None (zero)."""
    ds_dh, dr_dh, ds_dth, dr_dth = slopes
    if p.reset == "hard":
        kept = torch.eq(s, 0, out=torch.empty_like(h))  # 1 - R: R = 1 where |S| > 0
        if p.detach_reset:
            return kept, None
        return torch.addcmul(kept, h, dr_dh, value=-1.0), None if dr_dth is None else -h * dr_dth
    dv_dth = None if ds_dth is None else -s
    if p.detach_reset:
        return 1.0, dv_dth
    return 1.0 - theta * ds_dh, None if dv_dth is None else dv_dth - theta * ds_dth


CPU_CHUNK = 1 << 16  # elements of one time step that the fused loop takes at once on the CPU


def _batch_chunks(x: Tensor) -> list[slice | EllipsisType]:
    """Index of each batch chunk of ``[T, B, ...]`` (after the time index) that the fused loop runs alone.

    Elementwise steps are bound by memory traffic: on the CPU, chunks of about
    ``CPU_CHUNK`` elements a step keep a step's temporaries in cache, so that
    only X, S and ∂L/∂X travel to and from memory (measured in
    scripts/bench_neurons.py). Samples are independent, so chunks give the same
    result. A GPU wants few, big kernels: one chunk.
    """
    if x.device.type != "cpu" or x.dim() < 2:
        return [...]
    rows = max(1, CPU_CHUNK // max(1, math.prod(x.shape[2:])))
    return [slice(b, b + rows) for b in range(0, x.shape[1], rows)]


def _unroll(x: Tensor, theta: Tensor, p: LIFParameters, surrogate: Surrogate) -> Iterator[tuple[Tensor, Tensor]]:
    """(H[t], S[t]) for t = 0 .. T-1: charge, fire and reset over the steps of ``x`` from V = 0."""
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = charge(v, x[t], p)
        s, fired = fire(h, theta, p, surrogate)
        v = reset(h, s, fired, theta, p)
        yield h, s


class _MultiStepLIF(torch.autograd.Function):
    """The fused sequence. It saves only X (and θ): backward recomputes H and S one batch chunk at a time,
    in cache, which costs less than writing H to memory and reading it back, and keeps nothing but the
    input alive for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, theta: Tensor, p: LIFParameters, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        spikes = torch.empty_like(x)
        for rows in _batch_chunks(x):
            for t, (_, s) in enumerate(_unroll(x[:, rows], theta, p, surrogate)):
                spikes[t, rows] = s
        ctx.save_for_backward(x, theta)
        ctx.p, ctx.surrogate = p, surrogate
        return spikes

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        x, theta = ctx.saved_tensors
        p: LIFParameters = ctx.p
        a, c = _coefficients(p)
        wrt_theta = ctx.needs_input_grad[1]
        grad_x = torch.empty_like(x)
        grad_theta = torch.zeros_like(theta) if wrt_theta else None
        for rows in _batch_chunks(x):
            steps = list(_unroll(x[:, rows], theta, p, ctx.surrogate))
            acc_theta = torch.zeros_like(steps[0][0]) if wrt_theta else None
            grad_h = None  # ∂L/∂H[t+1]; ∂L/∂V[t] = a ∂L/∂H[t+1], zero after the last step
            for t in range(len(steps) - 1, -1, -1):
                (h, s), g = steps[t], grad_s[t, rows]
                slopes = _slopes(h, theta, p, ctx.surrogate, wrt_theta)
                grad_next, grad_h = grad_h, g * slopes[0]
                if acc_theta is not None:
                    acc_theta.addcmul_(g, slopes[2])
                if grad_next is not None:
                    dv_dh, dv_dth = _reset_slopes(h, s, theta, slopes, p)
                    if isinstance(dv_dh, Tensor):
                        grad_h.addcmul_(grad_next, dv_dh, value=a)
                    else:
                        grad_h.add_(grad_next, alpha=a * dv_dh)
                    if acc_theta is not None and dv_dth is not None:
                        acc_theta.addcmul_(grad_next, dv_dth, value=a)
                torch.mul(grad_h, c, out=grad_x[t, rows])
            if grad_theta is not None:
                grad_theta += acc_theta.sum_to_size(theta.shape)
        return grad_x, grad_theta, None, None


def lif_multistep(x: Tensor, p: LIFParameters, theta: Tensor | float, surrogate: Surrogate) -> Tensor:
    """Spikes ``[T, B, ...]`` for input currents ``[T, B, ...]``, starting from V = 0."""
    theta_t = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
    return _MultiStepLIF.apply(x, theta_t, p, surrogate)
