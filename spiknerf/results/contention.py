"""Training speed on a busy machine: the same short training alone, beside a busy loop, or twice at once.

OpenMP threads that spin while they wait for a sibling lose their time slices to any other process on the
machine, and every parallel region then waits for the slowest thread. How much a torch process suffers depends
on its threading setup (thread count, ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``), which only takes effect in a fresh
process: so each training here runs as its own ``spiknerf train`` process, and its training seconds are read from
its ``metrics.json`` (loading, evaluation and video are not counted; the first steps' compiling is).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# what each threading setup adds to the environment of a training process: spiknerf's own choice
# (spiknerf.threads), what torch did before it (libgomp's default spin, which GOMP_SPINCOUNT=300000 restates), and
# the two usual remedies
SETUPS: dict[str, dict[str, str]] = {
    "spiknerf automatic": {},
    "torch default (GOMP_SPINCOUNT=300000)": {"GOMP_SPINCOUNT": "300000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},  # a spin ten times spiknerf's: where the trade-off lies
}
CONDITIONS: tuple[str, ...] = ("idle", "one busy loop beside it", "two trainings at once")

_BUSY_LOOP = "while True: pass"


def _environment(setup: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    return env | SETUPS[setup]


def _start_training(train_args: Sequence[str], out: Path, setup: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spiknerf.cli", "train", *train_args, "--out", str(out)],
                            env=_environment(setup), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _train_seconds(process: subprocess.Popen, out: Path) -> float:
    if process.wait() != 0:
        raise RuntimeError(f"training into {out} failed with exit code {process.returncode}")
    return float(json.loads((out / "metrics.json").read_text())["teacher"]["train_seconds"])


def measure(train_args: Sequence[str], setup: str, condition: str, scratch: Path) -> list[float]:
    """Training seconds of each training process of one (setup, condition) cell."""
    busy = None
    if condition == CONDITIONS[1]:
        busy = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP])
    try:
        count = 2 if condition == CONDITIONS[2] else 1
        outs = [scratch / f"{len(list(scratch.iterdir()))}-{k}" for k in range(count)]
        processes = [_start_training(train_args, out, setup) for out in outs]
        return [_train_seconds(p, out) for p, out in zip(processes, outs, strict=True)]
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def contention_table(train_args: Sequence[str], setups: Sequence[str], repeats: int) -> list[dict]:
    """One row a (condition, setup): the upper median of the training seconds of its processes over ``repeats``
    tries (with two trainings at once and one try, the slower), its ratio to the same setup on the idle machine,
    and to the fastest setup on the idle machine."""
    tries: dict[tuple[str, str], list[float]] = {(c, s): [] for c in CONDITIONS for s in setups}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for condition in CONDITIONS:
            for _ in range(repeats):  # the setups take turns, so that a slow spell of the machine hits them all
                for setup in setups:
                    seconds = measure(train_args, setup, condition, scratch)
                    tries[condition, setup] += seconds
                    print(f"{time.perf_counter() - start:6.0f} s {condition:>24} | {setup:>38} | "
                          + ", ".join(f"{s:.1f}" for s in seconds), file=sys.stderr)
    rows = [{"condition": c, "setup": s, "seconds": sorted(t)[len(t) // 2], "tries": t} for (c, s), t in tries.items()]
    idle = {row["setup"]: row["seconds"] for row in rows if row["condition"] == CONDITIONS[0]}
    for row in rows:
        row["x_idle"] = row["seconds"] / idle[row["setup"]]
        row["x_best_idle"] = row["seconds"] / min(idle.values())
    return rows
