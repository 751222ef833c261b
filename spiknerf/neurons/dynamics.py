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

with ``detach_reset`` dropping the reset's dependence on H and θ. The input may
come in two parts, ``X[t] = X_v[t] + I`` with a current ``I`` held over the steps
(a layer's analog input, computed once, or a view-direction current): ``I`` is
then read once a step rather than stored T times, and ∂L/∂I = Σ_t ∂L/∂X[t].

Speed on the CPU, where these elementwise steps are bound by memory traffic
(measured in docs/benchmarks.md, "Neuron core speed"): the node's forward and
backward are each compiled by TorchInductor into one loop over the elements
(``spiknerf.kernels``; eager with ``SPIKNERF_COMPILE=0``), so X, S and ∂L/∂S
travel to and from memory once and H is recomputed in registers rather than
stored; the forward, which autograd does not record, fires by plain comparison
rather than through the surrogate's autograd Function. Called from inside a
``torch.compile`` region (the student's training step), the node is traced as
the step loop instead: the compiler then fuses the neuron with the layers around
it and derives this same BPTT by autograd (tested against the node).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from spiknerf.kernels import CpuCompiled
from spiknerf.neurons.surrogate import Surrogate, heaviside, surrogate_grad

KINDS: tuple[str, ...] = ("binary", "ternary", "signed_ternary")
RESETS: tuple[str, ...] = ("hard", "soft")


class LIFParameters(NamedTuple):
    """Constants of a LIF neuron (the threshold θ is passed separately: it may be learnable).

    Attributes:
        kind: ``"binary"``, ``"ternary"`` or ``"signed_ternary"``.
        tau: membrane time constant τ >= 1; the leak per step is ``a = 1 - 1/τ``.
        delta_v: a ternary neuron's second level: it fires 2 at ``θ + delta_v``.
        reset: ``"hard"`` (to 0) or ``"soft"`` (subtract θ S).
        decay_input: scale the input by ``1/τ`` (``c = 1/τ``), else ``c = 1``.
        detach_reset: drop the reset's dependence on H and θ from the gradient.
    """

    kind: str = "ternary"
    tau: float = 4.0
    delta_v: float = 1.0
    reset: str = "hard"
    decay_input: bool = True
    detach_reset: bool = False


class LIFState(NamedTuple):
    """The state of a LIF neuron between steps.

    Attributes:
        v: the membrane potential after the reset of the previous step (the shape of one step's input).
    """

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
    """One step: charge, fire, reset.

    Args:
        x: input current of this step ``[B, ...]``.
        state: the membrane potential after the previous step.
        p: the neuron's constants.
        theta: the threshold θ (a float, or a tensor when learnable).
        surrogate: the derivative that stands in for Θ's when autograd records.

    Returns:
        The spikes ``[B, ...]`` and the new state.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import LIFParameters, LIFState, Surrogate, lif_step
        >>> p = LIFParameters(kind="ternary", tau=4.0, delta_v=0.5, reset="soft", decay_input=False)
        >>> x = torch.tensor([0.3, 0.6, 1.2])
        >>> s, state = lif_step(x, LIFState(torch.zeros(3)), p, 0.5, Surrogate("atan"))
        >>> s.tolist(), [round(v, 4) for v in state.v.tolist()]  # soft reset: H - θ S carries over
        ([0.0, 1.0, 2.0], [0.3, 0.1, 0.2])
    """
    h = charge(state.v, x, p)
    s, fired = fire(h, theta, p, surrogate)
    return s, LIFState(reset(h, s, fired, theta, p))


def _slopes(h: Tensor, theta: Tensor | float, p: LIFParameters, grad: Callable[[Tensor], Tensor], wrt_theta: bool):
    """(∂S/∂H, ∂R/∂H, ∂S/∂θ, ∂R/∂θ) of the fire function at H, with ``grad`` the surrogate derivative;
    the last two are None unless ``wrt_theta``."""
    g_up = grad(h - theta)
    if p.kind == "signed_ternary":
        g_down = grad(-h - theta)
        by_theta = (g_down - g_up, -(g_up + g_down)) if wrt_theta else (None, None)
        return g_up + g_down, g_up - g_down, *by_theta
    ds_dh = g_up if p.kind == "binary" else g_up + grad(h - (theta + p.delta_v))
    # binary and ternary fire on H - θ only, so ∂/∂θ = -∂/∂H
    return ds_dh, g_up, *((-ds_dh, -g_up) if wrt_theta else (None, None))


def _reset_slopes(h: Tensor, s: Tensor, theta: Tensor, slopes: tuple, p: LIFParameters):
    """(∂V/∂H, ∂V/∂θ) of the reset at H with spikes S; ∂V/∂H may be a number, ∂V/∂θ None (zero)."""
    ds_dh, dr_dh, ds_dth, dr_dth = slopes
    if p.reset == "hard":
        kept = torch.eq(s, 0).to(h.dtype)  # 1 - R: R = 1 where |S| > 0
        if p.detach_reset:
            return kept, None
        return torch.addcmul(kept, h, dr_dh, value=-1.0), None if dr_dth is None else -h * dr_dth
    dv_dth = None if ds_dth is None else -s
    if p.detach_reset:
        return 1.0, dv_dth
    return 1.0 - theta * ds_dh, None if dv_dth is None else dv_dth - theta * ds_dth


def _drive(x: Tensor | None, held: Tensor | None, t: int) -> Tensor:
    """The input current of step ``t``: ``x[t] + held``, either part absent."""
    if held is None:
        return x[t]
    return held if x is None else x[t] + held


def _unroll(x: Tensor | None, held: Tensor | None, steps: int, theta: Tensor,
            p: LIFParameters) -> Iterator[tuple[Tensor, Tensor]]:
    """(H[t], S[t]) for t = 0 .. steps-1: charge, fire and reset over the input currents from V = 0.

    Runs inside the fused node, where autograd records nothing, so firing is a plain comparison and needs
    no surrogate."""
    v = torch.zeros_like(held if x is None else x[0])
    for t in range(steps):
        h = charge(v, _drive(x, held, t), p)
        s, fired = fire(h, theta, p, None)
        v = reset(h, s, fired, theta, p)
        yield h, s


def _spikes(x: Tensor | None, held: Tensor | None, steps: int, theta: Tensor, p: LIFParameters) -> Tensor:
    """S ``[T, B, ...]``, without autograd."""
    return torch.stack([s for _, s in _unroll(x, held, steps, theta, p)])


def _gradients(x: Tensor | None, held: Tensor | None, steps: int, theta: Tensor, grad_s: Tensor, alpha: Tensor,
               p: LIFParameters, surrogate: str,
               wrt_theta: bool) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """∂L/∂X_v ``[T, B, ...]``, ∂L/∂I ``[B, ...]`` (each None without its input) and the elementwise ∂L/∂θ
    (None unless ``wrt_theta``).

    H and S are recomputed by the forward's own code; the recursion is the one
    in the module docstring, run from the last step back.
    """
    a, c = _coefficients(p)
    fn = surrogate_grad(surrogate)
    grad = lambda z: fn(z, alpha)  # noqa: E731  (alpha is a tensor: IM-Loss changes it between steps)
    unrolled = list(_unroll(x, held, steps, theta, p))
    acc_theta = torch.zeros_like(unrolled[0][0]) if wrt_theta else None
    grads_x: list[Tensor] = []
    grad_h = None  # ∂L/∂H[t+1]; ∂L/∂V[t] = a ∂L/∂H[t+1], zero after the last step
    for t in range(steps - 1, -1, -1):
        (h, s), g = unrolled[t], grad_s[t]
        slopes = _slopes(h, theta, p, grad, wrt_theta)
        grad_next, grad_h = grad_h, g * slopes[0]
        if acc_theta is not None:
            acc_theta = acc_theta + g * slopes[2]
        if grad_next is not None:
            dv_dh, dv_dth = _reset_slopes(h, s, theta, slopes, p)
            grad_h = grad_h + a * grad_next * dv_dh
            if acc_theta is not None and dv_dth is not None:
                acc_theta = acc_theta + a * grad_next * dv_dth
        grads_x.append(c * grad_h)
    grads_x.reverse()
    grad_held = None
    if held is not None:  # summed from the first step on, as autograd sums a current broadcast over the steps
        grad_held = grads_x[0]
        for g in grads_x[1:]:
            grad_held = grad_held + g
    return None if x is None else torch.stack(grads_x), grad_held, acc_theta


# On the CPU the eager chain of ~20 small elementwise ops a step costs more in
# dispatch and memory passes than the arithmetic; compiled by TorchInductor, the
# forward is one pass over X and the backward one pass over X and ∂L/∂S.
# The compiled loop unrolls the T steps: a long sequence would take minutes to
# compile for little gain, so it runs eagerly.
MAX_COMPILED_STEPS = 16
_spikes_kernel = CpuCompiled(_spikes, variants=64)
_gradients_kernel = CpuCompiled(_gradients, variants=64)


def _kernel(kernel: CpuCompiled, steps: int) -> Callable:
    return kernel if steps <= MAX_COMPILED_STEPS else kernel.fn


def _plain(t: Tensor | None) -> Tensor | None:
    """``t`` detached and contiguous: one compiled variant serves every caller (an input expanded over T
    or one that requires grad would each compile their own)."""
    return None if t is None else t.detach().contiguous()


class _MultiStepLIF(torch.autograd.Function):
    """The fused sequence. It saves only its inputs (X_v, I and θ): backward recomputes H and S, which costs
    less than writing H to memory and reading it back, and keeps nothing but the input alive for backward."""

    @staticmethod
    def forward(ctx, x: Tensor | None, held: Tensor | None, steps: int, theta: Tensor, p: LIFParameters,  # type: ignore[override]
                surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x, held, theta)
        ctx.steps, ctx.p, ctx.surrogate = steps, p, surrogate
        return _kernel(_spikes_kernel, steps)(_plain(x), _plain(held), steps, _plain(theta), p)

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        x, held, theta = ctx.saved_tensors
        wrt_theta = ctx.needs_input_grad[3]
        alpha = torch.tensor(ctx.surrogate.alpha, dtype=theta.dtype, device=theta.device)
        grad_x, grad_held, acc_theta = _kernel(_gradients_kernel, ctx.steps)(
            _plain(x), _plain(held), ctx.steps, _plain(theta), _plain(grad_s), alpha, ctx.p, ctx.surrogate.name,
            wrt_theta)
        grad_theta = None if acc_theta is None else acc_theta.sum_to_size(theta.shape)
        return grad_x, grad_held, None, grad_theta, None, None


def lif_multistep(x: Tensor | None, p: LIFParameters, theta: Tensor | float, surrogate: Surrogate,
                  current: Tensor | None = None, steps: int | None = None) -> Tensor:
    """Spikes for a whole sequence, as one autograd node with the hand-written BPTT of the module docstring.

    Args:
        x: input currents ``[T, B, ...]``; None when the whole input is ``current``.
        p: the neuron's constants.
        theta: the threshold θ (a float, or a tensor when learnable; it then gets a gradient).
        surrogate: the derivative that stands in for Θ's in backward.
        current: a current ``[B, ...]`` held over the steps, added to ``x`` at each (read once a step; the same
            spikes and gradients as ``x + current``).
        steps: T when ``x`` is None (else it must be ``x``'s T, or None).

    Returns:
        Spikes ``[T, B, ...]``, starting from V = 0; the same as :func:`lif_step` over the steps.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import LIFParameters, Surrogate, lif_multistep
        >>> p = LIFParameters(kind="binary", tau=2.0, decay_input=False)
        >>> x = torch.full((3, 1), 0.4, requires_grad=True)  # T = 3 steps of a constant current
        >>> s = lif_multistep(x, p, 0.5, Surrogate("atan"))
        >>> s[:, 0].tolist()
        [0.0, 1.0, 0.0]
        >>> s.sum().backward(); x.grad.shape
        torch.Size([3, 1])
        >>> lif_multistep(None, p, 0.5, Surrogate("atan"), current=torch.full((1,), 0.4), steps=3)[:, 0].tolist()
        [0.0, 1.0, 0.0]
    """
    if x is None:
        if current is None or steps is None:
            raise ValueError("without x, lif_multistep needs the held current and its number of steps")
    elif steps is not None and steps != x.shape[0]:
        raise ValueError(f"steps ({steps}) must be x's T ({x.shape[0]})")
    n = x.shape[0] if x is not None else int(steps)
    if torch.compiler.is_compiling():
        # traced into the caller's compiled graph as the step loop: the compiler fuses it with the layers around
        # it and derives this same BPTT by autograd (the fused node is opaque to it, and its kernels would each
        # run as a call of their own)
        return _stepped(x, current, n, theta, p, surrogate)
    like = x if x is not None else current
    theta_t = torch.as_tensor(theta, dtype=like.dtype, device=like.device)
    return _MultiStepLIF.apply(x, current, n, theta_t, p, surrogate)


def _stepped(x: Tensor | None, held: Tensor | None, steps: int, theta: Tensor | float, p: LIFParameters,
             surrogate: Surrogate) -> Tensor:
    """:func:`lif_multistep` as :func:`lif_step` over the steps, differentiated by autograd."""
    state = LIFState(torch.zeros_like(held if x is None else x[0]))
    spikes = []
    for t in range(steps):
        s, state = lif_step(_drive(x, held, t), state, p, theta, surrogate)
        spikes.append(s)
    return torch.stack(spikes)
