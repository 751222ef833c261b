"""How fast the web viewer shows a model, and what ``--viewer`` costs training.

    python scripts/bench_viewer.py --run runs/viewer-lego                 # both tables
    python scripts/bench_viewer.py --run runs/viewer-lego --only speed    # frames a second only
    python scripts/bench_viewer.py --only training --repeats 3            # what --viewer costs training

``viewer_speed``: for the teacher and the folded student of ``--run``, frames a
second while the camera orbits (each frame sized as nerfview sizes a moving
camera's frames) and the seconds to a full-resolution frame once it stops
(:func:`spiknerf.viewer.timing.frame_rates`), at ``--threads`` torch threads.

``viewer_training``: the teacher of the built-in scene trained for ``--steps``
steps three times, each in a fresh process with one thread: without the
viewer, with ``--viewer`` and no browser, and with ``--viewer`` and headless
Chromium showing it; steps a second of wall-clock time from the run's start to
its final evaluation (the viewer's turns between steps count; the scene's
loading does not), and the CPU seconds the training process spent until then
(Chromium's own are not counted). The runs alternate ``--repeats`` times, so
that load from other work hits all alike; on a loaded machine the CPU seconds
are the steadier measure.

Writes ``docs/results/viewer_speed.json`` and ``docs/results/viewer_training.json``
and regenerates the docs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from spiknerf import denormals
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate

SETUPS = ("without --viewer", "--viewer, no browser", "--viewer, a browser watching")


def speed(run: Path, seconds: float, threads: int) -> list[dict]:
    from spiknerf.viewer import app, models
    from spiknerf.viewer.timing import frame_rates

    # as `spiknerf view` serves: denormals flushed, from before torch's threads and the server's start
    with denormals.flushed():
        torch.set_num_threads(threads)
        shown = models.open_run(run, torch.device("cpu"))
        server = app.start_server("127.0.0.1", 0)
        viewer = app.SpikingViewer(server, shown, Path(tempfile.mkdtemp()))
        try:
            return [frame_rates(viewer, name, moving_seconds=seconds) | {"threads": threads}
                    for name in shown.names]
        finally:
            app.stop_server(server, viewer)


def train_once(setup: str, steps: int, out: Path) -> tuple[float, float]:
    """Train the built-in scene's teacher in a fresh process, stopped when its final evaluation begins. Its steps
    a second of wall-clock time from the run's start to that evaluation (so that the viewer's turns between steps
    count), and the CPU seconds the process spent until then (loading and compiling included)."""
    from spiknerf.viewer.browser import Browser, find_chromium

    args = [sys.executable, "-m", "spiknerf.cli", "train", "--model", "teacher", "--steps", str(steps), "--out",
            str(out), "--video-frames", "0", "--eval-every", str(10 * steps), "--viewer-port", "0"]
    if setup != SETUPS[0]:
        args.append("--viewer")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    browser, began, ended = None, None, None
    try:
        for line in process.stderr:
            found = re.search(r"viewer: (http://\S+)", line)
            if found and setup == SETUPS[2]:
                browser = Browser(find_chromium(), 800, 520)
                browser.open(found.group(1))
            if line.startswith("run directory:"):
                began = time.perf_counter()
            if line.startswith("evaluating"):
                ended = time.perf_counter()
                process.terminate()  # what is measured is over; the evaluation is the same in every setup
                break
    finally:
        if browser is not None:
            browser.close()
        process.stderr.close()
        _, status, usage = os.wait4(process.pid, 0)  # the child's own CPU time, which Popen.wait does not give
        process.returncode = os.waitstatus_to_exitcode(status)
    if began is None or ended is None:
        raise SystemExit(f"{setup}: training failed (exit code {process.returncode})")
    return steps / (ended - began), usage.ru_utime + usage.ru_stime


def training(steps: int, repeats: int) -> list[dict]:
    rates: dict[str, list[float]] = {s: [] for s in SETUPS}
    cpu: dict[str, list[float]] = {s: [] for s in SETUPS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for k, setup in enumerate(SETUPS):
                rate, seconds = train_once(setup, steps, Path(tmp) / f"{r}-{k}")
                rates[setup].append(rate)
                cpu[setup].append(seconds)
                print(f"{setup}: {rate:.2f} steps/s, {seconds:.1f} CPU s", file=sys.stderr)
    base, base_cpu = statistics.median(rates[SETUPS[0]]), statistics.median(cpu[SETUPS[0]])
    return [{"setup": s, "steps_per_second": statistics.median(rates[s]), "runs": rates[s],
             "slowdown_pct": 100 * (1 - statistics.median(rates[s]) / base), "cpu_seconds": statistics.median(cpu[s]),
             "cpu_runs": cpu[s], "cpu_extra_pct": 100 * (statistics.median(cpu[s]) / base_cpu - 1)} for s in SETUPS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained run (teacher and student), for the speed table")
    parser.add_argument("--only", choices=("speed", "training"))
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of moving camera per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    command = "python scripts/bench_viewer.py " + " ".join(sys.argv[1:])
    if args.only != "training" and args.run is None:
        parser.error("--run RUN is needed for the speed table (or --only training)")
    if args.only in (None, "speed"):
        rows = speed(args.run, args.seconds, args.threads)
        write_results(Results(table="viewer_speed", rows=rows, settings={"run": str(args.run),
                                                                         "seconds": args.seconds},
                              **provenance(command)))
    if args.only in (None, "training"):
        rows = training(args.steps, args.repeats)
        write_results(Results(table="viewer_training", rows=rows, settings={"steps": args.steps,
                                                                            "repeats": args.repeats},
                              **provenance(command, conditions="one thread per training process")))
    regenerate()


if __name__ == "__main__":
    main()
