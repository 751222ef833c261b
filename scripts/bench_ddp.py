"""Data-parallel training: two gloo processes against one, and what a step of a job sends.

    python scripts/bench_ddp.py --part correctness   # quality: not disturbed by a busy machine
    python scripts/bench_ddp.py --part throughput    # timings: run it on a quiet machine

``correctness`` trains teacher and student on lego 100 x 100 (fast preset) once in
one process and once in a job of two (``spiknerf train --nproc 2``) with the
same global batch, and compares final PSNR, weights, occupancy grids and the
training-loss curves (docs/results/ddp_correctness.json, ddp_loss_curve.json).
``throughput`` times the teacher under each process x thread layout
(ddp_throughput.json), times what a step sends in a job of two gloo processes
(ddp_comm.json; the payload is read from the correctness run's models, so run
that part first) and derives the ring all-reduce time on 2 to 8 GPUs at assumed
link bandwidths (ddp_scaling.json). Each part regenerates the docs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from spiknerf.paths import SHARED_DATA
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.ddp import LAYOUTS, communication, correctness, predicted, throughput
from spiknerf.results.docs import regenerate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("correctness", "throughput"), required=True)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nerf_synthetic" / "lego")
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300, help="steps per model (correctness), of the teacher "
                                                               "(throughput)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each layout (throughput)")
    parser.add_argument("--layouts", nargs="+", choices=tuple(LAYOUTS), default=tuple(LAYOUTS))
    parser.add_argument("--scratch", type=Path, default=Path("runs/bench_ddp"), help="where the runs go")
    parser.add_argument("--reuse", action="store_true", help="read the correctness runs that finished in --scratch "
                                                             "instead of training them again")
    args = parser.parse_args()
    command = "python scripts/bench_ddp.py " + " ".join(sys.argv[1:])
    data = ["--data", str(args.data), "--downscale", str(args.downscale), "--preset", "fast"]
    correct_dir = args.scratch / "correctness"
    if args.part == "correctness":
        train_args = [*data, "--steps", str(args.steps), "--eval-every", "100", "--video-frames", "0"]
        rows, curves, commands = correctness(train_args, correct_dir, args.reuse)
        meta = provenance(command)
        settings = {"train": "spiknerf train " + " ".join(train_args)}
        write_results(Results(table="ddp_correctness", rows=rows, settings=settings, commands=commands, **meta))
        write_results(Results(table="ddp_loss_curve", rows=curves, settings=settings, commands=commands, **meta))
    else:
        train_args = [*data, "--model", "teacher", "--steps", str(args.steps), "--eval-every", "100000",
                      "--eval-views", "1", "--video-frames", "0"]
        with tempfile.TemporaryDirectory(dir=args.scratch) as runs:
            rows, commands = throughput(train_args, Path(runs), args.layouts, args.repeats)
        meta = provenance(command)
        settings = {"train": "spiknerf train " + " ".join(train_args), "repeats": args.repeats}
        write_results(Results(table="ddp_throughput", rows=rows, settings=settings, commands=commands, **meta))
        comm, probe = communication(correct_dir / "two-processes", repeats=20)
        write_results(Results(table="ddp_comm", rows=comm, commands=[probe], **meta))
        write_results(Results(table="ddp_scaling", rows=predicted(comm), **meta | {"source": "derived from "
                              "ddp_comm.json's bytes at assumed link bandwidths; not measured"}))
    regenerate()


if __name__ == "__main__":
    main()
