"""Classification benchmarks: every method learns on a small slice of digits; the CLI and JSON contract."""

from __future__ import annotations

import copy
import gzip
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spiknerf.bench.classifier import Data, Objective, Settings, build_network, fit, membrane_forward
from spiknerf.bench.datasets import load_mnist_idx
from spiknerf.bench.imloss import IMLossObjective, esg_sharpness
from spiknerf.bench.ltmd import LTMDObjective, moderate_dropout
from spiknerf.bench.ncg import NCGSettings, fit_ncg
from spiknerf.bench.peer_spikingjelly import SpikingJellyMLP, spikingjelly_available
from spiknerf.bench.ratebp import RateBPObjective, rate_forward
from spiknerf.bench.s2nn import S2NNObjective
from spiknerf.bench.subbit import QuantizedWeight, bits_per_weight, quantize_weights
from spiknerf.cli import main as cli_main
from spiknerf.errors import InputError
from spiknerf.neurons import SpikingMLP

pytest.importorskip("sklearn")

SMALL = Settings(T=4, epochs=2, hidden=64, batch_size=10, lr=1e-2)


@pytest.fixture(scope="module")
def digits() -> Data:
    """200 training and 200 test digits: enough to learn something in a few steps."""
    from spiknerf.bench.datasets import load_digits, split

    xtr, ytr, xte, yte = split(*load_digits(), seed=0)
    tensors = [torch.from_numpy(a) for a in (xtr[:200], ytr[:200], xte[:200], yte[:200])]
    return Data(*tensors, side=8)


def _train_loss(model: SpikingMLP, data: Data) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(data.x_train), data.y_train))


def _teacher(data: Data) -> SpikingMLP:
    torch.manual_seed(1)
    teacher = build_network(data, SMALL, "binary")
    fit(Objective(teacher), data, SMALL)
    return teacher


def _objectives(data: Data) -> dict[str, Objective]:
    torch.manual_seed(0)
    bw = build_network(data, SMALL, "binary")
    quantize_weights(bw)
    teacher = _teacher(data)
    student = copy.deepcopy(build_network(data, SMALL, "binary"))
    quantize_weights(student, 8, 6, outlier_aware=True)
    return {
        "lif": Objective(build_network(data, SMALL, "binary")),
        "ternary": Objective(build_network(data, SMALL, "ternary")),
        "ltmd": LTMDObjective(build_network(data, SMALL, "binary", learnable_threshold=True),
                              generator=torch.Generator().manual_seed(0)),
        "imloss": IMLossObjective(build_network(data, SMALL, "binary", surrogate="tanh")),
        "ratebp": RateBPObjective(build_network(data, SMALL, "binary")),
        "bwsnn": Objective(bw),
        "s2nn": S2NNObjective(student, teacher),
    }


def test_every_gradient_method_lowers_its_training_loss(digits: Data) -> None:
    for name, objective in _objectives(digits).items():
        before = _train_loss(objective.model, digits)
        result = fit(objective, digits, SMALL)
        after = _train_loss(objective.model, digits)
        assert after < before - 0.1, f"{name}: cross-entropy {before:.3f} -> {after:.3f}"
        assert 0.0 <= result.accuracy <= 1.0 and result.peak_memory_bytes > 0


def test_ncg_learns_without_backprop_better_than_chance(digits: Data) -> None:
    result = fit_ncg(digits, NCGSettings(T=8, epochs=2))
    assert result.accuracy > 0.4  # chance is 0.1
    assert result.sops_per_sample > 0


def test_ratebp_gradient_follows_bptt_on_one_layer() -> None:
    torch.manual_seed(0)
    for detach_reset in (True, False):
        model = SpikingMLP(20, 32, 5, hidden_layers=1, neuron="binary", T=4, detach_reset=detach_reset)
        x, y = torch.rand(16, 20) * 3, torch.randint(0, 5, (16,))
        F.cross_entropy(model(x), y).backward()
        bptt = torch.cat([p.grad.flatten() for p in model.parameters()])
        model.zero_grad()
        logits = rate_forward(model, x)
        torch.testing.assert_close(logits, model(x))  # the rate pass has the spiking network's value
        F.cross_entropy(logits, y).backward()
        rate = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert F.cosine_similarity(bptt, rate, 0) > 0.9
        if detach_reset:  # one layer, constant input, detached reset: the same gradient
            torch.testing.assert_close(rate, bptt, rtol=1e-4, atol=1e-6)


def test_ratebp_memory_does_not_grow_with_T(digits: Data) -> None:
    peaks = {}
    for T in (2, 8):
        s = Settings(T=T, epochs=1, hidden=32, batch_size=32)
        torch.manual_seed(0)
        peaks["ratebp", T] = fit(RateBPObjective(build_network(digits, s)), digits, s).peak_memory_bytes
        torch.manual_seed(0)
        peaks["lif", T] = fit(Objective(build_network(digits, s)), digits, s).peak_memory_bytes
    assert peaks["ratebp", 8] <= 1.05 * peaks["ratebp", 2]
    assert peaks["lif", 8] > 1.5 * peaks["lif", 2]


def test_subbit_storage_is_below_one_bit_by_construction() -> None:
    q = QuantizedWeight(block=8, eta=6)
    for out_f, in_f in ((512, 784), (512, 512), (10, 512)):
        assert q.storage_bits(out_f, in_f) < out_f * in_f
    model = SpikingMLP(784, 512, 10, hidden_layers=2, neuron="binary", T=2)
    quantize_weights(model, 8, 6, outlier_aware=True)
    assert bits_per_weight(model) < 1.0


def test_subbit_weights_use_only_the_codebook() -> None:
    torch.manual_seed(0)
    w = torch.randn(64, 64)
    w[0, 0] = 50.0  # an outlier, beyond Tukey's fences
    q = QuantizedWeight(block=8, eta=3, outlier_aware=True)(w)
    signs = torch.sign(q).reshape(-1, 8)
    assert len(torch.unique(signs, dim=0)) <= 2**3
    scales = q.abs()
    assert torch.allclose(scales, scales[:, :1].expand_as(scales))  # one scale a row
    assert scales[0, 0] < 5.0  # the outlier did not set its row's scale
    binary = QuantizedWeight()(w)
    torch.testing.assert_close(torch.sign(binary), torch.sign(w))


def test_membrane_forward_matches_the_model(digits: Data) -> None:
    torch.manual_seed(0)
    model = build_network(digits, SMALL, "ternary")
    logits, potentials = membrane_forward(model, digits.x_test)
    torch.testing.assert_close(logits, model(digits.x_test))
    assert [tuple(h.shape) for h in potentials] == [(4, 200, 64)] * 2


def test_moderate_dropout_drops_quiet_neurons_more_with_one_mask_over_time() -> None:
    g = torch.Generator().manual_seed(0)
    rates = torch.linspace(0.05, 1.0, 64)
    s = (torch.rand(4, 2000, 64, generator=g) < rates).float()
    out = moderate_dropout(s, 0.2, g)
    spiked, lost = s != 0, (s != 0) & (out == 0)
    assert not (lost.any(0) & spiked & ~lost).any()  # a dropped neuron loses all its spikes of the sample
    dropped = lost.float().sum((0, 1)) / spiked.float().sum((0, 1))
    assert dropped[:8].mean() > dropped[-8:].mean() + 0.1
    assert abs(float(dropped.mean()) - 0.2) < 0.05


def test_esg_sharpens_from_k_min_to_k_max() -> None:
    ks = [esg_sharpness(e, 5, 1.0, 10.0) for e in range(5)]
    assert ks[0] == pytest.approx(1.0) and ks[-1] == pytest.approx(10.0)
    assert all(a < b for a, b in zip(ks, ks[1:], strict=False))


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly not installed")
def test_spikingjelly_twin_computes_the_same_network(digits: Data) -> None:
    torch.manual_seed(0)
    model = build_network(digits, SMALL, "binary")
    twin = SpikingJellyMLP(model)
    torch.testing.assert_close(twin(digits.x_test), model(digits.x_test))
    torch.testing.assert_close(twin(digits.x_test), model(digits.x_test))  # state is reset between calls


def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def test_mnist_idx_loader(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for stem, n, gz in (("train", 12, True), ("t10k", 5, False)):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n), gz)
    x, y = load_mnist_idx(tmp_path, "train")
    assert x.shape == (12, 784) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert y.shape == (12,) and y.dtype == np.int64
    assert load_mnist_idx(tmp_path, "test")[0].shape == (5, 784)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(InputError, match="t10k-labels"):
        load_mnist_idx(tmp_path, "test")
    with pytest.raises(InputError, match="does not exist"):
        load_mnist_idx(tmp_path / "missing", "train")
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(InputError, match="no train-images"):
        load_mnist_idx(tmp_path, "train")


def test_json_has_its_keys(tmp_path) -> None:
    out = tmp_path / "r.json"
    code = cli_main(["bench", "classify", "--dataset", "digits", "--method", "ratebp", "--T", "2",
                     "--epochs", "1", "--seeds", "2", "--hidden", "16", "--json", str(out),
                     "--tb", str(tmp_path / "tb")])
    assert code == 0
    record = json.loads(out.read_text())
    for key in ("accuracy", "accuracy_std", "epochs", "train_seconds", "peak_memory_mb",
                "bits_per_weight", "sops_per_sample"):
        assert isinstance(record[key], float | int), key
    assert 0 <= record["accuracy"] <= 1 and len(record["accuracy_per_seed"]) == 2
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("args", [["--method", "nope"], ["--T", "0"], ["--dataset", "mnist"]])
def test_bad_input_exits_2_with_one_line(args, capsys) -> None:
    assert cli_main(["bench", "classify", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
