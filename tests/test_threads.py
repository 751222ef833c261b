"""Threading: what every command chooses, that it is set before torch loads, and that a run records it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spiknerf import threads
from spiknerf.cli import main, requested_threads
from spiknerf.errors import InputError


def test_automatic_threading_keeps_torchs_count_and_spins_briefly() -> None:
    choice, env = threads.plan(0, {}, torch_loaded=False)
    assert choice.threads is None and "torch's default" in choice.threads_why
    assert env == {"GOMP_SPINCOUNT": str(threads.SPIN_COUNT)}


def test_the_users_settings_win_and_are_named() -> None:
    choice, env = threads.plan(0, {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}, torch_loaded=False)
    assert (choice.threads, choice.threads_why, choice.wait) == (3, "OMP_NUM_THREADS", "OMP_WAIT_POLICY=ACTIVE")
    assert env == {"OMP_NUM_THREADS": "3"}
    choice, env = threads.plan(2, {"OMP_NUM_THREADS": "3"}, torch_loaded=False)
    assert (choice.threads, choice.threads_why, env["OMP_NUM_THREADS"]) == (2, "--threads", "2")


def test_one_thread_needs_no_wait_policy_and_a_loaded_torch_cannot_take_one() -> None:
    assert threads.plan(1, {}, torch_loaded=False)[1] == {"OMP_NUM_THREADS": "1"}
    choice, env = threads.plan(0, {}, torch_loaded=True)
    assert env == {} and "before" in choice.wait_why


def test_a_negative_thread_count_is_refused() -> None:
    with pytest.raises(InputError, match="--threads"):
        threads.plan(-1, {}, torch_loaded=False)


def test_the_early_look_finds_threads_among_a_commands_options() -> None:
    assert requested_threads(["--data", "x", "--threads", "3"]) == 3
    assert requested_threads(["--threads=2"]) == 2
    assert requested_threads(["--steps", "5"]) == 0
    assert requested_threads(["--threads", "many"]) == 0  # the command's own parser reports it


def test_the_command_line_sets_the_wait_before_torch_loads() -> None:
    """In a fresh process, importing the command line loads no torch, and once the job has imported torch
    the environment libgomp read held the brief spin."""
    code = ("import sys; from spiknerf import cli, threads; assert 'torch' not in sys.modules; "
            "threads.setup(0); import os, torch; print(os.environ['GOMP_SPINCOUNT'])")
    env = {k: v for k, v in os.environ.items() if k not in (*threads.WAIT_VARIABLES, "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(threads.SPIN_COUNT)


def test_every_command_takes_threads() -> None:
    from spiknerf.cli import COMMANDS

    for path in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "spiknerf.cli", *path, "--help"], capture_output=True,
                             text=True)
        if out.returncode == 2 and "extra" in out.stderr:  # an optional extra that is not installed
            continue
        assert out.returncode == 0 and "--threads" in out.stdout, path


def test_a_run_prints_and_records_its_threading(blender_scene, tmp_path, capsys) -> None:
    import torch

    before = torch.get_num_threads()
    out = tmp_path / "run"
    data = blender_scene(splits={"train": 3, "test": 1}, size=(8, 8))
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "1", "--model", "teacher",
                 "--video-frames", "0", "--threads", "1"]) == 0
    assert "threads: 1 (--threads)" in capsys.readouterr().err
    recorded = json.loads((out / "config.json").read_text())["threading"]
    assert recorded["threads"] == 1 and recorded["threads_why"] == "--threads"
    assert torch.get_num_threads() == before  # an in-process caller keeps its own count
