"""The Spik-NeRF table reproduced: ANN teacher, binary SNN, ternary SNN and ternary SNN + KD, equal training budgets.

Per scene (lego at 100 x 100 from ../shared, and the built-in scene):

1. the default job, ``spiknerf train`` (teacher, then the distilled ternary student, evaluation and the video),
   timed end to end: its teacher is the ANN row and its student the ternary + KD row;
2. ``--model student --no-kd`` with binary and with ternary neurons, the same number of steps;
3. with ``--spike-only``, the same two students with ``--no-color-skip``: their colour branch reads the trunk's
   spikes and the view direction, not the encoding again, so that colour as well as density passes through spikes;
4. with ``--color-widths``, distilled ternary students of the default run's teacher whose spiking colour layers
   have those widths (``--color-hidden``; the default is 64): what a narrower colour branch saves in energy per
   sample, and what it costs in PSNR.

Then the ``paper`` preset (the NeRF MLP of the paper, where spike-driven layers dominate) on lego for the energy
per sample point. Each scene's rows go to ``docs/results/spiknerf_<preset>_<scene>.json``, the fast preset's
default runs (seed 0) also to ``spiknerf_default_run.json``; then the docs are regenerated:

    python scripts/bench_spiknerf.py
    python scripts/bench_spiknerf.py --seeds 0 1 2                 # the PSNRs over three seeds
    python scripts/bench_spiknerf.py --only builtin --steps 1000   # a quicker look
    python scripts/bench_spiknerf.py --reuse --spike-only          # add the spike-only rows to a finished table
    python scripts/bench_spiknerf.py --reuse --color-widths 48 32  # and narrower distilled students
    python scripts/bench_spiknerf.py --preset mlp --only lego-100  # the same rows with the mlp preset

``--preset mlp`` (a small NeRF MLP on the occupancy grid, every hidden layer of the student spiking, as in the
paper) writes its own tables, without the paper preset's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from spiknerf.paths import LEGO
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.reports import (
    BINARY,
    DISTILLED,
    SPIKE_ONLY_BINARY,
    SPIKE_ONLY_TERNARY,
    TEACHER,
    TERNARY,
    add_seeds,
    default_run_row,
    distilled_width_label,
    spiknerf_row,
    spiknerf_summary,
)
from spiknerf.results.store import code_version

PRESETS = ("fast", "mlp")
SCENES: dict[str, list[str]] = {"lego-100": ["--data", str(LEGO), "--downscale", "8"], "builtin": []}
TABLE_NAMES = {"lego-100": "lego100", "builtin": "builtin"}
SCENE_LABELS = {"lego-100": "lego 100 x 100", "builtin": "built-in"}
CONDITIONS = "each run in a fresh process, one after the other"


def spiknerf(args: list[str], out: Path, reuse: bool) -> float:
    """Run ``spiknerf ... --out OUT`` in a fresh process; returns its wall seconds.

    With ``reuse`` a finished run in ``out`` is kept, and its wall time read from
    its files: config.json is written first, the video last (metrics.json, when
    there is no video; a later ``spiknerf eval`` rewrites metrics.json, not the video).
    """
    if reuse and (out / "metrics.json").exists():
        last = max((p.stat().st_mtime for p in out.glob("renders/*.mp4")),
                   default=(out / "metrics.json").stat().st_mtime)
        return last - (out / "config.json").stat().st_mtime
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spiknerf.cli", *args, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def block(run: Path, phase: str) -> dict:
    return json.loads((run / "metrics.json").read_text())[phase]


SPIKE_ONLY = {"binary": SPIKE_ONLY_BINARY, "ternary": SPIKE_ONLY_TERNARY}  # the rows --spike-only adds


def bench_scene(name: str, runs: Path, preset: str, steps: int | None, seeds: list[int], reuse: bool,
                spike_only: bool, widths: list[int]) -> tuple[list[dict], dict]:
    """The scene's rows, once per seed: the rows of the first seed, and every seed's PSNRs in ``info``."""
    by_seed = {seed: scene_runs(name, runs / name / f"seed{seed}", preset, steps, seed, reuse, spike_only, widths)
               for seed in seeds}
    rows, info = by_seed[seeds[0]]
    add_seeds(rows, {seed: seed_rows for seed, (seed_rows, _) in by_seed.items()})
    return rows, info


def scene_runs(name: str, runs: Path, preset: str, steps: int | None, seed: int, reuse: bool,
               spike_only: bool, widths: list[int]) -> tuple[list[dict], dict]:
    base = (SCENES[name] + (["--preset", preset] if preset != "fast" else [])
            + (["--steps", str(steps)] if steps else []) + ["--seed", str(seed)])
    both = runs / "ann+ternary-kd"
    wall = spiknerf(["train", *base], both, reuse)
    teacher = block(both, "teacher")
    rows = [spiknerf_row(TEACHER, teacher, teacher)]
    for neuron, label in (("binary", BINARY), ("ternary", TERNARY)):
        out = runs / f"{neuron}"
        spiknerf(["train", *base, "--model", "student", "--no-kd", "--neuron", neuron, "--video-frames", "0"],
                 out, reuse)
        rows.append(spiknerf_row(label, block(out, "student"), teacher))
    rows.append(spiknerf_row(DISTILLED, block(both, "student"), teacher))
    for neuron, label in SPIKE_ONLY.items() if spike_only else ():
        out = runs / f"{neuron}-spike-only"
        spiknerf(["train", *base, "--model", "student", "--no-kd", "--neuron", neuron, "--no-color-skip",
                  "--video-frames", "0"], out, reuse)
        rows.append(spiknerf_row(label, block(out, "student"), teacher))
    width_args = ["--model", "student", "--teacher", str(both), "--video-frames", "0"]
    for width in widths:
        out = runs / f"ternary-kd-color{width}"
        spiknerf(["train", *base, *width_args, "--color-hidden", str(width)], out, reuse)
        row = spiknerf_row(distilled_width_label(width), block(out, "student"), teacher)
        rows.append(row | {"color_hidden": width})
    student_args = ["--model", "student", "--no-kd", "--neuron", "binary|ternary"]
    info = {"wall_default_run": wall, "metrics": json.loads((both / "metrics.json").read_text()), "commands": [
        "spiknerf train " + " ".join(base + ["--out", str(both)]),
        "spiknerf train " + " ".join(base + student_args + ["--out", "..."])]}
    if spike_only:
        info["commands"].append("spiknerf train " + " ".join(base + student_args + ["--no-color-skip", "--out", "..."]))
    if widths:
        shown = base + width_args + ["--color-hidden", "W", "--out", "..."]
        info["commands"].append("spiknerf train " + " ".join(shown))
    return rows, info


def bench_paper(runs: Path, steps: int, teacher_run: Path | None, reuse: bool) -> tuple[list[dict], str]:
    """Teacher and distilled student of the paper preset; with ``teacher_run``, only the student trains."""
    args = SCENES["lego-100"] + ["--preset", "paper", "--steps", str(steps), "--video-frames", "0"]
    if teacher_run is not None:
        args += ["--model", "student", "--teacher", str(teacher_run)]
    out = runs / "lego-100-paper"
    spiknerf(["train", *args], out, reuse)
    teacher = block(teacher_run or out, "teacher")
    return [spiknerf_row(TEACHER, teacher, teacher), spiknerf_row(DISTILLED, block(out, "student"), teacher)], \
        "spiknerf train " + " ".join(args + ["--out", str(out)])


def write_tables(results: dict, paper: tuple[list[dict], str] | None, preset: str, prov: dict,
                 steps: int | None) -> None:
    """One results file per scene (and the paper preset's); the fast preset's default runs as their own table."""
    for name, (rows, info) in results.items():
        settings = {"preset": preset, "scene": SCENE_LABELS[name], "teacher steps": rows[0]["steps"],
                    "student steps": rows[1]["steps"], "seeds": [int(s) for s in rows[0]["psnr_by_seed"]]}
        write_results(Results(table=f"spiknerf_{preset}_{TABLE_NAMES[name]}", rows=rows, settings=settings,
                              summary=spiknerf_summary(rows, info["wall_default_run"]), commands=info["commands"],
                              **prov))
    if preset == "fast" and not steps and results:
        rows = [default_run_row(SCENE_LABELS[name], info["metrics"], info["wall_default_run"])
                for name, (_, info) in results.items()]
        write_results(Results(table="spiknerf_default_run", rows=rows, settings={"preset": "fast", "seed": 0},
                              commands=[info["commands"][0] for _, info in results.values()], **prov))
    if paper is not None:
        rows, cmd = paper
        settings = {"preset": "paper", "scene": SCENE_LABELS["lego-100"], "teacher steps": rows[0]["steps"],
                    "student steps": rows[1]["steps"]}
        write_results(Results(table="spiknerf_paper_lego100", rows=rows, settings=settings, commands=[cmd], **prov))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=tuple(SCENES), help="scenes (default: all)")
    parser.add_argument("--preset", choices=PRESETS, default="fast", help="the field of every row; "
                        "mlp writes its own tables and skips the paper preset")
    parser.add_argument("--steps", type=int, default=None, help="steps per model (default: the preset's)")
    parser.add_argument("--paper-steps", type=int, default=500, help="steps per model of the paper preset (0: skip)")
    parser.add_argument("--paper-teacher", type=Path, help="a trained paper-preset teacher run to distil from "
                        "(e.g. bench_nerf.py's lego-100-paper) instead of training one for --paper-steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per scene; the table "
                        "shows the first seed's runs, its summary the mean PSNRs over all seeds")
    parser.add_argument("--spike-only", action="store_true", help="also train binary and ternary students "
                        "with --no-color-skip (colour through spikes only) and report their PSNRs")
    parser.add_argument("--color-widths", type=int, nargs="+", default=[], metavar="W", help="also distil ternary "
                        "students with colour layers W wide from each default run's teacher (fast preset)")
    parser.add_argument("--runs", help="where the runs go (default: runs/bench-spiknerf, -mlp for --preset mlp)")
    parser.add_argument("--reuse", action="store_true", help="keep the finished runs already under --runs")
    args = parser.parse_args()
    if args.spike_only and args.preset != "fast":
        parser.error("--spike-only applies to the fast preset (its colour skip)")
    if args.color_widths and args.preset != "fast":
        parser.error("--color-widths applies to the fast preset (its colour branch)")
    runs = Path(args.runs or "runs/bench-spiknerf" + ("" if args.preset == "fast" else f"-{args.preset}"))
    if runs.exists() and not args.reuse:
        raise SystemExit(f"{runs} exists; remove it or pass another --runs")
    # read before the runs, so that editing the tree while they train does not mark them dirty
    code = code_version() + (" (runs kept by --reuse may come from older code)" if args.reuse else "")
    prov = provenance("python " + " ".join(["scripts/bench_spiknerf.py", *sys.argv[1:]]), conditions=CONDITIONS,
                      code=code)
    names = [n for n in (args.only or SCENES) if LEGO.is_dir() or n != "lego-100"]
    results = {name: bench_scene(name, runs, args.preset, args.steps, args.seeds, args.reuse, args.spike_only,
                                 args.color_widths) for name in names}
    paper = (bench_paper(runs, args.paper_steps, args.paper_teacher, args.reuse)
             if args.paper_steps and LEGO.is_dir() and args.preset == "fast" else None)
    write_tables(results, paper, args.preset, prov, args.steps)
    for doc in regenerate():
        print(f"regenerated {doc}")


if __name__ == "__main__":
    main()
