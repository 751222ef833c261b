"""Benchmark of the NeRF pipeline (the ANN teacher): speed, quality and memory; writes docs/results/nerf_teacher.json.

Each configuration trains in a fresh process (so peak RSS is its own), then this
script renders one test view at the training resolution and at ``RENDER_SIZE``
square, and regenerates the docs:

    python scripts/bench_nerf.py                 # lego at two resolutions, the built-in scene, paper preset
    python scripts/bench_nerf.py --only lego-100 # one configuration

Time to a test PSNR is read from the run's history.jsonl (PSNR of the first test
views every --eval-every steps; training seconds exclude evaluation and checkpoints).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from spiknerf.paths import LEGO
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.measure import peak_rss_mb

PSNR_TARGETS = (25.0, 28.0, 29.0)
RENDER_SIZE = 400

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
        "config": name, "steps": metrics["steps"], "train_s": metrics["train_seconds"], "wall_s": wall,
        "steps_per_s": metrics["steps_per_second"], "rays_per_s": metrics["rays_per_second"],
        "seconds_to_psnr": {f"{target:g}": time_to(history, target) for target in PSNR_TARGETS},
        "psnr": metrics["psnr"], "ssim": metrics["ssim"], "samples_per_ray": metrics["samples_per_ray"],
        "peak_rss_mb": peak_mb, "render_view_s": render_seconds(out, None),
        f"render_{RENDER_SIZE}_s": render_seconds(out, RENDER_SIZE), "command": "spiknerf " + " ".join(args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=tuple(CONFIGS), help="configurations to run (default: all)")
    parser.add_argument("--runs", default="runs/bench-nerf", help="folder for the run directories")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration in this process
    args = parser.parse_args()
    runs = Path(args.runs)
    if args.one:
        print(json.dumps(run_one(args.one, runs, args.eval_every)))
        return
    if not LEGO.is_dir():
        print(f"note: {LEGO} not found; lego configurations skipped", file=sys.stderr)
    names = [n for n in (args.only or CONFIGS) if LEGO.is_dir() or not n.startswith("lego")]
    command = "python scripts/bench_nerf.py" + (f" --only {' '.join(args.only)}" if args.only else "")
    prov = provenance(command)
    rows = []
    for name in names:
        if (runs / name).exists():
            raise SystemExit(f"{runs / name} exists; remove it or pass another --runs")
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--runs", str(runs), "--eval-every",
                               str(args.eval_every)], stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    settings = {"eval every": args.eval_every}
    write_results(Results(table="nerf_teacher", rows=rows, settings=settings, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")


if __name__ == "__main__":
    main()
