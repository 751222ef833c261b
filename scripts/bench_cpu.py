"""Training speed on a busy machine: idle, beside a busy loop, and two trainings at once.

    python scripts/bench_cpu.py                 # the table of issue 28, lego 100 x 100
    python scripts/bench_cpu.py --data DIR      # another scene

Each cell trains the fast preset's teacher for ``--steps`` steps in a fresh
process (``spiknerf.results.contention``) under one threading setup (default,
``OMP_WAIT_POLICY=PASSIVE``, ``OMP_NUM_THREADS=1``), and reads its training
seconds from ``metrics.json``. Run it on an otherwise quiet machine: the load
average when it starts is recorded. Writes ``docs/results/cpu_contention.json``
and regenerates the docs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spiknerf.paths import SHARED_DATA
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.contention import SETUPS, contention_table
from spiknerf.results.docs import regenerate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nerf_synthetic" / "lego")
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--setups", nargs="+", choices=tuple(SETUPS), default=tuple(SETUPS))
    args = parser.parse_args()
    command = "python scripts/bench_cpu.py " + " ".join(sys.argv[1:])
    train_args = ["--data", str(args.data), "--downscale", str(args.downscale), "--model", "teacher",
                  "--steps", str(args.steps), "--eval-every", "100000", "--eval-views", "1", "--video-frames", "0"]
    settings = {"train": "spiknerf train " + " ".join(train_args), "repeats": args.repeats}
    meta = provenance(command)  # the load average before our own processes start
    rows = contention_table(train_args, args.setups, args.repeats)
    write_results(Results(table="cpu_contention", rows=rows, settings=settings, **meta))
    regenerate()


if __name__ == "__main__":
    main()
