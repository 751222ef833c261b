"""The Spik-NeRF table reproduced: ANN teacher, binary SNN, ternary SNN and ternary SNN + KD, equal training budgets.

Per scene (lego at 100 x 100 from ../shared, and the built-in scene):

1. the default job, ``spiknerf train`` (teacher, then the distilled ternary student, evaluation and the video),
   timed end to end: its teacher is the ANN row and its student the ternary + KD row;
2. ``--model student --no-kd`` with binary and with ternary neurons, the same number of steps;
3. with ``--spike-only``, the same two students with ``--no-color-skip``: their colour branch reads the trunk's
   spikes and the view direction, not the encoding again, so that colour as well as density passes through spikes.

Then the ``paper`` preset (8 x 256 NeRF MLP, where spike-driven layers dominate) on lego for the energy per sample
point. Everything goes into one table in docs/benchmarks.md with the commands:

    python scripts/bench_spiknerf.py
    python scripts/bench_spiknerf.py --seeds 0 1 2                 # the PSNRs over three seeds
    python scripts/bench_spiknerf.py --only builtin --steps 1000   # a quicker look
    python scripts/bench_spiknerf.py --reuse --spike-only          # add the spike-only rows to a finished table
    python scripts/bench_spiknerf.py --preset mlp --only lego-100  # the same rows with the mlp preset

``--preset mlp`` (a 4 x 128 NeRF MLP on the occupancy grid, every hidden layer of the student spiking, as in the
paper) writes a section of its own, without the paper preset's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from spiknerf.benchmarks_doc import write_section

ROOT = Path(__file__).resolve().parents[1]
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
SECTIONS = {"fast": "## Spik-NeRF: ANN teacher vs spiking students",
            "mlp": "## Spik-NeRF: ANN teacher vs spiking students, mlp preset (every hidden layer spikes)"}
MODELS = {  # what each preset's student reads, for the table's header
    "fast": "fast preset: hash grid + 64-wide MLP; the student's spiking MLP reads the hash features (in its first "
            "layer and again as a skip current into its colour branch) and the view direction as analog currents, "
            "so those three layers stay MACs (two in the spike-only rows, without the skip); the teacher is MACs "
            "throughout",
    "mlp": "mlp preset: positional encoding + NeRF MLP of 4 x 128 (skip at layer 2, view branch of 64) on the "
           "occupancy grid; the student's first layer, its skip and its view-direction current read analog inputs "
           "and stay MACs, and every hidden layer spikes, so six layers read spikes; the teacher is MACs throughout",
}
SCENES: dict[str, list[str]] = {"lego-100": ["--data", str(LEGO), "--downscale", "8"], "builtin": []}


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


def row(label: str, b: dict, teacher: dict) -> dict:
    """One table row from a metrics block; energy ratios are against this scene's teacher."""
    return {
        "model": label, "psnr": b["psnr"], "ssim": b["ssim"], "macs": b["macs_per_sample"],
        "sops": b["sops_per_sample"], "energy_sample": b["energy_pj_per_sample"],
        "energy_ray": b["energy_pj_per_ray"],
        "ratio_sample": b["energy_pj_per_sample"] / teacher["energy_pj_per_sample"],
        "ratio_ray": b["energy_pj_per_ray"] / teacher["energy_pj_per_ray"],
        **{f"{form}_ratio": (b[form]["energy_pj_per_sample"] / teacher["energy_pj_per_sample"] if form in b else None)
           for form in ("paper_fold", "training_form")},
        "samples_per_ray": b["samples_per_ray"], "train_s": b["train_seconds"],
        "step_ms": 1000 / b["steps_per_second"], "us_per_sample": 1e6 / b["train_samples_per_second"],
        "firing": b.get("firing_rate", {}), "steps": b["steps"],
    }


SPIKE_ONLY = ("binary", "ternary")  # the rows --spike-only adds, after the four of the paper's table


def bench_scene(name: str, runs: Path, preset: str, steps: int | None, seeds: list[int], reuse: bool,
                spike_only: bool) -> tuple[list[dict], dict]:
    """The scene's rows, once per seed: the rows of the first seed, and every seed's PSNRs in ``info``."""
    by_seed = {seed: scene_runs(name, runs / name / f"seed{seed}", preset, steps, seed, reuse, spike_only)
               for seed in seeds}
    rows, info = by_seed[seeds[0]]
    info["psnr_by_seed"] = {seed: [r["psnr"] for r in seed_rows] for seed, (seed_rows, _) in by_seed.items()}
    return rows, info


def scene_runs(name: str, runs: Path, preset: str, steps: int | None, seed: int, reuse: bool,
               spike_only: bool) -> tuple[list[dict], dict]:
    base = (SCENES[name] + (["--preset", preset] if preset != "fast" else [])
            + (["--steps", str(steps)] if steps else []) + ["--seed", str(seed)])
    both = runs / "ann+ternary-kd"
    wall = spiknerf(["train", *base], both, reuse)
    teacher = block(both, "teacher")
    rows = [row("ANN (teacher)", teacher, teacher)]
    for neuron in ("binary", "ternary"):
        out = runs / f"{neuron}"
        spiknerf(["train", *base, "--model", "student", "--no-kd", "--neuron", neuron, "--video-frames", "0"],
                 out, reuse)
        rows.append(row(f"{neuron} SNN, T=2", block(out, "student"), teacher))
    rows.append(row("ternary SNN + KD, T=2", block(both, "student"), teacher))
    for neuron in SPIKE_ONLY if spike_only else ():
        out = runs / f"{neuron}-spike-only"
        spiknerf(["train", *base, "--model", "student", "--no-kd", "--neuron", neuron, "--no-color-skip",
                  "--video-frames", "0"], out, reuse)
        rows.append(row(f"{neuron} SNN, T=2, spike-only colour", block(out, "student"), teacher))
    student_args = ["--model", "student", "--no-kd", "--neuron", "binary|ternary"]
    info = {"wall_default_run": wall, "commands": [
        "spiknerf train " + " ".join(base + ["--out", str(both)]),
        "spiknerf train " + " ".join(base + student_args + ["--out", "..."])]}
    if spike_only:
        info["commands"].append("spiknerf train " + " ".join(base + student_args + ["--no-color-skip", "--out", "..."]))
    return rows, info


def bench_paper(runs: Path, steps: int, teacher_run: Path | None, reuse: bool) -> tuple[list[dict], str]:
    """Teacher and distilled student of the paper preset; with ``teacher_run``, only the student trains."""
    args = SCENES["lego-100"] + ["--preset", "paper", "--steps", str(steps), "--video-frames", "0"]
    if teacher_run is not None:
        args += ["--model", "student", "--teacher", str(teacher_run)]
    out = runs / "lego-100-paper"
    spiknerf(["train", *args], out, reuse)
    teacher = block(teacher_run or out, "teacher")
    return [row("ANN (teacher)", teacher, teacher), row("ternary SNN + KD, T=2", block(out, "student"), teacher)], \
        "spiknerf train " + " ".join(args + ["--out", str(out)])


def fmt_rows(rows: list[dict]) -> list[str]:
    lines = ["| model | test PSNR | SSIM | MACs/sample | SOPs/sample | pJ/sample | x teacher (per sample) "
             "| x teacher, paper fold | x teacher, {0,1,2} form | samples/ray | pJ/ray | x teacher (per ray) "
             "| train s | ms/step | µs/sample |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        paper, unfolded = ("" if r[k] is None else f"{r[k]:.3f}" for k in ("paper_fold_ratio", "training_form_ratio"))
        lines.append(
            f"| {r['model']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['macs']:.0f} | {r['sops']:.0f} | "
            f"{r['energy_sample']:.0f} | {r['ratio_sample']:.3f} | {paper} | {unfolded} | {r['samples_per_ray']:.1f} | "
            f"{r['energy_ray']:.0f} | {r['ratio_ray']:.3f} | {r['train_s']:.0f} | {r['step_ms']:.0f} | "
            f"{r['us_per_sample']:.1f} |")
    return lines


def code_version() -> str:
    """The commit the runs' code comes from, ``-dirty`` when tracked files differ from it."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=ROOT,
                             capture_output=True, text=True)
    except OSError:  # no git on this machine
        return "unknown (no git)"
    return out.stdout.strip() if out.returncode == 0 else "unknown (not a git checkout)"


def report(results: dict, paper: tuple[list[dict], str] | None, command: str, code: str, preset: str = "fast") -> str:
    lines = [SECTIONS[preset], "",
             f"Command: `{command}` on {platform.machine()} with {os.cpu_count()} CPU cores, torch {torch.__version__},"
             f" {time.strftime('%Y-%m-%d')}, code at {code}. The students train the same number of "
             f"steps ({MODELS[preset]}). Student neurons as `spiknerf train` builds them: "
             "threshold θ 0.25, ternary spikes 1 at θ and 2 at 2θ, soft reset (binary: the same θ and reset). "
             "Energy: E_MAC 4.6 pJ, E_AC 0.9 pJ; SOPs "
             "are those of the form that runs: for ternary students the folded form, each spike s read as s - c "
             "with c the unit's most frequent spike on the first training view (so that spike is free). The "
             "\"paper fold\" column reads the same spikes as s - 1 for every unit (the paper's fold, where a 0 "
             "costs a subtraction), the \"{0,1,2} form\" column before folding (a 0 free, a 2 one shifted "
             "addition). The hash-grid lookups and the positional encoding are not counted (the same in both).",
             ""]
    for name, (rows, info) in results.items():
        lines += [f"### {name}", "", *fmt_rows(rows), ""]
        lines += [f"Steps: teacher {rows[0]['steps']}, each student {rows[1]['steps']}. Whole default run (teacher, "
                  f"student, evaluation, video): {info['wall_default_run'] / 60:.1f} min wall.", ""]
        lines += [f"- `{c}`" for c in info["commands"]] + [""]
        teacher, student = rows[0], rows[3]
        psnrs = info["psnr_by_seed"]
        mean = [sum(column) / len(column) for column in zip(*psnrs.values(), strict=True)]
        if len(psnrs) > 1:
            lines += [f"Test PSNR by seed (the table above is seed {next(iter(psnrs))}):", "",
                      "| model | " + " | ".join(f"seed {seed}" for seed in psnrs) + " | mean |",
                      "|---|" + "---|" * (len(psnrs) + 1),
                      *(f"| {r['model']} | " + " | ".join(f"{v[i]:.2f}" for v in psnrs.values()) + f" | {mean[i]:.2f} |"
                        for i, r in enumerate(rows)), ""]
        teacher_db, binary_db, ternary_db, kd_db = mean[:4]
        over = f" (mean over {len(psnrs)} seeds)" if len(psnrs) > 1 else ""
        spike_only = (f" With spike-only colour, ternary above binary by {mean[5] - mean[4]:+.2f} dB; "
                      f"{teacher_db - mean[4]:.2f} and {teacher_db - mean[5]:.2f} dB behind the teacher."
                      if len(mean) == 6 else "")
        lines += ["Firing rates of the ternary + KD student (fraction of non-zero spikes per layer): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in student["firing"].items()),
                  "",
                  f"Targets{over}: ternary + KD within 0.3 dB of the teacher: {kd_db - teacher_db:+.2f} dB "
                  f"(student minus teacher); ternary above binary by {ternary_db - binary_db:+.2f} dB (target +1 dB); "
                  f"student step time {student['step_ms'] / teacher['step_ms']:.2f}x the teacher's (target <= 2x), "
                  f"{student['us_per_sample'] / teacher['us_per_sample']:.2f}x per sample.{spike_only}", ""]
    if paper is not None:
        rows, cmd = paper
        lines += ["### paper preset (8 x 256 NeRF MLP, 64 + 128 samples), lego 100 x 100", "", *fmt_rows(rows), "",
                  f"- `{cmd}`", "",
                  f"The teacher trained {rows[0]['steps']} steps, the student {rows[1]['steps']}.", "",
                  f"Student energy per sample point: {rows[1]['ratio_sample']:.3f}x the teacher's in the "
                  f"calibrated fold that runs (target <= 0.25); {rows[1]['paper_fold_ratio']:.3f}x in the paper's "
                  f"fold, {rows[1]['training_form_ratio']:.3f}x in the {{0,1,2}} form.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=tuple(SCENES), help="scenes (default: all)")
    parser.add_argument("--preset", choices=tuple(SECTIONS), default="fast", help="the field of every row; "
                        "mlp writes its own section and skips the paper preset")
    parser.add_argument("--steps", type=int, default=None, help="steps per model (default: the preset's)")
    parser.add_argument("--paper-steps", type=int, default=500, help="steps per model of the paper preset (0: skip)")
    parser.add_argument("--paper-teacher", type=Path, help="a trained paper-preset teacher run to distil from "
                        "(e.g. bench_nerf.py's lego-100-paper) instead of training one for --paper-steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per scene; the table "
                        "shows the first seed's runs, the targets the mean PSNRs over all seeds")
    parser.add_argument("--spike-only", action="store_true", help="also train binary and ternary students "
                        "with --no-color-skip (colour through spikes only) and report their PSNRs")
    parser.add_argument("--runs", help="where the runs go (default: runs/bench-spiknerf, -mlp for --preset mlp)")
    parser.add_argument("--reuse", action="store_true", help="keep the finished runs already under --runs")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    if args.spike_only and args.preset != "fast":
        parser.error("--spike-only applies to the fast preset (its colour skip)")
    runs = Path(args.runs or "runs/bench-spiknerf" + ("" if args.preset == "fast" else f"-{args.preset}"))
    if runs.exists() and not args.reuse:
        raise SystemExit(f"{runs} exists; remove it or pass another --runs")
    # read before the runs, so that editing the tree while they train does not mark them dirty
    code = code_version() + (" (runs kept by --reuse may come from older code)" if args.reuse else "")
    names = [n for n in (args.only or SCENES) if LEGO.is_dir() or n != "lego-100"]
    results = {name: bench_scene(name, runs, args.preset, args.steps, args.seeds, args.reuse, args.spike_only)
               for name in names}
    paper = (bench_paper(runs, args.paper_steps, args.paper_teacher, args.reuse)
             if args.paper_steps and LEGO.is_dir() and args.preset == "fast" else None)
    command = "python " + " ".join(["scripts/bench_spiknerf.py", *sys.argv[1:]])
    text = report(results, paper, command, code, args.preset)
    write_section(Path(args.doc), SECTIONS[args.preset], text)
    print(text)


if __name__ == "__main__":
    main()
