r"""HetSynLIF: a leaky integrate-and-fire neuron with a decay per synapse (HetSyn).

Temporal integration moves from the membrane to the synaptic currents. For a
layer with inputs ``c[t]`` (``c = x``, or ``c = [x[t], z[t-1]]`` when
recurrent) and ``K`` synapses per neuron::

    synapses:  I_ji[t] = r_ji I_ji[t-1] + w_ji c_i[t]
    charge:    H_j[t]  = Σ_i I_ji[t] - ρ_j J_j[t-1]
    fire:      z_j[t]  = Θ(H_j[t] - θ - β A_j[t-1])
    reset:     J_j[t]  = ρ_j J_j[t-1] + θ z_j[t]          (the reset current)
    adapt:     A_j[t]  = ρ_a A_j[t-1] + z_j[t]
    membrane:  V_j[t]  = Σ_i I_ji[t] - J_j[t] = H_j[t] - θ z_j[t]

Θ is the Heaviside step with a surrogate derivative (``surrogate.py``). Decays
are learnable through ``r = sigmoid(q)``, i.e. a time constant ``τ = 1 + e^q =
1 / (1 - r)``, so r stays in (0, 1) whatever q becomes.

Special cases (``decay=``):

* ``"layer"``: one decay r for every synapse and the reset current. Then
  ``V[t] = r V[t-1] + W c[t] - θ z[t]``: exactly the core LIF
  (:func:`~spiknerf.neurons.dynamics.lif_step`, binary, ``reset="soft"``,
  ``decay_input=False``, ``tau = 1 / (1 - r)``); with ``adaptation=β > 0`` it is
  ALIF (threshold θ + β A; the reset still subtracts θ).
* ``"neuron"``: ``r_ji = ρ_j = r_j``, a time constant per neuron.
* ``"synapse"``: a decay per synapse and a per-neuron reset decay ρ_j.

Memory. Per synapse the state is ``B × N_out × K``; autograd through the step
function would keep T copies of it. With per-neuron or per-layer decays the sum
over i commutes with the decay, so the state collapses to ``B × N_out``
(``I_j = r_j I_j + (W c)_j``) and the step function runs under autograd like
any LIF. With per-synapse decays the layer runs as one autograd node
(:class:`_HetSynSequence`) whose forward keeps a single ``[K, b, N_out]``
current (b samples at a time, see below) and saves only neuron-sized tensors (the inputs, spikes, ``u = H - θ_t``
and ``J[t-1]``, each ``[T, B, ·]``). Its backward is the adjoint recursion per
synapse, with ``δ_j[t] = ∂L/∂H_j[t]``::

    λ_ji[t] = r_ji λ_ji[t+1] + δ_j[t]             (= ∂L/∂I_ji[t])
    μ_ji[t] = r_ji μ_ji[t+1] + λ_ji[t+1]
    ∂L/∂c_i[t] = Σ_j w_ji λ_ji[t],   ∂L/∂w_ji = Σ_{b,t} λ_ji[t] c_i[t]
    ∂L/∂r_ji  = Σ_{b,t} λ_ji[t] I_ji[t-1] = w_ji Σ_{b,t} μ_ji[t] c_i[t]

The last line (unrolling I[t-1] into past inputs) means the decay gradient
needs no stored or recomputed synaptic state: backward holds two
``[K, b, N_out]`` buffers (λ, μ) and nothing that grows with T beyond the
neuron-sized tensors. Samples are independent, so forward and backward run
over batch chunks of b samples, with b chosen (:func:`batch_chunk`) so that
these buffers take at most half the bytes of the neuron-sized tensors saved
for backward: training memory stays O(T·B·N) like an LIF layer's, a small
multiple of it (docs/results/temporal_cost.json), at the price of more, smaller steps.
The ``[K, b, N_out]`` layout turns the three contractions into batched
matrix-vector products over i.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from spiknerf.neurons.lif import check_sequence
from spiknerf.neurons.surrogate import Surrogate, heaviside

DECAYS: tuple[str, ...] = ("layer", "neuron", "synapse")


class HetSynParameters(NamedTuple):
    """Constants of a HetSynLIF layer (decays and weights are tensors, passed separately).

    Attributes:
        v_threshold: θ.
        adaptation: β, the threshold's increase per unit of A (ALIF); 0 switches it off.
        adapt_decay: ρ_a, the decay of A per step.
        recurrent: the layer reads its own spikes of the previous step.
    """

    v_threshold: float = 1.0
    adaptation: float = 0.0
    adapt_decay: float = 0.0
    recurrent: bool = True


class HetSynState(NamedTuple):
    """State after step t-1.

    Attributes:
        i: the synaptic current ``[B, N_out, K]``, or its sum over synapses ``[B, N_out]`` when the
            decays are per neuron or per layer.
        j: the reset current ``[B, N_out]``.
        a: the threshold adaptation ``[B, N_out]``.
        z: the spikes ``[B, N_out]``.
    """

    i: Tensor
    j: Tensor
    a: Tensor
    z: Tensor


def hetsyn_step(
    x: Tensor,
    state: HetSynState,
    weight: Tensor,
    decay: Tensor,
    reset_decay: Tensor,
    p: HetSynParameters,
    surrogate: Surrogate,
) -> tuple[Tensor, HetSynState]:
    """One step of the HetSynLIF equations (module docstring), with plain autograd.

    Args:
        x: input ``[B, N_in]``.
        state: the state after the previous step (:meth:`HetSynLIF.initial_state` for the first).
        weight: ``[N_out, K]``, ``K = N_in (+ N_out when recurrent)``.
        decay: the synaptic decays r: ``[N_out, K]``, or ``[N_out, 1]`` for one per neuron.
        reset_decay: ρ ``[N_out]``.
        p: the layer's constants.
        surrogate: the derivative that stands in for Θ's.

    Returns:
        The spikes ``[B, N_out]`` and the new state. :class:`HetSynLIF` wraps it (``step``) and runs
        whole sequences with a hand-written backward (``forward``).
    """
    c = torch.cat([x, state.z], -1) if p.recurrent else x
    if state.i.dim() == 3:
        i = decay * state.i + weight * c.unsqueeze(1)
        s = i.sum(-1)
    else:  # r_ji = r_j: Σ_i r_j I_ji = r_j Σ_i I_ji
        i = decay[:, 0] * state.i + c @ weight.T
        s = i
    h = s - reset_decay * state.j
    z = heaviside(h - p.v_threshold - p.adaptation * state.a, surrogate)
    j = reset_decay * state.j + p.v_threshold * z
    a = p.adapt_decay * state.a + z
    return z, HetSynState(i, j, a, z)


def _forward_chunk(x: Tensor, weight: Tensor, decay: Tensor, reset_decay: Tensor, p: HetSynParameters,
                   us: Tensor, zs: Tensor, j_prev: Tensor) -> None:
    """Run one batch chunk ``x [T, b, N_in]``, writing u, z and J[t-1] ``[T, b, N]`` in place."""
    T, B, _ = x.shape
    n, k = weight.shape
    w_row = weight.T.unsqueeze(1)  # [K, 1, N]
    r_row = decay.T.unsqueeze(1).contiguous()
    i = x.new_zeros(k, B, n)
    j, a, z = (x.new_zeros(B, n) for _ in range(3))
    theta = torch.tensor(p.v_threshold, dtype=x.dtype)
    for t in range(T):
        c = torch.cat([x[t], z], -1) if p.recurrent else x[t]
        i.mul_(r_row).addcmul_(w_row, c.T.unsqueeze(-1))
        threshold = torch.addcmul(theta, reset_decay, j)  # ρ J[t-1] + θ
        if p.adaptation:
            threshold.add_(a, alpha=p.adaptation)
        torch.sub(i.sum(0), threshold, out=us[t])
        z = torch.ge(us[t], 0, out=zs[t])
        j_prev[t] = j
        j = torch.addcmul(p.v_threshold * z, reset_decay, j)
        if p.adaptation:
            a = torch.add(z, a, alpha=p.adapt_decay)


def _backward_chunk(grad_z: Tensor, x: Tensor, weight: Tensor, decay: Tensor, reset_decay: Tensor,
                    us: Tensor, zs: Tensor, j_prev: Tensor, p: HetSynParameters, surrogate: Surrogate,
                    grad_x: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Reverse sweep over one batch chunk; fills ``grad_x`` and returns (∂L/∂W, ∂L/∂r, ∂L/∂ρ)."""
    T, B, n_in = x.shape
    n, k = weight.shape
    # batched products run as one BLAS call only on contiguous operands (else a loop over K on CPU)
    w_row = weight.T.unsqueeze(1).contiguous()  # [K, 1, N]
    r_row = decay.T.unsqueeze(1).contiguous()
    lam, mu = x.new_zeros(k, B, n), x.new_zeros(k, B, n)
    g_w, g_r = x.new_zeros(k, 1, n), x.new_zeros(k, 1, n)
    g_rho = x.new_zeros(B, n)
    g_j, g_a, g_rec = (x.new_zeros(B, n) for _ in range(3))  # ∂L/∂J[t], ∂L/∂A[t], ∂L/∂z[t] via c[t+1]
    no_spikes = x.new_zeros(B, n)
    for t in range(T - 1, -1, -1):
        g_z = torch.add(grad_z[t], g_j, alpha=p.v_threshold).add_(g_rec)
        if p.adaptation:
            g_z.add_(g_a)
        delta = g_z.mul_(surrogate.grad(us[t]))  # ∂L/∂H[t]
        torch.addcmul(lam, mu, r_row, out=mu)  # μ[t] = r μ[t+1] + λ[t+1]
        torch.addcmul(delta.unsqueeze(0), lam, r_row, out=lam)  # λ[t] = r λ[t+1] + δ[t]
        g_j = g_j - delta
        g_rho.addcmul_(g_j, j_prev[t])
        g_j.mul_(reset_decay)
        if p.adaptation:
            g_a = torch.add(-p.adaptation * delta, g_a, alpha=p.adapt_decay)
        c = torch.cat([x[t], zs[t - 1] if t > 0 else no_spikes], -1) if p.recurrent else x[t]
        c_row = c.T.contiguous().unsqueeze(1)  # [K, 1, B]
        g_w.baddbmm_(c_row, lam)
        g_r.baddbmm_(c_row, mu)
        g_c = torch.bmm(w_row, lam.transpose(1, 2)).squeeze(1).T  # [B, K]
        if grad_x is not None:
            grad_x[t] = g_c[:, :n_in]
        if p.recurrent:
            g_rec = g_c[:, n_in:]
    return g_w.squeeze(1).T, weight * g_r.squeeze(1).T, g_rho.sum(0)


class _HetSynSequence(torch.autograd.Function):
    """A per-synapse HetSynLIF layer over a whole sequence, batch chunk by batch chunk (see module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, decay, reset_decay, p, surrogate, chunk):  # type: ignore[override]
        T, B, _ = x.shape
        us, zs, j_prev = (x.new_empty(T, B, weight.shape[0]) for _ in range(3))
        for b in range(0, B, chunk):
            sl = slice(b, b + chunk)
            _forward_chunk(x[:, sl], weight, decay, reset_decay, p, us[:, sl], zs[:, sl], j_prev[:, sl])
        ctx.save_for_backward(x, weight, decay, reset_decay, us, zs, j_prev)
        ctx.p, ctx.surrogate, ctx.chunk = p, surrogate, chunk
        return zs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z):  # type: ignore[override]
        x, weight, decay, reset_decay, us, zs, j_prev = ctx.saved_tensors
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grads = []
        for b in range(0, x.shape[1], ctx.chunk):
            sl = slice(b, b + ctx.chunk)
            grads.append(_backward_chunk(grad_z[:, sl], x[:, sl], weight, decay, reset_decay, us[:, sl], zs[:, sl],
                                         j_prev[:, sl], ctx.p, ctx.surrogate,
                                         None if grad_x is None else grad_x[:, sl]))
        g_w, g_r, g_rho = (sum(g) for g in zip(*grads, strict=True))
        return grad_x, g_w, g_r, g_rho, None, None, None


WORKSPACE_SHARE = 0.5  # per-synapse buffers may take this share of the bytes saved for backward


def batch_chunk(steps: int, batch: int, in_features: int, out_features: int, synapses: int) -> int:
    """Largest batch chunk whose per-synapse buffers (λ, μ: ``2 K N`` a sample) take at most
    ``WORKSPACE_SHARE`` of what the layer saves for backward anyway (x, u, z, J: ``T (N_in + 3 N)``
    a sample); at least 1."""
    saved = steps * (in_features + 3 * out_features) * batch
    return max(1, min(batch, int(WORKSPACE_SHARE * saved) // (2 * synapses * out_features)))


def _check_positive(name: str, value: float, minimum: float = 0.0, strict: bool = True) -> None:
    if not (value > minimum if strict else value >= minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum} (got {value})")


def _tau_logit(tau: Tensor) -> Tensor:
    """q with 1 + e^q = τ, i.e. sigmoid(q) = 1 - 1/τ."""
    return torch.log(tau - 1.0)


class HetSynLIF(nn.Module):
    """Recurrent (or feed-forward) layer of HetSynLIF neurons: ``[T, B, N_in]`` -> spikes ``[T, B, N_out]``.

    ``decay`` picks the special case (``"layer"``, ``"neuron"``, ``"synapse"``;
    see the module docstring). Initial time constants are log-uniform in
    ``[tau / tau_spread, tau * tau_spread]`` (all equal to ``tau`` for
    ``tau_spread=1``); ``learn_decay`` makes them trainable. ``adaptation`` (β)
    and ``tau_adapt`` give ALIF threshold adaptation with ``ρ_a = 1 - 1/tau_adapt``.
    Weights start uniform in ``±weight_gain · sqrt(3 / K) · (1 - r)``: each
    synapse's steady response to a unit input is then independent of its τ.

    Args:
        in_features, out_features: N_in and N_out.
        recurrent: feed the layer's spikes of the previous step back as inputs.
        decay: ``"layer"``, ``"neuron"`` or ``"synapse"``: which decays are shared.
        tau, tau_spread: the initial time constants, log-uniform in ``[tau / tau_spread, tau * tau_spread]``.
        learn_decay: train the decays.
        v_threshold: θ.
        adaptation, tau_adapt: ALIF's β and adaptation time constant (β = 0 switches it off).
        weight_gain: scale of the initial weights.
        surrogate, alpha: the surrogate derivative by name, and its sharpness.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import HetSynLIF
        >>> layer = HetSynLIF(3, 5, decay="synapse", tau=10.0, tau_spread=2.0)
        >>> layer(torch.rand(20, 4, 3)).shape  # T = 20, B = 4
        torch.Size([20, 4, 5])
        >>> layer.time_constants().shape  # one per synapse: 5 neurons x (3 inputs + 5 recurrent)
        torch.Size([40])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        recurrent: bool = True,
        decay: str = "synapse",
        tau: float = 20.0,
        tau_spread: float = 1.0,
        learn_decay: bool = True,
        v_threshold: float = 1.0,
        adaptation: float = 0.0,
        tau_adapt: float = 100.0,
        weight_gain: float = 1.0,
        surrogate: str = "triangle",
        alpha: float | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer (got {value})")
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)} (got {decay!r})")
        _check_positive("tau", tau, 1.0)
        _check_positive("tau_spread", tau_spread, 1.0, strict=False)
        _check_positive("v_threshold", v_threshold)
        _check_positive("adaptation", adaptation, strict=False)
        _check_positive("tau_adapt", tau_adapt, 1.0)
        self.in_features, self.out_features, self.decay_mode = int(in_features), int(out_features), decay
        k = self.in_features + (self.out_features if recurrent else 0)
        self.p = HetSynParameters(float(v_threshold), float(adaptation), 1.0 - 1.0 / tau_adapt, recurrent)
        self.surrogate = Surrogate(surrogate, alpha)
        shape = {"layer": (1, 1), "neuron": (self.out_features, 1), "synapse": (self.out_features, k)}[decay]
        log_lo, log_hi = math.log(tau / tau_spread), math.log(tau * tau_spread)
        taus = torch.exp(torch.empty(shape).uniform_(log_lo, log_hi)).clamp_min(1.0 + 1e-3)
        q = _tau_logit(taus)
        q_reset = _tau_logit(torch.full((self.out_features,), float(tau))) if decay == "synapse" else None
        for name, value in (("decay_logit", q), ("reset_logit", q_reset)):
            if learn_decay and value is not None:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        bound = weight_gain * math.sqrt(3.0 / k)
        w = torch.empty(self.out_features, k).uniform_(-bound, bound) * (1.0 - torch.sigmoid(q))
        self.weight = nn.Parameter(w)

    @property
    def decay(self) -> Tensor:
        """r, ``[N_out, K]``, ``[N_out, 1]`` or ``[1, 1]`` by decay mode."""
        return torch.sigmoid(self.decay_logit)

    @property
    def reset_decay(self) -> Tensor:
        """ρ ``[N_out]`` (or ``[1]``): its own per neuron for per-synapse decays, else tied to r."""
        if self.reset_logit is None:
            return self.decay[:, 0]
        return torch.sigmoid(self.reset_logit)

    def time_constants(self) -> Tensor:
        """Synaptic time constants τ = 1 / (1 - r), one per distinct decay parameter, flattened."""
        return (1.0 + torch.exp(self.decay_logit)).detach().flatten()

    def initial_state(self, x: Tensor) -> HetSynState:
        """Zero state for a ``[B, N_in]`` input."""
        B, n = x.shape[0], self.out_features
        per_synapse = self.decay_mode == "synapse"
        i = x.new_zeros(B, n, self.weight.shape[1]) if per_synapse else x.new_zeros(B, n)
        return HetSynState(i, x.new_zeros(B, n), x.new_zeros(B, n), x.new_zeros(B, n))

    def step(self, x: Tensor, state: HetSynState | None = None) -> tuple[Tensor, HetSynState]:
        """One step on ``[B, N_in]`` (plain autograd); ``state=None`` starts from zero."""
        if state is None:
            state = self.initial_state(x)
        return hetsyn_step(x, state, self.weight, self.decay, self.reset_decay, self.p, self.surrogate)

    def forward(self, x: Tensor) -> Tensor:
        check_sequence(x)
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must be [T, B, {self.in_features}] (got shape {tuple(x.shape)})")
        if self.decay_mode == "synapse":
            chunk = batch_chunk(x.shape[0], x.shape[1], self.in_features, self.out_features, self.weight.shape[1])
            return _HetSynSequence.apply(x, self.weight, self.decay, self.reset_decay, self.p, self.surrogate, chunk)
        weight, decay, reset_decay = self.weight, self.decay, self.reset_decay
        state, spikes = self.initial_state(x[0]), []
        for t in range(x.shape[0]):
            z, state = hetsyn_step(x[t], state, weight, decay, reset_decay, self.p, self.surrogate)
            spikes.append(z)
        return torch.stack(spikes)

    def workspace_bytes(self, x: Tensor) -> int:
        """Bytes of the per-synapse buffers alive at once when training on ``x`` (λ and μ of one batch
        chunk in backward); 0 when the state collapses to neurons."""
        if self.decay_mode != "synapse":
            return 0
        T, B, _ = x.shape
        chunk = batch_chunk(T, B, self.in_features, self.out_features, self.weight.shape[1])
        return 2 * chunk * self.weight.numel() * self.weight.element_size()

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, recurrent={self.p.recurrent}, decay={self.decay_mode}, "
                f"v_threshold={self.p.v_threshold}, adaptation={self.p.adaptation}, surrogate={self.surrogate.name}")
