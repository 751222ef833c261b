"""HetSynLIF: reduction to the core LIF, special cases, hand-computed ALIF, BPTT against autograd, memory."""

import pytest
import torch

from spiknerf.bench.memory import SavedTensorMeter
from spiknerf.neurons import HetSynLIF, LIFParameters, LIFState, lif_step
from spiknerf.neurons.hetsyn import _HetSynSequence, batch_chunk


def spikes_in(T=40, B=3, n_in=6, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n_in, generator=g) < p).double()


def core_recurrent_lif(x, weight, tau, theta, surrogate):
    """A recurrent layer of the core LIF: current W [x[t], z[t-1]], soft reset, no input decay."""
    p = LIFParameters(kind="binary", tau=tau, reset="soft", decay_input=False)
    n = weight.shape[0]
    state, z, out = LIFState(x.new_zeros(x.shape[1], n)), x.new_zeros(x.shape[1], n), []
    for t in range(x.shape[0]):
        z, state = lif_step(torch.cat([x[t], z], -1) @ weight.T, state, p, theta, surrogate)
        out.append(z)
    return torch.stack(out)


@pytest.mark.parametrize("decay", ["synapse", "neuron", "layer"])
def test_equal_decays_match_core_lif_spike_for_spike(decay):
    torch.manual_seed(0)
    tau, theta = 4.0, 1.0
    m = HetSynLIF(6, 5, recurrent=True, decay=decay, tau=tau, tau_spread=1.0, v_threshold=theta,
                  weight_gain=12.0).double()
    x = spikes_in()
    z = m(x)
    ref = core_recurrent_lif(x, m.weight.detach(), tau, theta, m.surrogate)
    assert 0.05 < float(z.detach().mean()) < 0.95  # the comparison exercises spikes and silences
    assert torch.equal(z, ref)


def test_neuron_level_decays_are_per_synapse_decays_equal_along_rows():
    torch.manual_seed(1)
    per_neuron = HetSynLIF(6, 5, decay="neuron", tau=5.0, tau_spread=4.0, weight_gain=8.0).double()
    per_synapse = HetSynLIF(6, 5, decay="synapse", weight_gain=8.0).double()
    with torch.no_grad():
        per_synapse.weight.copy_(per_neuron.weight)
        per_synapse.decay_logit.copy_(per_neuron.decay_logit.expand_as(per_synapse.decay_logit))
        per_synapse.reset_logit.copy_(per_neuron.decay_logit[:, 0])
    x = spikes_in(seed=1)
    z = per_neuron(x).detach()
    assert 0.05 < float(z.mean()) < 0.95
    assert torch.equal(z, per_synapse(x))


@pytest.mark.parametrize("beta, expected", [(0.0, [1, 1, 1, 1]), (1.0, [1, 0, 1, 0])])
def test_alif_threshold_adaptation_hand_computed(beta, expected):
    # r = ρ = ρ_a = 0.5 (tau 2), w = 1, θ = 1, x = 1.5 at every step:
    # H = I - ρ J[t-1], threshold 1 + β A[t-1], J += θ z, A += z
    # β=1: H 1.5 (θ_t 1) fire; 1.75 (2) no; 2.375 (1.5) fire; 2.1875 (2.25) no
    m = HetSynLIF(1, 1, recurrent=False, decay="layer", tau=2.0, learn_decay=False, adaptation=beta, tau_adapt=2.0)
    with torch.no_grad():
        m.weight.fill_(1.0)
    z = m(torch.full((4, 1, 1), 1.5))
    assert z.flatten().tolist() == expected


@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_sequence_bptt_equals_autograd_through_step_function(recurrent, beta):
    torch.manual_seed(2)
    m = HetSynLIF(5, 4, recurrent=recurrent, decay="synapse", tau=5.0, tau_spread=3.0, adaptation=beta,
                  tau_adapt=10.0, weight_gain=6.0, surrogate="sigmoid").double()
    with torch.no_grad():
        m.weight.add_(0.3)  # excitatory drift, so that the layer fires (checked below)
    x = spikes_in(T=15, B=4, n_in=5, p=0.5, seed=2).requires_grad_()
    params = [x, m.weight, m.decay_logit, m.reset_logit]
    state, steps = None, []
    for t in range(x.shape[0]):
        z, state = m.step(x[t], state)
        steps.append(z)
    ref = torch.stack(steps)
    weights = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * weights).sum(), params)
    assert 0.02 < float(ref.detach().mean()) < 0.98
    for chunk in (1, 3, 4):  # batch chunks, including one that does not divide B
        z = _HetSynSequence.apply(x, m.weight, m.decay, m.reset_decay, m.p, m.surrogate, chunk)
        grads = torch.autograd.grad((z * weights).sum(), params)
        assert torch.equal(z, ref)
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_per_synapse_training_keeps_no_synaptic_state_per_step():
    T, B, n_in, n = 30, 8, 6, 10
    m = HetSynLIF(n_in, n, decay="synapse", tau_spread=2.0)
    x = spikes_in(T, B, n_in).float()
    meter = SavedTensorMeter()
    with meter:
        m(x).sum().backward()
    # x, u, z and J[t-1] ([T, B, ·] each) plus the weights and decays: no [T, B, N, K] tensor
    expected = 4 * (T * B * n_in + 3 * T * B * n + 2 * m.weight.numel() + n)
    assert meter.peak_bytes == expected
    assert m.decay_logit.grad is not None and m.decay_logit.grad.abs().sum() > 0


def test_batch_chunk_bounds_the_per_synapse_buffers():
    T, B, n_in, n = 20, 64, 12, 32
    k = n_in + n
    chunk = batch_chunk(T, B, n_in, n, k)
    assert 1 <= chunk <= B
    assert 2 * chunk * k * n <= 0.5 * T * B * (n_in + 3 * n)
    assert batch_chunk(1000, 4, n_in, n, k) == 4
    assert batch_chunk(1, 4, 1, 1000, 1001) == 1


def test_decays_stay_in_unit_interval_and_time_constants_at_least_one():
    m = HetSynLIF(3, 2, decay="synapse", tau=2.0, tau_spread=1.9)
    with torch.no_grad():
        m.decay_logit.copy_(torch.tensor([[-50.0, 0.0, 50.0, 3.0, -3.0]] * 2))
    r = m.decay
    assert bool(((r >= 0) & (r <= 1)).all())
    assert bool((m.time_constants() >= 1).all())


@pytest.mark.parametrize("kwargs, name", [
    ({"decay": "dendrite"}, "decay"),
    ({"tau": 1.0}, "tau"),
    ({"tau_spread": 0.5}, "tau_spread"),
    ({"v_threshold": 0.0}, "v_threshold"),
    ({"adaptation": -1.0}, "adaptation"),
    ({"out_features": 0}, "out_features"),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    args = {"in_features": 3, "out_features": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        HetSynLIF(**args)


def test_wrong_input_shape_raises():
    m = HetSynLIF(3, 2)
    with pytest.raises(ValueError, match="x must be"):
        m(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="x must be"):
        m(torch.zeros(5))

