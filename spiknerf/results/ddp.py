"""Data-parallel training measured: does a job of two processes train what one process trains, how fast, and
what it sends per step.

* :func:`correctness`: the same run (``spiknerf train``) in one process and in a job of two (gloo on loopback),
  with the same global batch; their final PSNR, weights, occupancy grids and training-loss curves side by side.
* :func:`throughput`: steps per second of the teacher under each process x thread layout of :data:`LAYOUTS`.
* :func:`communication`: what a step sends (the gradient all-reduce of DDP, the batch's counts, the grid's
  share of density evaluations), timed by a job of two processes that sends only that (:func:`probe`), and the
  ring all-reduce time it implies for more GPUs at an assumed link bandwidth.

Each training is its own process (threads only take effect in a fresh one); timings are read from its run
folder (``metrics.json``), so loading, evaluation and video are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from spiknerf.nerf.checkpoint import latest_checkpoint, load_checkpoint

# (processes, threads each)
LAYOUTS: dict[str, tuple[int, int]] = {
    "1 process x 1 thread": (1, 1),
    "1 process x 2 threads": (1, 2),
    "2 processes x 1 thread": (2, 1),
}
GRID_EVALS_PER_UPDATE = 1 << 18  # density evaluations of a grid update during warm-up (64^3 cells)
GRID_UPDATE_EVERY = 16
FLOAT32 = 4
# assumed all-reduce bus bandwidths (bytes/s) for the prediction: an assumption, not a measurement
LINKS: dict[str, float] = {"PCIe 4.0 x16 (about 25 GB/s)": 25e9, "NVLink 4 (about 300 GB/s)": 300e9}


def _environment(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    return env | {"OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}


def train(args: Sequence[str], out: Path, processes: int, threads: int, reuse: bool = False) -> str:
    """Run ``spiknerf train ARGS --out OUT`` in ``processes`` processes of ``threads`` threads (with ``reuse``, not
    if OUT holds a finished run); returns the command as a person would type it."""
    argv = ["train", *args, "--out", str(out)] + (["--nproc", str(processes)] if processes > 1 else [])
    command = f"OMP_NUM_THREADS={threads} OMP_WAIT_POLICY=PASSIVE spiknerf " + " ".join(argv)
    if reuse and (out / "metrics.json").is_file():
        print(f"reusing {out}", file=sys.stderr, flush=True)
        return command
    print(command, file=sys.stderr, flush=True)
    job = subprocess.run([sys.executable, "-m", "spiknerf", *argv], env=_environment(threads), capture_output=True,
                         text=True)
    if job.returncode != 0:
        raise RuntimeError(f"{command} failed ({job.returncode}): {job.stderr[-2000:]}")
    return command


def _final(run: Path, phase: str) -> dict[str, Any]:
    return load_checkpoint(latest_checkpoint(run, phase))


def loss_curve(run: Path, phase: str) -> dict[int, float]:
    """The phase's training loss by step, as TensorBoard got it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(f"{phase}/loss")}


def correctness(train_args: Sequence[str], scratch: Path, reuse: bool) -> tuple[list[dict], list[dict], list[str]]:
    """Rows of the correctness table (one a phase) and of the loss-curve table, and the commands run. A third run,
    one process with the next seed, shows how far runs differ by their seed alone."""
    one, two, other = scratch / "one-process", scratch / "two-processes", scratch / "one-process-seed1"
    seed = int(train_args[list(train_args).index("--seed") + 1]) if "--seed" in train_args else 0
    first = train(train_args, one, 1, 1, reuse)
    second = train(train_args, two, 2, 1, reuse)
    third = train([*train_args, "--seed", str(seed + 1)], other, 1, 1, reuse)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (one, two, other)]
    rows, curves = [], []
    for phase in ("teacher", "student"):
        a, b = _final(one, phase), _final(two, phase)
        weights = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"])
        rows.append({
            "phase": phase, "psnr_1": metrics[0][phase]["psnr"], "psnr_2": metrics[1][phase]["psnr"],
            "psnr_diff": metrics[1][phase]["psnr"] - metrics[0][phase]["psnr"],
            "psnr_1_next_seed": metrics[2][phase]["psnr"],
            "seed_diff": metrics[2][phase]["psnr"] - metrics[0][phase]["psnr"],
            "ssim_1": metrics[0][phase]["ssim"], "ssim_2": metrics[1][phase]["ssim"],
            "weights_max_abs_diff": weights,
            "grid_cells_differing": int((a["sampler"]["binary"] != b["sampler"]["binary"]).sum()),
            "grid_cells": int(a["sampler"]["binary"].numel()),
            # a job saves a model's final checkpoint only once every rank has shown the same grid and weights
            "ranks_identical": latest_checkpoint(two, phase).name.startswith(f"{phase}-final"),
            "rays_1": a["rays"], "rays_2": b["rays"],
        })
        c1, c2, c3 = (loss_curve(run, phase) for run in (one, two, other))
        curves += [{"phase": phase, "step": s, "loss_1": c1[s], "loss_2": c2.get(s), "loss_1_next_seed": c3.get(s)}
                   for s in sorted(c1)]
    return rows, curves, [first, second, third]


def throughput(train_args: Sequence[str], scratch: Path, layouts: Sequence[str],
               repeats: int) -> tuple[list[dict], list[str]]:
    """One row a layout: teacher steps per second (the upper median over ``repeats`` runs)."""
    rows, commands = [], []
    for name in layouts:
        processes, threads = LAYOUTS[name]
        tries = []
        for k in range(repeats):
            out = scratch / f"{processes}x{threads}-{k}"
            command = train(train_args, out, processes, threads)
            state = _final(out, "teacher")
            tries.append(state["step"] / state["train_seconds"])
            commands.append(command)
        rows.append({"layout": name, "processes": processes, "threads": threads,
                     "steps_per_second": sorted(tries)[len(tries) // 2], "tries": tries})
    base = next((r["steps_per_second"] for r in rows if r["layout"] == "1 process x 2 threads"), None)
    for row in rows:
        row["x_1x2"] = row["steps_per_second"] / base if base else None
    return rows, commands


def payload(run: Path) -> dict[str, float]:
    """Bytes a step of a job sends, by kind, from the run's final teacher and student (float32 gradients)."""
    return {
        "teacher gradients (DDP all-reduce)": sum(t.numel() for t in _final(run, "teacher")["model"].values())
        * FLOAT32,
        "student gradients (DDP all-reduce)": sum(t.numel() for t in _final(run, "student")["model"].values())
        * FLOAT32,
    }


def communication(run: Path, repeats: int) -> tuple[list[dict], str]:
    """What a step of a job of two sends and how long that takes alone (:func:`probe`, two gloo processes): the
    gradient all-reduce of each model, the batch counts, and the grid's density gather of a warm-up update
    (every ``GRID_UPDATE_EVERY`` steps; shown per step)."""
    sizes = payload(run) | {"batch counts (all-reduce of 4 float64)": 32}
    out = run.parent / "probe.json"
    argv = ["--repeats", str(repeats), "--out", str(out), "--numel", *(str(b // FLOAT32) for b in sizes.values())]
    command = "OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2 -m spiknerf.results.ddp " + " ".join(argv)
    print(command, file=sys.stderr, flush=True)
    job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "spiknerf.results.ddp", *argv], env=_environment(1), capture_output=True, text=True)
    if job.returncode != 0:
        raise RuntimeError(f"{command} failed: {job.stderr[-2000:]}")
    measured = json.loads(out.read_text())
    rows = [{"what": what, "bytes_per_step": size, "seconds_per_step": s}
            for (what, size), s in zip(sizes.items(), measured["all_reduce"], strict=True)]
    rows.append({"what": f"grid densities of a warm-up update (all-gather), per step (1 update in "
                         f"{GRID_UPDATE_EVERY})", "bytes_per_step": GRID_EVALS_PER_UPDATE * FLOAT32 / GRID_UPDATE_EVERY,
                 "seconds_per_step": measured["grid_update"] / GRID_UPDATE_EVERY})
    return rows, command


def predicted(rows: list[dict], gpus: Sequence[int] = (2, 4, 8)) -> list[dict]:
    """Ring all-reduce seconds of the teacher's and the student's gradients on ``gpus`` GPUs at each assumed link
    bandwidth of :data:`LINKS`: each GPU sends and receives 2 (N - 1) / N of the payload."""
    out = []
    for row in rows:
        if "gradients" not in row["what"]:
            continue
        for link, bandwidth in LINKS.items():
            for n in gpus:
                out.append({"what": row["what"], "link": link, "gpus": n,
                            "seconds_per_step": 2 * (n - 1) / n * row["bytes_per_step"] / bandwidth})
    return out


def probe(numels: Sequence[int], repeats: int) -> dict[str, Any]:
    """Median seconds, in the job this process is a rank of, of one all-reduce of each size (float32), and of
    the all-gathers of one warm-up grid update (its densities in chunks of ``1 << 16``, each rank evaluating its
    share: :func:`spiknerf.distributed.sharded`)."""
    import torch.distributed as dist

    def median_seconds(work) -> float:
        times = []
        for _ in range(repeats + 2):  # the first two connect and warm up
            dist.barrier()
            t0 = time.perf_counter()
            work()
            times.append(time.perf_counter() - t0)
        return statistics.median(times[2:])

    size, chunk = dist.get_world_size(), 1 << 16
    share = torch.zeros(chunk // size)

    def grid_update() -> None:
        for _ in range(GRID_EVALS_PER_UPDATE // chunk):
            dist.all_gather([torch.empty_like(share) for _ in range(size)], share)

    tensors = [torch.zeros(max(n, 1)) for n in numels]
    return {"all_reduce": [median_seconds(lambda t=t: dist.all_reduce(t)) for t in tensors],
            "grid_update": median_seconds(grid_update)}


def main() -> None:
    """The probe, as a rank of ``torchrun ... -m spiknerf.results.ddp``."""
    import torch.distributed as dist

    parser = argparse.ArgumentParser(description="time the collectives of a data-parallel step")
    parser.add_argument("--numel", type=int, nargs="+", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    measured = probe(args.numel, args.repeats)
    if dist.get_rank() == 0:
        args.out.write_text(json.dumps(measured))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
