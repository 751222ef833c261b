"""The per-view colour fit that says whether a capture's photos need a per-photo appearance code, and the real-photo
driver's table over several run folders."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import torch

from spiknerf.nerf.appearance import colour_fit, summary
from spiknerf.paths import ROOT


def test_a_photo_taken_brighter_and_warmer_is_fitted_back_exactly():
    rendering = torch.rand(32, 24, 3, generator=torch.Generator().manual_seed(0)) * 0.8
    gain, offset = torch.tensor([1.1, 0.95, 0.9]), torch.tensor([0.02, 0.0, 0.01])
    fit = colour_fit(rendering, rendering * gain + offset)
    assert torch.allclose(fit.gain, gain, atol=1e-5) and torch.allclose(fit.offset, offset, atol=1e-5)
    assert fit.psnr < 35 and fit.fitted_psnr > 100


def test_noise_no_colour_transform_explains_gains_little():
    g = torch.Generator().manual_seed(1)
    rendering = torch.rand(64, 64, 3, generator=g)
    photo = (rendering + 0.05 * torch.randn(64, 64, 3, generator=g)).clamp(0, 1)
    fit = colour_fit(rendering, photo)
    assert abs(fit.fitted_psnr - fit.psnr) < 0.1
    assert torch.allclose(fit.gain, torch.ones(3), atol=0.05)


def test_a_flat_rendering_keeps_gain_one_and_takes_the_photo_mean_as_offset():
    photo = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(2))
    fit = colour_fit(torch.full((8, 8, 3), 0.5), photo)
    assert torch.equal(fit.gain, torch.ones(3))
    assert torch.allclose(fit.offset, photo.reshape(-1, 3).mean(0) - 0.5, atol=1e-6)


def test_the_summary_spreads_are_over_the_views():
    rendering = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(3)) * 0.5
    fits = [colour_fit(rendering, rendering * g) for g in (0.9, 1.1)]
    s = summary(fits)
    assert s["views"] == 2 and math.isclose(s["gain_spread_pct"], 10, rel_tol=1e-4)
    assert math.isclose(s["gain_range_pct"], 20, rel_tol=1e-4) and s["offset_spread"] < 1e-5
    assert summary(fits[:1])["gain_spread_pct"] == 0.0


def _driver():
    spec = importlib.util.spec_from_file_location("bench_realphotos", ROOT / "scripts" / "bench_realphotos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished_run(path: Path, psnr: float, student: bool) -> None:
    path.mkdir(parents=True)
    block = {"psnr": psnr, "ssim": 0.7, "steps": 300, "train_seconds": 10.0, "samples_per_ray": 50.0,
             "seconds_per_view": 2.0}
    (path / "metrics.json").write_text(json.dumps({"teacher": block} | ({"student": block} if student else {})))
    (path / "config.json").write_text(json.dumps({"scene_kind": "unbounded"}))
    (path / "history.jsonl").write_text(json.dumps({"phase": "teacher", "eval_seconds": 1.0}) + "\n")
    (path / "bench.json").write_text(json.dumps({"seconds": 60.0, "command": f"spiknerf train --out {path}",
                                                 "code": "abc", "load": 1.5}))


def test_the_real_photo_table_holds_the_finished_runs_of_every_runs_folder(tmp_path):
    bench = _driver()
    _finished_run(tmp_path / "a" / "fox-steps300", 19.0, student=True)
    _finished_run(tmp_path / "b" / "cup-ff-stepsdefault", 25.0, student=True)
    _finished_run(tmp_path / "b" / "fox-pinhole-steps300-teacher", 18.0, student=False)
    (tmp_path / "b" / "cup-steps300").mkdir()  # unfinished: no bench.json, no row
    table = bench.table([tmp_path / "a", tmp_path / "b"], code="abc")
    assert [(r["scene"], r["teacher_psnr"], r["student_psnr"]) for r in table.rows] == [
        ("cup, forward-facing subset", 25.0, 25.0), ("fox, lens distortion handled", 19.0, 19.0),
        ("fox, lens distortion ignored", 18.0, None)]
    assert table.rows[0]["load"] == 1.5 and len(table.commands) == 3 and not table.notes
