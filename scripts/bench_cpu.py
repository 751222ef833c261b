"""Training speed on a busy machine, and the default run end to end.

    python scripts/bench_cpu.py --repeats 3           # the busy-machine table of issue 28, lego 100 x 100
    python scripts/bench_cpu.py --only default-run    # the default run, timed by stage
    python scripts/bench_cpu.py --data DIR            # another scene

Contention: each cell trains the fast preset's teacher for ``--steps`` steps in
a fresh process (``spiknerf.results.contention``) under one threading setup
(spiknerf's automatic choice, torch's old default, ``OMP_WAIT_POLICY=PASSIVE``,
``OMP_NUM_THREADS=1``), alone, beside a busy loop or two at once, and reads its
training seconds from ``metrics.json``. The default run
(``spiknerf.results.default_run``): ``spiknerf train --data DIR --downscale 8``
with nothing else, wall seconds by stage. Run either on an otherwise quiet
machine: the load average when it starts is recorded. Writes
``docs/results/cpu_contention.json`` or ``docs/results/cpu_default_run.json``
and regenerates the docs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from spiknerf.paths import SHARED_DATA
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.contention import SETUPS, contention_table
from spiknerf.results.default_run import time_default_run
from spiknerf.results.docs import regenerate


def contention(args: argparse.Namespace, command: str) -> Results:
    train_args = ["--data", str(args.data), "--downscale", str(args.downscale), "--model", "teacher",
                  "--steps", str(args.steps or 150), "--eval-every", "100000", "--eval-views", "1",
                  "--video-frames", "0"]
    settings = {"train": "spiknerf train " + " ".join(train_args), "repeats": args.repeats}
    rows = contention_table(train_args, args.setups, args.repeats)
    return Results(table="cpu_contention", rows=rows, settings=settings, **provenance(command))


def default_run(args: argparse.Namespace, command: str) -> Results:
    train_args = ["--data", str(args.data), "--downscale", str(args.downscale)]
    train_args += ["--steps", str(args.steps)] if args.steps else []  # a shorter run, to check the driver works
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            rows.append(time_default_run(train_args, Path(tmp) / str(k)))
            print(f"default run {k + 1}/{args.repeats}: {rows[-1]['wall_s'] / 60:.1f} min, "
                  f"{rows[-1]['stages_s']}", file=sys.stderr)
    return Results(table="cpu_default_run", rows=rows, settings={"train": "spiknerf train " + " ".join(train_args),
                   "repeats": args.repeats, "environment": _threading_environment()},
                   **provenance(command))


def _threading_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("contention", "default-run"), default="contention")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nerf_synthetic" / "lego")
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="contention: teacher steps a training (default "
                        "150); default-run: steps of each model (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--setups", nargs="+", choices=tuple(SETUPS), default=tuple(SETUPS))
    args = parser.parse_args()
    command = "python scripts/bench_cpu.py " + " ".join(sys.argv[1:])
    results = contention(args, command) if args.only == "contention" else default_run(args, command)
    write_results(results)
    regenerate()


if __name__ == "__main__":
    main()
