"""The Spik-NeRF bench's report: the targets line reads the right rows, with and without the spike-only rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_spiknerf.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_spiknerf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_row(label: str, psnr: float, step_ms: float) -> dict:
    return {"model": label, "psnr": psnr, "ssim": 0.9, "macs": 1.0, "sops": 1.0, "energy_sample": 1.0,
            "energy_ray": 1.0, "ratio_sample": 1.0, "ratio_ray": 1.0, "paper_fold_ratio": None,
            "training_form_ratio": None, "samples_per_ray": 8.0, "train_s": 1.0, "step_ms": step_ms,
            "us_per_sample": step_ms, "firing": {"trunk.neuron": 0.5}, "steps": 10}


def scene(psnrs_by_seed: dict[int, list[float]]) -> tuple[list[dict], dict]:
    labels = ["ANN", "binary", "ternary", "ternary + KD", "binary spike-only", "ternary spike-only"]
    first = next(iter(psnrs_by_seed.values()))
    step_ms = [10.0, 14.0, 15.0, 16.0, 30.0, 31.0]  # the spike-only rows must not enter the step ratio
    rows = [fake_row(label, p, ms) for label, p, ms in zip(labels, first, step_ms, strict=False)]
    return rows, {"wall_default_run": 60.0, "commands": ["spiknerf train"], "psnr_by_seed": psnrs_by_seed}


def test_targets_read_the_paper_rows(bench):
    text = bench.report({"builtin": scene({0: [33.0, 32.0, 32.5, 32.9]})}, None, "cmd", "abc1234")
    assert "-0.10 dB (student minus teacher); ternary above binary by +0.50 dB" in text
    assert "step time 1.60x" in text and "With spike-only colour" not in text


def test_targets_add_the_spike_only_lead_as_a_mean_over_seeds(bench):
    psnrs = {0: [33.0, 32.0, 32.5, 32.9, 31.0, 32.0], 1: [33.2, 32.2, 32.5, 32.9, 31.2, 32.4]}
    text = bench.report({"builtin": scene(psnrs)}, None, "cmd", "abc1234")
    assert "ternary above binary by +0.40 dB" in text  # (32.5 - 32.1), the default rows
    assert "step time 1.60x" in text  # the KD student's, not the last row's
    assert "With spike-only colour, ternary above binary by +1.10 dB; 2.00 and 0.90 dB behind" in text


def test_the_mlp_preset_has_its_own_section_and_header(bench):
    text = bench.report({"lego-100": scene({0: [26.0, 24.0, 25.2, 25.8]})}, None, "cmd", "abc1234", "mlp")
    assert text.startswith(bench.SECTIONS["mlp"]) and bench.SECTIONS["mlp"] != bench.SECTIONS["fast"]
    assert "4 x 128" in text and "hash features" not in text
    assert "ternary above binary by +1.20 dB" in text


def test_spike_only_rows_are_refused_for_the_mlp_preset(bench, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["bench_spiknerf.py", "--preset", "mlp", "--spike-only"])
    with pytest.raises(SystemExit) as exit_:
        bench.main()
    assert exit_.value.code == 2 and "--spike-only applies to the fast preset" in capsys.readouterr().err
