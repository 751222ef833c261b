"""Data-parallel training: several gloo processes on loopback train what one process trains, and a job that loses a
process ends with one ``error:`` line instead of hanging.

Jobs run as subprocesses (``spiknerf train --nproc 2``, torch's own launcher) with
eager kernels and one thread each; every subprocess has a timeout, and every
collective the job's timeout (``SPIKNERF_DIST_TIMEOUT``), so that nothing here can hang; a process that dies
is noticed at once, as its connections close.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import eager_kernels, write_tiny_blender_scene

from spiknerf import distributed
from spiknerf.cli import main as cli
from spiknerf.nerf.checkpoint import latest_checkpoint, load_checkpoint

JOB_SECONDS = 240  # a job of two processes on a busy 2-core machine: torch's import dominates
ENV = {**os.environ, "SPIKNERF_COMPILE": "0", "OMP_NUM_THREADS": "1"}
STEPS = ["--steps", "3", "--eval-every", "2", "--eval-views", "2", "--video-frames", "2"]


def spiknerf(*args: str, timeout: float = JOB_SECONDS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spiknerf", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def final_state(run: Path, phase: str) -> dict:
    return load_checkpoint(latest_checkpoint(run, phase))


def assert_close_states(a: dict, b: dict) -> None:
    for part in ("model", "sampler"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.allclose(a[part][key].float(), b[part][key].float(), rtol=1e-4, atol=1e-5), (part, key)
    assert (a["step"], a["rays"], a["samples"]) == (b["step"], b["rays"], b["samples"])


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_tiny_blender_scene(tmp_path_factory.mktemp("scene") / "tiny")


@pytest.fixture(scope="module")
def two_process_run(scene, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Teacher and distilled student trained by a job of two processes."""
    out = tmp_path_factory.mktemp("ddp") / "run"
    job = spiknerf("train", "--data", str(scene), "--out", str(out), "--nproc", "2", "--checkpoint-steps", "2",
                   *STEPS)
    assert job.returncode == 0, job.stderr[-3000:]
    return out, job


def test_two_processes_train_the_weights_one_process_trains(scene, two_process_run, tmp_path, monkeypatch):
    eager_kernels(monkeypatch)
    one = tmp_path / "one"
    assert cli(["train", "--data", str(scene), "--out", str(one), *STEPS]) == 0
    two, job = two_process_run
    for phase in ("teacher", "student"):
        assert_close_states(final_state(one, phase), final_state(two, phase))
        assert torch.equal(final_state(one, phase)["sampler"]["binary"], final_state(two, phase)["sampler"]["binary"])
        assert f"{phase}: occupancy grid and weights identical on all 2 processes" in job.stdout
    history = [json.loads(line) for line in (two / "history.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (one / "history.jsonl").read_text().splitlines()]
    assert [(h["phase"], h["step"], h["rays"]) for h in history] == [(h["phase"], h["step"], h["rays"])
                                                                      for h in reference]
    assert [h["test_psnr"] for h in history] == pytest.approx([h["test_psnr"] for h in reference], abs=1e-3)
    metrics = json.loads((two / "metrics.json").read_text())
    expected = json.loads((one / "metrics.json").read_text())
    for phase in ("teacher", "student"):
        assert metrics[phase]["psnr"] == pytest.approx(expected[phase]["psnr"], abs=1e-3)
        assert len(metrics[phase]["per_view"]) == 2  # the ranks rendered a view each, rank 0 scored both


def test_only_the_first_process_writes(two_process_run):
    run, job = two_process_run
    assert len(list((run / "tb").iterdir())) == 1  # one TensorBoard event file
    assert job.stdout.count("mean ") == 1  # one table
    assert job.stderr.count("video: ") == 1 and job.stderr.count("run directory: ") == 1
    assert "(2 processes)" in job.stderr
    assert sorted(p.name for p in (run / "renders").iterdir()) == ["student-orbit.mp4"]
    import imageio.v3 as iio

    assert len(iio.imread(run / "renders" / "student-orbit.mp4")) == 2  # both ranks' frames


def test_a_run_resumes_with_another_number_of_processes(two_process_run, tmp_path, monkeypatch, capsys):
    """A job of two stopped after step 2 continues in one process to the weights it would have reached."""
    eager_kernels(monkeypatch)
    done, _ = two_process_run
    run = tmp_path / "run"
    run.mkdir()
    for item in done.iterdir():  # the run as a kill after the step-2 checkpoints would have left it
        if item.is_file():
            (run / item.name).write_bytes(item.read_bytes())
    (run / "checkpoints").mkdir()
    for phase in ("teacher", "student"):
        name = f"{phase}-0000002.safetensors"
        (run / "checkpoints" / name).write_bytes((done / "checkpoints" / name).read_bytes())
    (run / "metrics.json").unlink()
    assert cli(["train", "--out", str(run), "--resume"]) == 0
    assert "teacher: resumed from teacher-0000002.safetensors at step 2" in capsys.readouterr().err
    for phase in ("teacher", "student"):
        assert_close_states(final_state(done, phase), final_state(run, phase))


def worker_pids(launcher: int) -> dict[int, int]:
    """rank -> pid of the processes a launcher started (its children that carry a RANK)."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        rank = [v for v in environ if v.startswith(b"RANK=")]
        if ppid == launcher and rank:
            ranks[int(rank[0][5:])] = int(entry.name)
    return ranks


def test_a_killed_process_ends_the_job_with_one_error_line(scene, tmp_path):
    out = tmp_path / "run"
    job = subprocess.Popen([sys.executable, "-m", "spiknerf", "train", "--data", str(scene), "--out", str(out),
                            "--nproc", "2", "--steps", "100000", "--model", "teacher", "--eval-every", "1",
                            "--video-frames", "0"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + JOB_SECONDS
        while not (out / "history.jsonl").exists():  # both ranks are training
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start training"
            time.sleep(0.5)
        ranks = worker_pids(job.pid)
        assert sorted(ranks) == [0, 1]
        os.kill(ranks[1], signal.SIGKILL)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: rank 1 of 2 (pid {ranks[1]}) was killed by SIGKILL; the job stopped"], stderr[-2000:]
    assert "Traceback" not in stderr


def test_bad_input_is_reported_once_by_the_first_process(scene, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("a person's file")
    job = spiknerf("train", "--data", str(scene), "--out", str(out), "--nproc", "2", "--steps", "1")
    assert job.returncode == 2
    errors = [line for line in job.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "holds files that spiknerf did not write" in errors[0], job.stderr[-2000:]


def test_a_rank_that_refused_bad_input_is_the_cause_whatever_its_peers_did():
    failed = lambda code, when: SimpleNamespace(exitcode=code, timestamp=when)  # noqa: E731
    # the peer left behind died first, and by a signal: rank 0's refusal (already reported) is still the cause
    assert distributed.first_cause({0: failed(2, 10), 1: failed(-signal.SIGABRT, 5)})[0] == 0
    # otherwise the first failure that is not a consequence of another
    assert distributed.first_cause({0: failed(distributed.PEER_LOST, 1), 1: failed(-signal.SIGKILL, 5)})[0] == 1
    assert distributed.first_cause({0: failed(1, 7), 1: failed(-signal.SIGKILL, 5)})[0] == 1


def test_the_share_of_each_rank_covers_the_batch_once():
    for n in (0, 1, 5, 256, 1001):
        for size in (1, 2, 3, 8):
            parts = [distributed.share_of(n, r, size) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_a_single_process_changes_nothing():
    assert distributed.world() == 1 and distributed.is_first()
    fn = torch.sin
    assert distributed.sharded(fn) is fn
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    assert distributed.total(3, 4.5) == [3, 4.5]
    assert list(distributed.gathered(lambda x: x * 2, [1, 2, 3])) == [2, 4, 6]


def test_the_global_batch_option_scales_the_rays_of_a_step():
    from spiknerf.nerf.presets import PRESETS

    fast = PRESETS["fast"]
    for spr in (1.0, 8.0, 64.0, 1e4):
        assert fast.rays_per_batch(spr) == max(fast.min_rays, min(fast.max_rays, int(fast.target_samples / spr)))
        assert fast.rays_per_batch(spr, fast.target_samples) == fast.rays_per_batch(spr)
        assert fast.rays_per_batch(spr, 4 * fast.target_samples) == 4 * fast.rays_per_batch(spr)


def test_bench_seeds_spread_over_processes_make_one_table(tmp_path, monkeypatch):
    eager_kernels(monkeypatch)
    args = ["bench", "classify", "--dataset", "digits", "--method", "lif", "--T", "2", "--epochs", "1", "--seeds", "3",
            "--hidden", "16", "--threads", "1"]
    job = spiknerf(*args, "--nproc", "2", "--json", str(tmp_path / "two.json"), "--tb",
                   str(tmp_path / "tb2"))
    assert job.returncode == 0, job.stderr[-2000:]
    assert [line.split(":")[0].strip() for line in job.stdout.splitlines() if "seed" in line[:8]] == [
        "seed 0", "seed 1", "seed 2"]  # printed once, by rank 0, in seed order
    assert cli(args + ["--json", str(tmp_path / "one.json"), "--tb", str(tmp_path / "tb1")]) == 0
    two, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("two", "one"))
    assert two["accuracy_per_seed"] == one["accuracy_per_seed"]
    assert sorted(p.name for p in (tmp_path / "tb2").rglob("seed*")) == ["seed0", "seed1", "seed2"]
