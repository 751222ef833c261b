"""Threading: what every command chooses, that it is set before torch loads, and that a run records it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spiknerf import threads
from spiknerf.cli import main, requested_threads
from spiknerf.errors import InputError


def test_automatic_threading_keeps_torchs_count_and_spin_and_adapts() -> None:
    choice, env = threads.plan(0, {}, torch_loaded=False)
    assert choice.threads is None and choice.adapts and "automatic" in choice.threads_why
    assert env == {}  # libgomp's own spin: the fastest idle


def test_a_fixed_count_spins_briefly_and_does_not_adapt() -> None:
    choice, env = threads.plan(2, {}, torch_loaded=False)
    assert (choice.threads, choice.adapts) == (2, False)
    assert env == {"OMP_NUM_THREADS": "2", "GOMP_SPINCOUNT": str(threads.SPIN_COUNT)}
    assert not threads.plan(0, {"OMP_NUM_THREADS": "2"}, torch_loaded=False)[0].adapts
    assert not threads.plan(0, {}, torch_loaded=True)[0].adapts  # an in-process caller keeps its bits


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
    the environment libgomp read held the brief spin of a fixed count."""
    code = ("import sys; from spiknerf import cli, threads; assert 'torch' not in sys.modules; "
            "threads.setup(2); import os, torch; print(os.environ['GOMP_SPINCOUNT'])")
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


@pytest.mark.parametrize(("current", "others", "expected"), [
    (2, 0.0, 2), (2, 0.5, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 2.0, 1),  # drop past half a core
    (1, 1.0, 1), (1, 0.3, 1), (1, 0.25, 2), (1, -0.1, 2),  # rise only once a core is all but free
    (4, 1.2, 3), (4, 2.6, 1), (1, 0.0, 4), (3, 1.0, 3),
])
def test_one_thread_fewer_for_each_core_others_keep_busy(current, others, expected) -> None:
    cores = 4 if expected > 2 or current > 2 else 2
    assert threads.next_threads(current, cores, others) == expected


class FakeMachine:
    """A clock and a /proc/stat whose other processes use ``others`` cores while this one uses ``own``."""

    def __init__(self) -> None:
        self.now, self.busy, self.own = 0.0, 0.0, 0.0
        self.others, self.mine = 0.0, 2.0
        self.applied: list[int] = []
        self.said: list[str] = []

    def wait(self, seconds: float) -> None:
        self.now += seconds
        self.own += self.mine * seconds
        self.busy += (self.mine + self.others) * seconds

    def watch(self) -> threads.LoadWatch:
        return threads.LoadWatch(2, look=lambda: (self.busy, self.own), clock=lambda: self.now,
                                 apply=self.applied.append, say=self.said.append)


def test_the_watch_drops_a_thread_while_another_job_runs_and_takes_it_back_after() -> None:
    machine = FakeMachine()
    watch = machine.watch()
    machine.wait(0.5)
    watch.tick()  # too soon to look
    machine.others = 1.0
    machine.wait(0.6)
    watch.tick()
    assert machine.applied == [1] and watch.current == 1 and "0.5 of 2 cores" in machine.said[0]
    machine.wait(1.0)
    watch.tick()
    assert machine.applied == [1]  # the other job is still there
    machine.others = 0.0
    machine.wait(1.0)
    watch.tick()
    assert machine.applied == [1, 2] and watch.current == 2
    assert watch.counts == pytest.approx({2: 1.1, 1: 2.0})


def test_the_watch_keeps_its_count_where_the_kernel_says_nothing() -> None:
    applied = []
    watch = threads.LoadWatch(2, look=lambda: None, clock=iter(range(100)).__next__, apply=applied.append)
    for _ in range(5):
        watch.tick()
    assert applied == [] and watch.current == 2


def test_cpu_seconds_reads_the_machines_busy_time_and_this_process() -> None:
    seen = threads.cpu_seconds()
    if seen is None:
        pytest.skip("no /proc/stat on this system")
    busy, own = seen
    sum(range(2_000_000))
    later = threads.cpu_seconds()
    assert later is not None and later[0] >= busy and later[1] > own


def test_cpu_seconds_counts_the_jobs_child_processes_as_its_own() -> None:
    # TorchInductor's compile workers are child processes: counted as others, they dropped a thread on an idle machine
    if threads.cpu_seconds() is None or not any(Path("/proc/self/task").glob("*/children")):
        pytest.skip("no /proc/stat or no /proc/PID/task/TID/children on this system")
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.6: pass\ntime.sleep(30)"])
    try:
        before = threads.cpu_seconds()[1]
        time.sleep(1.0)  # the child burns 0.6 s of CPU, then sleeps, still running
        during = threads.cpu_seconds()[1]
    finally:
        child.kill()
        child.wait()
    assert during - before >= 0.3  # this process itself slept


def test_only_an_automatic_run_adapts_and_only_from_the_jobs_own_thread(monkeypatch) -> None:
    import threading

    import torch

    automatic = threads.Threading(None, "automatic", "libgomp's default spin", "", adapts=True)
    before = torch.get_num_threads()
    with threads.held(automatic) as held:
        if held.threads > 1:
            assert threads._watch is not None
            ticks = []
            monkeypatch.setattr(threads._watch, "tick", lambda: ticks.append(1))
            threads.adapt()
            other = threading.Thread(target=threads.adapt)
            other.start()
            other.join()
            assert ticks == [1]
    assert threads._watch is None and torch.get_num_threads() == before
    with threads.held(threads.Threading(2, "--threads", "", "")):
        assert threads._watch is None


def test_a_training_step_and_a_rendered_chunk_look_at_the_load_before_they_compute(blender_scene, tmp_path,
                                                                                     monkeypatch) -> None:
    """The first look comes before the first step (and the first chunk of a render): a thread dropped then is
    dropped before the kernels compile, not after (they would compile again for the new count)."""
    from spiknerf.nerf import render, step

    order: list[str] = []
    monkeypatch.setattr(step.threads, "adapt", lambda: order.append("look"))
    for module, what in ((step, "step"), (render, "chunk")):
        original = module.render_rays
        monkeypatch.setattr(module, "render_rays",
                            lambda *a, _f=original, _w=what, **k: (order.append(_w), _f(*a, **k))[1])
    data = blender_scene(splits={"train": 3, "test": 1}, size=(8, 8))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2", "--model",
                 "teacher", "--video-frames", "0", "--threads", "1"]) == 0
    work = [i for i, what in enumerate(order) if what != "look"]
    assert order[0] == "look" and {order[i] for i in work} == {"step", "chunk"}
    assert all(i > 0 and order[i - 1] == "look" for i in work)


def test_the_current_count_follows_the_watch() -> None:
    watch = threads.LoadWatch(2, look=lambda: (0.0, 0.0), clock=lambda: 0.0, apply=lambda n: None,
                              say=lambda text: None)
    choice = threads.Threading(2, "automatic", "", "", adapts=True)
    with threads.held(choice):
        saved, threads._watch = threads._watch, watch
        try:
            watch.current = 1
            assert threads.current() == 1
        finally:
            threads._watch = saved
    assert threads.current() == threads.chosen().threads
