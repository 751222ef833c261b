"""The options of ``spiknerf train``: listed by topic, the same names as ever, and config.json of every layout."""

from __future__ import annotations

import json
import re

import pytest

from spiknerf.cli import main as cli
from spiknerf.errors import InputError
from spiknerf.nerf.student import StudentSettings
from spiknerf.nerf.train_config import CONFIG_VERSION, TrainConfig, config_from_saved, config_json

# the config.json of a run saved before the layout had a version (as `spiknerf train --steps 300` wrote it)
UNVERSIONED = {
    "data": None, "out": "runs/old", "preset": "fast", "model": "both", "teacher": None, "steps": 300,
    "downscale": 1, "background": "white", "neuron": "binary", "learnable_threshold": False, "surrogate": "sigmoid",
    "T": 3, "reset": "soft", "threshold": 0.3, "delta_v": None, "color_skip": False, "kd": True, "kd_sigma": 0.5,
    "kd_color": 0.5, "device": "auto", "resume": False, "seed": 0, "dry_run": False, "checkpoint_seconds": 30.0,
    "checkpoint_steps": 0, "keep_checkpoints": 3, "eval_every": 500, "eval_views": 3, "video_frames": 8, "fps": 24,
}

# every option of `spiknerf train`, by topic: the command-line contract (DESIGN.md, README)
TOPICS = {
    "data": ["--data", "--downscale", "--background", "--scene-kind"],
    "models": ["--preset", "--model", "--teacher"],
    "student neuron": ["--neuron", "--T", "--threshold", "--delta-v", "--reset", "--surrogate",
                       "--learnable-threshold", "--color-hidden", "--no-color-skip"],
    "distillation": ["--no-kd", "--kd-sigma", "--kd-color"],
    "schedule and checkpoints": ["--batch", "--steps", "--seed", "--resume", "--checkpoint-seconds",
                                 "--checkpoint-steps", "--keep-checkpoints"],
    "evaluation and output": ["--out", "--dry-run", "--eval-every", "--eval-views", "--eval-pixels", "--video-frames",
                              "--fps"],
    "device": ["--device", "--nproc"],
    "web viewer": ["--viewer", "--viewer-host", "--viewer-port"],
}


def test_train_help_lists_every_option_under_its_topic(capsys):
    assert cli(["train", "--help"]) == 0
    text = capsys.readouterr().out
    sections = re.split(r"\n(?=\S[^\n]*:\n)", text.split("\noptions:\n", 1)[1])
    listed = {}
    for section in sections[1:]:
        title, body = section.split(":\n", 1)
        listed[title] = re.findall(r"^  (--[\w-]+)", body, flags=re.MULTILINE)
    assert listed == TOPICS


def test_a_config_round_trips_through_its_json():
    cfg = TrainConfig(preset="mlp", kd=False, steps=7, student=StudentSettings(neuron="binary", T=4, reset="hard"))
    saved = json.loads(json.dumps(config_json(cfg)))
    assert saved["version"] == CONFIG_VERSION and saved["student"]["T"] == 4 and "T" not in saved
    assert config_from_saved(saved, "config.json") == cfg


def test_an_unversioned_config_reads_as_it_was_saved():
    cfg = config_from_saved(UNVERSIONED, "config.json")
    assert cfg.student == StudentSettings(neuron="binary", T=3, threshold=0.3, reset="soft", surrogate="sigmoid",
                                          color_skip=False)
    assert (cfg.steps, cfg.video_frames, cfg.out) == (300, 8, "runs/old")


def test_a_config_from_before_the_reset_option_keeps_the_neuron_it_trained():
    old = {k: v for k, v in UNVERSIONED.items() if k not in ("reset", "threshold", "delta_v", "color_skip")}
    student = config_from_saved(old, "config.json").student
    assert (student.reset, student.threshold, student.delta_v) == ("hard", 0.5, 1.0)
    assert student.color_skip  # runs saved before --no-color-skip had the skip


@pytest.mark.parametrize(("values", "words"), [
    ({"version": CONFIG_VERSION + 1}, "version"),
    ({"version": str(CONFIG_VERSION)}, "version"),
    ({"version": True}, "version"),
    ({"student": {"T": 2}}, "'student'"),
    ({"version": CONFIG_VERSION, "T": 2}, "unknown key 'T'"),
    ({"version": CONFIG_VERSION, "student": {"T": "2"}}, "'T' must be an integer"),
    ({"version": CONFIG_VERSION, "student": {"T": 0}}, "--T must be in"),
    ({"version": CONFIG_VERSION, "student": [2]}, "student"),
    ({"version": CONFIG_VERSION, "preset": "paper", "student": {"color_skip": False}}, "--no-color-skip"),
    ({"version": CONFIG_VERSION, "preset": "paper", "student": {"color_hidden": 32}}, "--color-hidden"),
    ({"version": CONFIG_VERSION, "student": {"color_hidden": 0}}, "--color-hidden must be in"),
])
def test_a_config_outside_every_layout_is_refused_naming_the_file(values, words):
    with pytest.raises(InputError, match="^run/config.json: ") as info:
        config_from_saved(values, "run/config.json")
    assert words in str(info.value)


def test_a_forward_facing_capture_gets_its_own_default_budget_unless_steps_is_given(llff_scene, tmp_path, capsys):
    assert (TrainConfig().total_steps("teacher"), TrainConfig().total_steps("student")) == (4000, 2500)
    forward = (TrainConfig().total_steps("teacher", "forward"), TrainConfig().total_steps("student", "forward"))
    assert forward == (1500, 1000)
    assert TrainConfig(steps=7).total_steps("student", "forward") == 7
    assert TrainConfig(preset="mlp").total_steps("teacher", "forward") == 12000  # its own budget everywhere
    assert cli(["train", "--data", str(llff_scene()), "--dry-run"]) == 0
    assert "steps: teacher 1500, student 1000" in capsys.readouterr().out
