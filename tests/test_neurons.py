"""The shared neuron core: hand-computed spike trains, gradients, reparameterization, op counts, validation."""

import pytest
import torch

from spiknerf.neurons import (
    SURROGATES,
    BinaryLIF,
    LIFState,
    SignedTernaryLIF,
    SpikingLinear,
    SpikingMLP,
    TernaryLIF,
    accumulate_linear,
    calibrate_offsets,
    count_ops,
    make_neuron,
    reparameterize,
)
from spiknerf.neurons.dynamics import MAX_COMPILED_STEPS


def seq(*values):
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1)


def test_binary_lif_hand_computed():
    # tau=2: H = V/2 + X/2; fire at H >= 1; hard reset to 0
    # H: 1 -> fire; 1 -> fire; 0.25 (V=0.25); 0.125 + 2 = 2.125 -> fire
    s = BinaryLIF(tau=2.0, v_threshold=1.0)(seq(2, 2, 0.5, 4))
    assert s.flatten().tolist() == [1, 1, 0, 1]


def test_ternary_lif_hand_computed():
    # tau=4, θ=0.5, Δv=1: H = 0.75 V + 0.25 X; 1 at H >= 0.5, 2 at H >= 1.5
    # H: 0.25 (V=0.25); 0.1875 + 0.75 = 0.9375 -> 1; 2.0 -> 2; 0 -> 0
    s = TernaryLIF()(seq(1, 3, 8, 0))
    assert s.flatten().tolist() == [0, 1, 2, 0]


def test_signed_ternary_lif_hand_computed():
    # tau=2, θ=1: H: 1 -> +1; -1 -> -1; -0.5 (V=-0.5); -0.25 + 2 = 1.75 -> +1
    s = SignedTernaryLIF(tau=2.0, v_threshold=1.0)(seq(2, -2, -1, 4))
    assert s.flatten().tolist() == [1, -1, 0, 1]


def test_soft_reset_keeps_the_excess():
    # tau=2, no input decay: H = 0.5 V + X; soft reset subtracts θ=1
    # H: 1.5 -> fire, V=0.5; 0.25 + 1 = 1.25 -> fire, V=0.25; 0.125 -> 0
    s = BinaryLIF(tau=2.0, v_threshold=1.0, reset="soft", decay_input=False)(seq(1.5, 1, 0))
    assert s.flatten().tolist() == [1, 1, 0]


def loop_form(neuron, x):
    """Reference: the pure step function unrolled by autograd."""
    state, out = LIFState(torch.zeros_like(x[0])), []
    for t in range(x.shape[0]):
        s, state = neuron.step(x[t], state)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["binary", "ternary", "signed_ternary"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_fused_multistep_matches_step_function(kind, reset, detach_reset):
    torch.manual_seed(0)
    neuron = make_neuron(kind, reset=reset, detach_reset=detach_reset, learnable_threshold=True,
                         surrogate="sigmoid")
    x = (torch.randn(6, 5, 7) * 1.5).requires_grad_()
    w = torch.randn(6, 5, 7)
    fused = neuron(x)
    (fused * w).sum().backward()
    gx, gth = x.grad.clone(), neuron.threshold_weight.grad.clone()
    x.grad = None
    neuron.threshold_weight.grad = None
    looped = loop_form(neuron, x)
    (looped * w).sum().backward()
    assert torch.equal(fused, looped)
    torch.testing.assert_close(gx, x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gth, neuron.threshold_weight.grad, rtol=1e-4, atol=1e-5)


def test_sequences_longer_than_the_compiled_loop_match_the_step_function():
    torch.manual_seed(0)
    neuron = make_neuron("ternary")
    x = (torch.randn(MAX_COMPILED_STEPS + 2, 5, 7) * 1.5).requires_grad_()
    fused = neuron(x)
    fused.sum().backward()
    gx = x.grad.clone()
    x.grad = None
    looped = loop_form(neuron, x)
    looped.sum().backward()
    assert torch.equal(fused, looped)
    torch.testing.assert_close(gx, x.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kind", "varying"), [("ternary", True), ("ternary", False), ("binary", True),
                                               ("signed_ternary", True)])
def test_a_held_current_gives_the_spikes_and_gradients_of_its_copies(kind, varying):
    torch.manual_seed(3)
    neuron = make_neuron(kind, reset="soft", decay_input=False, learnable_threshold=True)
    held = (torch.randn(5, 7) * 1.5).requires_grad_()
    x = (torch.randn(4, 5, 7) * 1.5).requires_grad_() if varying else None
    w = torch.randn(4, 5, 7)
    spikes = neuron(x, current=held, steps=4)
    (spikes * w).sum().backward()
    tensors = [held, neuron.threshold_weight] + ([] if x is None else [x])
    grads = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    copies = held.expand(4, 5, 7) if x is None else x + held  # what SpikingLinear presented before
    reference = neuron(copies)
    (reference * w).sum().backward()
    assert torch.equal(spikes, reference)
    for mine, theirs in zip(grads, (t.grad for t in tensors), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


def test_a_held_current_needs_its_steps():
    neuron = make_neuron("ternary")
    with pytest.raises(ValueError, match="number of steps"):
        neuron(None, current=torch.ones(2, 3))
    with pytest.raises(ValueError, match="steps"):
        neuron(torch.ones(2, 2, 3), steps=3)


def test_a_compiled_caller_traces_the_step_loop_and_gets_the_same_bptt():
    torch.manual_seed(4)
    neuron = make_neuron("ternary", reset="soft", decay_input=False, learnable_threshold=True)
    x, held = (torch.randn(2, 6, 5) * 1.5).requires_grad_(), (torch.randn(6, 5)).requires_grad_()
    w = torch.randn(2, 6, 5)

    def spikes(x, held):
        return neuron(x, current=held)

    results = []
    for fn in (spikes, torch.compile(spikes)):
        out = fn(x, held)
        (out * w).sum().backward()
        results.append((out.detach(), x.grad.clone(), held.grad.clone(), neuron.threshold_weight.grad.clone()))
        x.grad = held.grad = neuron.threshold_weight.grad = None
    (eager, *eager_grads), (compiled, *compiled_grads) = results
    assert torch.equal(eager, compiled)
    for a, b in zip(eager_grads, compiled_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("neuron", ["binary", "ternary", "signed-ternary"])
def test_gradients_reach_inputs_and_parameters(surrogate, neuron):
    torch.manual_seed(1)
    model = SpikingMLP(4, 16, 3, hidden_layers=2, neuron=neuron, T=3, surrogate=surrogate)
    x = torch.randn(8, 4, requires_grad=True) * 4
    x.retain_grad()
    model(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.layers[0].fc.weight.grad.abs().sum() > 0


def test_learnable_threshold_is_tanh_of_a_parameter():
    n = TernaryLIF(v_threshold=0.3, learnable_threshold=True)
    assert float(n.threshold.detach()) == pytest.approx(0.3)
    n(torch.randn(4, 2, 3) * 3).sum().backward()
    assert n.threshold_weight.grad is not None


def folded_test_model(T=2):
    torch.manual_seed(2)
    model = SpikingMLP(6, 32, 5, hidden_layers=4, neuron="ternary", T=T)
    with torch.no_grad():  # make every layer fire at a mix of 0, 1 and 2
        for layer in model.layers:
            layer.fc.weight.mul_(6.0)
    return model


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("static", [True, False])
@pytest.mark.parametrize("calibrated", [False, True])
def test_reparameterized_model_equals_training_form(accumulate, static, calibrated):
    model = folded_test_model(T=3)
    x = torch.randn(200, 6) if static else torch.randn(3, 200, 6)
    offsets = calibrate_offsets(model, torch.randn(x.shape)) if calibrated else None
    folded = reparameterize(model, accumulate=accumulate, offsets=offsets, inputs=(x,))
    with torch.no_grad():
        ref, out = model(x), folded(x)
        spikes = model.layers[1](model.layers[0](x))
    assert set(spikes.unique().tolist()) == {0.0, 1.0, 2.0}
    assert (out - ref).abs().max() <= 1e-5
    assert not any(getattr(m, "accumulate", False) for m in model.modules())  # original untouched


def test_calibrated_offsets_are_each_units_most_frequent_spike():
    model = hand_count_model()
    with torch.no_grad():
        model.layers[0].fc.bias[:2] = torch.tensor([-3.0, 3.0])  # unit 0 silent, unit 1 fires 2
    offsets = calibrate_offsets(model, torch.ones(5, 3))
    assert offsets["layers.0.neuron"].tolist() == [0.0, 2.0, 1.0, 1.0]
    assert offsets["layers.1.neuron"].tolist() == [0.0] * 4


def test_calibrated_fold_refuses_a_layer_that_reads_no_neuron_output():
    class Scaled(torch.nn.Module):  # the readout reads scaled spikes: no per-unit offset can be folded into it
        def __init__(self):
            super().__init__()
            self.mlp = SpikingMLP(3, 4, 2, neuron="ternary")

        def forward(self, x):
            s = self.mlp.layers[1](self.mlp.layers[0](x))
            return self.mlp.readout(2 * s)

    model, x = Scaled(), torch.randn(8, 3)
    with pytest.raises(ValueError, match="mlp.readout.fc"):
        reparameterize(model, offsets=calibrate_offsets(model, x), inputs=(x,))


def test_accumulate_linear_adds_weight_columns():
    w = torch.tensor([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    s = torch.tensor([[1.0, 0.0, -1.0], [-1.0, -2.0, 2.0]])
    out = accumulate_linear(s, w, torch.tensor([0.5, 0.25]))
    assert out.tolist() == [[1 - 4 + 0.5, 8 - 32 + 0.25], [-1 - 4 + 8 + 0.5, -8 - 32 + 64 + 0.25]]
    for bad in (3.0, 0.5):
        with pytest.raises(ValueError, match="-2, -1, 0, 1 and 2"):
            accumulate_linear(torch.tensor([[bad, 0.0, 0.0]]), w)


def test_reparameterize_rejects_non_ternary_models():
    with pytest.raises(ValueError, match="ternary"):
        reparameterize(SpikingMLP(3, 4, 2, neuron="binary"))


def hand_count_model():
    """in 3 -> 4 ternary -> 4 ternary -> 2; layer 0 always fires 1, layer 1 never fires."""
    model = SpikingMLP(3, 4, 2, hidden_layers=2, neuron="ternary", T=2)
    with torch.no_grad():
        model.layers[0].fc.weight.fill_(1.0)  # current 3 -> H = 0.75 each step -> spike 1, reset
        model.layers[0].fc.bias.zero_()
        model.layers[1].fc.weight.zero_()
        model.layers[1].fc.bias.zero_()
    return model


def test_count_ops_matches_hand_count():
    model = hand_count_model()
    ops = count_ops(model, torch.ones(1, 3))
    # layer 0 reads the analog input once: 3 x 4 MACs; layer 1 reads 2 steps x 4 spikes, fan-out 4;
    # the readout reads no spikes
    assert ops.macs == 12
    assert ops.sops == 2 * 4 * 4
    assert ops.energy_pj == pytest.approx(12 * 4.6 + 32 * 0.9)
    assert ops.firing_rate == {"layers.0.neuron": 1.0, "layers.1.neuron": 0.0}
    folded = count_ops(reparameterize(model), torch.ones(1, 3))
    # folded spikes s - 1: layer 0's ones cost nothing; layer 1's zeros (-1) cost 2 steps x 4 x 2 at the readout
    assert folded.macs == 12 and folded.sops == 16
    x = torch.ones(1, 3)
    calibrated = reparameterize(model, offsets=calibrate_offsets(model, x), inputs=(x,))
    # calibrated offsets: layer 0's units always spike 1 (c = 1), layer 1's never (c = 0): nothing to add
    assert count_ops(calibrated, x).sops == 0
    half = count_ops(model, torch.ones(2, 3), e_mac=1.0, e_ac=0.5)
    assert half.energy_pj_per_sample == pytest.approx(12 * 1.0 + 32 * 0.5)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: BinaryLIF(tau=0), "tau"),
        (lambda: TernaryLIF(tau=-2), "tau"),
        (lambda: TernaryLIF(v_threshold=0), "v_threshold"),
        (lambda: BinaryLIF(v_threshold=-1), "v_threshold"),
        (lambda: TernaryLIF(delta_v=0), "delta_v"),
        (lambda: SpikingLinear(3, 4, T=0), "T"),
        (lambda: SpikingMLP(3, 4, 2, T=-1), "T"),
        (lambda: BinaryLIF(surrogate="nope"), "surrogate"),
        (lambda: make_neuron("quaternary"), "neuron"),
        (lambda: BinaryLIF()(torch.ones(5)), "x"),
        (lambda: SpikingLinear(3, 4)(torch.ones(5)), "x"),
        (lambda: SpikingLinear(3, 4, spike_input=True)(torch.ones(2, 3)), "x"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()
