"""Training speed on a busy machine, and the default run end to end.

    python scripts/bench_cpu.py --repeats 3           # the busy-machine table of issue 28, lego 100 x 100
    python scripts/bench_cpu.py --conditions idle --repeats 8   # the idle machine alone, more tries
    python scripts/bench_cpu.py --only default-run    # the default run, timed by stage
    python scripts/bench_cpu.py --data DIR            # another scene
    python scripts/bench_cpu.py --only step-cost --teacher RUN    # student step against teacher step
    python scripts/bench_cpu.py --only step-cost --teacher RUN --color-widths 32 48   # and narrower students
    python scripts/bench_cpu.py --only budgets --budgets 3500:2500 3000:2500   # quality for fewer steps

Contention: each cell trains the fast preset's teacher for ``--steps`` steps in
a fresh process (``spiknerf.results.contention``) under one threading setup
(``spiknerf.results.contention.SETUPS``: spiknerf's automatic choice, torch's
default, a fixed count as ``--threads N`` runs it, ``OMP_WAIT_POLICY=PASSIVE``,
``OMP_NUM_THREADS=1``), alone, beside a busy loop or two at once, and reads its
training seconds from ``metrics.json`` and its thread changes from its output. The default run
(``spiknerf.results.default_run``): ``spiknerf train --data DIR --downscale 8``
with nothing else, wall seconds by stage. Step cost (``spiknerf.results.step_cost``): the
steps of a finished teacher run's teacher and of a student distilled from it,
in alternating blocks in one process, wall and CPU milliseconds a step. Run
these on an otherwise quiet machine: the load average when they start is
recorded. Budgets (``spiknerf.results.budgets``): teacher and student quality
of the default run at other step counts, one thread a run (quality does not
depend on the load). Writes ``docs/results/cpu_contention.json``,
``cpu_idle.json``, ``cpu_default_run.json``, ``cpu_step_cost.json`` or ``cpu_budgets.json`` and
regenerates the docs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from spiknerf.paths import SHARED_DATA
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.budgets import budget_row
from spiknerf.results.contention import CONDITIONS, SETUPS, contention_table
from spiknerf.results.default_run import time_default_run
from spiknerf.results.docs import regenerate


def contention(args: argparse.Namespace, command: str) -> Results:
    train_args = ["--data", str(args.data), "--downscale", str(args.downscale), "--model", "teacher",
                  "--steps", str(args.steps or 150), "--eval-every", "100000", "--eval-views", "1",
                  "--video-frames", "0"]
    settings = {"train": "spiknerf train " + " ".join(train_args), "repeats": args.repeats}
    # the idle machine alone, with more tries, is a table of its own: the idle speeds the busy cells divide by
    table = "cpu_contention" if tuple(args.conditions) == CONDITIONS else "cpu_idle"
    if table == "cpu_idle" and tuple(args.conditions) != CONDITIONS[:1]:
        raise SystemExit("--conditions: all three, or the idle machine alone")
    rows = contention_table(train_args, args.setups, args.repeats, args.conditions)
    return Results(table=table, rows=rows, settings=settings, **provenance(command))


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


def step_cost(args: argparse.Namespace, command: str) -> Results:
    if args.teacher is None:
        raise SystemExit("--only step-cost needs --teacher RUN, a finished run of the fast preset's teacher")
    from spiknerf import threads

    threads.setup(args.threads)  # before torch loads
    from spiknerf import denormals
    from spiknerf.results.step_cost import step_costs

    with denormals.flushed():  # as the spiknerf command runs, from before torch's threads start
        rows, summary = step_costs(args.teacher, args.blocks, args.block_steps, tuple(args.color_widths))
    return Results(table="cpu_step_cost", rows=rows, summary=summary, settings={
        "teacher run": str(args.teacher), "threads": args.threads or "automatic", "blocks": args.blocks,
        "steps a block": args.block_steps, "colour widths": args.color_widths}, **provenance(command))


def budgets(args: argparse.Namespace, command: str) -> Results:
    scene_args = ["--data", str(args.data), "--downscale", str(args.downscale)]
    rows = []
    for budget in args.budgets:
        teacher_steps, student_steps = (int(n) for n in budget.split(":"))
        for seed in args.seeds:
            rows.append(budget_row(scene_args, teacher_steps, student_steps, args.runs, seed))
            print(f"budget {budget}, seed {seed}: teacher {rows[-1]['teacher_psnr']:.2f} dB, "
                  f"student {rows[-1]['student_psnr']:.2f} dB", file=sys.stderr)
    return Results(table="cpu_budgets", rows=rows, settings={
        "train": "spiknerf train " + " ".join(scene_args) + " --threads 1 --video-frames 0 (teacher, then student "
        "--teacher RUN)", "runs": str(args.runs)}, **provenance(command))


def _threading_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))}


MODES = {"contention": contention, "default-run": default_run, "step-cost": step_cost, "budgets": budgets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=tuple(MODES), default="contention")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nerf_synthetic" / "lego")
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="contention: teacher steps a training (default "
                        "150); default-run: steps of each model (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--setups", nargs="+", choices=tuple(SETUPS), default=tuple(SETUPS))
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=CONDITIONS,
                        help="contention: all three (cpu_contention.json), or 'idle' alone (cpu_idle.json)")
    parser.add_argument("--teacher", type=Path, help="step-cost: a finished run of the fast preset's teacher")
    parser.add_argument("--threads", type=int, default=0, help="step-cost: threads (0: spiknerf's automatic choice)")
    parser.add_argument("--blocks", type=int, default=6, help="step-cost: blocks of steps of each model")
    parser.add_argument("--block-steps", type=int, default=50, help="step-cost: steps a block")
    parser.add_argument("--color-widths", type=int, nargs="*", default=[], metavar="W", help="step-cost: also "
                        "students whose colour layers are W wide (--color-hidden), each in the same rounds")
    parser.add_argument("--budgets", nargs="+", default=["5000:3500"], help="budgets: TEACHER:STUDENT steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="budgets: the --seed of each candidate's "
                        "runs")
    parser.add_argument("--runs", type=Path, default=Path("runs/budgets"), help="budgets: where the runs go (a "
                        "candidate's finished runs there are read, not trained again)")
    args = parser.parse_args()
    command = "python scripts/bench_cpu.py " + " ".join(sys.argv[1:])
    results = MODES[args.only](args, command)
    write_results(results)
    regenerate()


if __name__ == "__main__":
    main()
