"""Evaluation during training renders a bounded grid of test pixels; the full test split is evaluated at the end."""

import json

import torch

from spiknerf.nerf.data.scene import Split
from spiknerf.nerf.evaluate import render_split
from spiknerf.nerf.sampler import OccupancyGridSampler
from spiknerf.nerf.train_config import EVAL_PIXELS


def split_of(n: int, h: int, w: int) -> Split:
    c2w = torch.eye(4).expand(n, 4, 4).clone()
    c2w[:, 2, 3] = 4.0
    return Split(torch.zeros(n, h, w, 3, dtype=torch.uint8), c2w, torch.tensor([[w, w, w / 2, h / 2]] * n).float(),
                 [f"v{i}" for i in range(n)])


def test_the_evaluation_grid_stays_within_its_pixel_budget():
    for n, h, w in [(3, 378, 504), (3, 1080, 1920), (1, 100, 100), (3, 2, 3)]:
        split = split_of(n, h, w)
        for budget in (EVAL_PIXELS, 1000, 1):
            stride = split.grid_stride(n, budget)
            rendered = n * len(range(0, h, stride)) * len(range(0, w, stride))
            assert rendered <= max(budget, n)  # a single pixel a view at the very least
            if stride > 1:  # and it is no coarser than it needs to be
                assert n * len(range(0, h, stride - 1)) * len(range(0, w, stride - 1)) > budget
    assert split_of(3, 378, 504).grid_stride(3, 0) == 1  # 0: every pixel


def test_render_split_renders_the_grid_of_every_stride_th_pixel():
    split = split_of(2, 12, 16)

    class Empty(torch.nn.Module):
        def density(self, x):
            return torch.zeros(x.shape[0])

        def forward(self, x, d):
            return torch.zeros(x.shape[0]), torch.zeros(x.shape[0], 3)

    sampler = OccupancyGridSampler(torch.tensor([-1.0, -1, -1, 1, 1, 1]), 0.1, 8.0, 0.1)
    images = render_split(Empty(), sampler, split, torch.ones(3), torch.device("cpu"), [0, 1], stride=3)
    assert [image.rgb.shape for image in images] == [(24, 3)] * 2  # rows 0, 3, 6, 9 by columns 0, 3, ..., 15
    assert split.image(0, torch.ones(3))[::3, ::3].shape == (4, 6, 3)


def test_a_run_logs_its_evaluation_grid_and_cost(blender_scene, tmp_path):
    from spiknerf.cli import main

    out = tmp_path / "run"
    data = blender_scene(splits={"train": 4, "test": 2}, size=(12, 16))
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "2", "--model", "teacher",
                 "--video-frames", "0", "--eval-every", "1", "--eval-pixels", "100"]) == 0
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [1, 2]
    assert all(entry["eval_stride"] > 1 and entry["eval_seconds"] > 0 for entry in lines)


def estimate_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("estimate:", "warning: this run"))]


def test_a_run_says_up_front_how_long_each_stage_will_take(blender_scene, tmp_path, capsys):
    from spiknerf.cli import main

    data = blender_scene(splits={"train": 4, "test": 2}, size=(12, 16))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "3",
                 "--video-frames", "2", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    [line] = estimate_lines(err)
    assert err.index(line) < err.index("run directory:")  # before the first step
    assert line.startswith("estimate: about ") and "on this machine with 1 thread(s): " in line
    for stage in ("teacher ", "(3 steps at ", "student ", "evaluation ", "video ", "(2 frames, "):
        assert stage in line


def test_a_long_run_is_warned_about_and_the_trial_steps_change_nothing(blender_scene, tmp_path, capsys,
                                                                       monkeypatch):
    from spiknerf.cli import main
    from spiknerf.nerf import estimate, train
    from spiknerf.nerf.checkpoint import load_checkpoint

    data = blender_scene(splits={"train": 4, "test": 2}, size=(12, 16))
    args = ["train", "--data", str(data), "--steps", "3", "--model", "teacher", "--video-frames", "0"]
    monkeypatch.setattr(estimate, "WARN_MINUTES", 0.0)
    assert main([*args, "--out", str(tmp_path / "warned")]) == 0
    lines = estimate_lines(capsys.readouterr().err)
    assert len(lines) == 2 and lines[1].startswith("warning: this run will take about ")
    assert "student" not in lines[0] and "video" not in lines[0]  # a teacher alone, no video
    monkeypatch.setattr(train, "announce_estimate", lambda *_: None)
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert estimate_lines(capsys.readouterr().err) == []
    weights = [load_checkpoint(tmp_path / run / "checkpoints" / "teacher-final.safetensors")["model"]
               for run in ("warned", "plain")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
