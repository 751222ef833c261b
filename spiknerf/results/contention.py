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
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# a thread a CPU this process may run on: the fixed-count setups pin that many, so that they do not adapt
_CORES = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# what each threading setup adds to the environment of a training process: spiknerf's own choice (spiknerf.threads:
# one thread a core, libgomp's spin, fewer threads while others keep cores busy), what torch does (a fixed count and
# libgomp's default spin, which GOMP_SPINCOUNT=300000 restates), spiknerf's fixed count (``--threads N``: a short
# spin), and the usual remedies
SETUPS: dict[str, dict[str, str]] = {
    "spiknerf automatic": {},
    "torch default (GOMP_SPINCOUNT=300000)": {"OMP_NUM_THREADS": _CORES, "GOMP_SPINCOUNT": "300000"},
    "fixed count, GOMP_SPINCOUNT=1000 (--threads N)": {"OMP_NUM_THREADS": _CORES},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_NUM_THREADS": _CORES, "OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}
CONDITIONS: tuple[str, ...] = ("idle", "one busy loop beside it", "two trainings at once")

_BUSY_LOOP = "while True: pass"


def _environment(setup: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    return env | SETUPS[setup]


def _start_training(train_args: Sequence[str], out: Path, setup: str) -> subprocess.Popen:
    with open(_log(out), "w") as log:  # the child holds its own descriptor
        return subprocess.Popen([sys.executable, "-m", "spiknerf.cli", "train", *train_args, "--out", str(out)],
                                env=_environment(setup), stdout=subprocess.DEVNULL, stderr=log)


def _log(out: Path) -> Path:
    return out.with_name(out.name + ".log")


def _train_seconds(process: subprocess.Popen, out: Path) -> float:
    if process.wait() != 0:
        raise RuntimeError(f"training into {out} failed with exit code {process.returncode}")
    return float(json.loads((out / "metrics.json").read_text())["teacher"]["train_seconds"])


def thread_changes(stderr: str) -> int:
    """How often an automatic run changed its thread count (:mod:`spiknerf.threads` says each change)."""
    return len(re.findall(r"^threads: \d+ -> \d+ ", stderr, flags=re.MULTILINE))


def measure(train_args: Sequence[str], setup: str, condition: str, scratch: Path) -> list[tuple[float, int]]:
    """Training seconds and thread changes of each training process of one (setup, condition) cell."""
    busy = None
    if condition == CONDITIONS[1]:
        busy = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP])
    try:
        count = 2 if condition == CONDITIONS[2] else 1
        outs = [scratch / f"{len(list(scratch.iterdir()))}-{k}" for k in range(count)]
        processes = [_start_training(train_args, out, setup) for out in outs]
        seconds = [_train_seconds(p, out) for p, out in zip(processes, outs, strict=True)]
        return [(s, thread_changes(_log(out).read_text(errors="replace"))) for s, out in zip(seconds, outs,
                                                                                              strict=True)]
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def contention_table(train_args: Sequence[str], setups: Sequence[str], repeats: int,
                     conditions: Sequence[str] = CONDITIONS) -> list[dict]:
    """One row a (condition, setup): the upper median of the training seconds of its processes over ``repeats``
    tries (with two trainings at once and one try, the slower), its ratio to the same setup on the idle machine,
    and to the fastest setup on the idle machine. ``conditions`` must include the idle machine."""
    if CONDITIONS[0] not in conditions:
        raise ValueError(f"the conditions must include '{CONDITIONS[0]}': the ratios are to it")
    tries: dict[tuple[str, str], list[float]] = {(c, s): [] for c in conditions for s in setups}
    changes: dict[tuple[str, str], list[int]] = {(c, s): [] for c in conditions for s in setups}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for condition in conditions:
            for _ in range(repeats):  # the setups take turns, so that a slow spell of the machine hits them all
                for setup in setups:
                    measured = measure(train_args, setup, condition, scratch)
                    tries[condition, setup] += [seconds for seconds, _ in measured]
                    changes[condition, setup] += [n for _, n in measured]
                    print(f"{time.perf_counter() - start:6.0f} s {condition:>24} | {setup:>46} | "
                          + ", ".join(f"{s:.1f} ({n} thread changes)" for s, n in measured), file=sys.stderr)
    rows = [{"condition": c, "setup": s, "seconds": sorted(t)[len(t) // 2], "tries": t,
             "thread_changes": changes[c, s]} for (c, s), t in tries.items()]
    idle = {row["setup"]: row["seconds"] for row in rows if row["condition"] == CONDITIONS[0]}
    for row in rows:
        row["x_idle"] = row["seconds"] / idle[row["setup"]]
        row["x_best_idle"] = row["seconds"] / min(idle.values())
    return rows
