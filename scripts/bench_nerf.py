"""Benchmark of the NeRF pipeline (the ANN teacher): speed, quality and memory on real and built-in scenes.

Each configuration trains in a fresh process (so peak RSS is its own), then this
script renders one test view at the training resolution and at 400 x 400, and
writes one table with the commands into docs/benchmarks.md:

    python scripts/bench_nerf.py                 # lego at 100x100 and 200x200, the built-in scene, paper preset
    python scripts/bench_nerf.py --only lego-100 # one configuration

Time to a test PSNR is read from the run's history.jsonl (PSNR of 3 test views
every --eval-every steps; training seconds exclude evaluation and checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from spiknerf.benchmarks_doc import write_section

ROOT = Path(__file__).resolve().parents[1]
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
SECTION = "## NeRF pipeline: the ANN teacher"

CONFIGS: dict[str, list[str]] = {
    "lego-100": ["--data", str(LEGO), "--downscale", "8"],
    "lego-200": ["--data", str(LEGO), "--downscale", "4"],
    "builtin-128": [],
    "lego-100-paper": ["--data", str(LEGO), "--downscale", "8", "--preset", "paper", "--steps", "1500"],
}


def time_to(history: list[dict], target: float) -> float | None:
    """Training seconds at the first evaluation reaching ``target`` dB."""
    return next((h["train_seconds"] for h in history if h["test_psnr"] >= target), None)


def render_seconds(run: Path, size: int | None) -> float:
    """Seconds to render test view 0 at its own resolution, or at ``size x size`` (intrinsics scaled)."""
    from spiknerf.nerf.rays import camera_rays
    from spiknerf.nerf.render import render_chunks
    from spiknerf.nerf.run import eval_background, load_model, open_scene, read_config

    config = read_config(run)
    scene = open_scene(run, config)
    model, sampler, _ = load_model(run, "teacher", config, scene, torch.device("cpu"))
    test = scene.splits["test"]
    w, h = (test.width, test.height) if size is None else (size, size)
    intr = test.intrinsics[0] * torch.tensor([w / test.width, h / test.height, w / test.width, h / test.height])
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    o, d, vd = camera_rays(test.c2w[0], intr, xs.reshape(-1), ys.reshape(-1), w, h, scene.ndc)
    bg = eval_background(scene)
    render_chunks(model, sampler, o, d, bg, vd)  # warm-up (compiles on first use)
    t0 = time.perf_counter()
    render_chunks(model, sampler, o, d, bg, vd)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ru_maxrss it does not inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(name: str, runs: Path, eval_every: int) -> dict:
    """Train one configuration in this process and measure it."""
    from spiknerf.cli import main as cli

    out = runs / name
    args = ["train", "--model", "teacher", "--out", str(out), "--eval-every", str(eval_every),
            "--video-frames", "0", *CONFIGS[name]]
    t0 = time.perf_counter()
    if cli(args) != 0:
        raise SystemExit(f"{name}: training failed")
    wall = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    metrics = json.loads((out / "metrics.json").read_text())["teacher"]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    return {
        "name": name, "command": "spiknerf " + " ".join(args), "steps": metrics["steps"],
        "train_seconds": metrics["train_seconds"], "wall_seconds": wall,
        "steps_per_second": metrics["steps_per_second"], "rays_per_second": metrics["rays_per_second"],
        "t25": time_to(history, 25.0), "t28": time_to(history, 28.0), "t29": time_to(history, 29.0),
        "psnr": metrics["psnr"], "ssim": metrics["ssim"], "samples_per_ray": metrics["samples_per_ray"],
        "peak_rss_mb": peak_mb, "render_s": render_seconds(out, None), "render_400_s": render_seconds(out, 400),
    }


def fmt(v: float | None, spec: str = ".1f") -> str:
    return "not reached" if v is None else format(v, spec)


def table(rows: list[dict], command: str) -> str:
    lines = [
        SECTION + " (fast preset unless named)",
        "",
        f"Command: `{command}` on {platform.machine()} with {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {time.strftime('%Y-%m-%d')}. Training seconds exclude evaluation and checkpoints; "
        "PSNR/SSIM are the mean over the whole test split; time to a PSNR uses 3 test views evaluated every "
        "250 steps.",
        "",
        "| scene | steps | train s | steps/s | rays/s | s to 25 dB | s to 28 dB | s to 29 dB | test PSNR | SSIM "
        "| samples/ray | peak RSS MB | render view s | render 400x400 s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['steps']} | {r['train_seconds']:.0f} | {r['steps_per_second']:.1f} | "
            f"{r['rays_per_second']:.0f} | {fmt(r['t25'], '.0f')} | {fmt(r['t28'], '.0f')} | {fmt(r['t29'], '.0f')} "
            f"| {r['psnr']:.2f} | {r['ssim']:.4f} | {r['samples_per_ray']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['render_s']:.3f} | {r['render_400_s']:.2f} |")
    lines += ["", "Per configuration (run directories under the bench's --runs folder):", ""]
    lines += [f"- {r['name']}: `{r['command']}`" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=tuple(CONFIGS), help="configurations to run (default: all)")
    parser.add_argument("--runs", default="runs/bench-nerf", help="folder for the run directories")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration in this process
    args = parser.parse_args()
    runs = Path(args.runs)
    if args.one:
        print(json.dumps(run_one(args.one, runs, args.eval_every)))
        return
    if not LEGO.is_dir():
        print(f"note: {LEGO} not found; lego configurations skipped", file=sys.stderr)
    names = [n for n in (args.only or CONFIGS) if LEGO.is_dir() or not n.startswith("lego")]
    rows = []
    for name in names:
        if (runs / name).exists():
            raise SystemExit(f"{runs / name} exists; remove it or pass another --runs")
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--runs", str(runs), "--eval-every",
                               str(args.eval_every)], stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    command = "python scripts/bench_nerf.py" + (f" --only {' '.join(args.only)}" if args.only else "")
    write_section(Path(args.doc), SECTION, table(rows, command))
    print(table(rows, command))


if __name__ == "__main__":
    main()
