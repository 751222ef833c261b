"""Run every classification method and write docs/results/classify_*.json, then regenerate the docs.

    python scripts/bench_classify.py [--datasets digits mnist5k] [--seeds 3] [--jobs 2] [--reuse]
                                     [--skip-memory] [--skip-peer] [--no-install]

Each (data set, method) pair is one ``spiknerf bench classify`` job on one torch
thread, its JSON record under ``--out`` (``--reuse`` takes records already there).
Then, unless skipped: the training memory of lif and ratebp at two T
(``classify_memory``), and the lif network against its SpikingJelly twin
(``classify_spikingjelly``; SpikingJelly is installed if missing with
``pip install --no-deps spikingjelly loguru tqdm``, since its declared
dependencies would pull another torch).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from spiknerf.atomic import write_json_atomic
from spiknerf.bench.classify import METHODS, SUBBIT_BLOCK, SUBBIT_ETA, ClassifyConfig, load_data, main, settings
from spiknerf.bench.datasets import DATASETS
from spiknerf.bench.peer_spikingjelly import ensure_spikingjelly
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.reports import classify_row, memory_row, peer_row

T_DEFAULT = 4
MEMORY_T = (2, 8)
LABELS = {
    "lif": "lif (BPTT, binary LIF)",
    "ternary": "ternary (BPTT, Spik-NeRF ternary)",
    "ltmd": "ltmd (learnable θ + moderate dropout)",
    "imloss": "imloss (IM-Loss + evolving surrogate)",
    "ratebp": "ratebp (rate-based BP)",
    "bwsnn": "bwsnn (binary weights)",
    "s2nn": f"s2nn (sub-bit, k={SUBBIT_BLOCK}, η={SUBBIT_ETA})",
    "ncg": "ncg (supervised STDP, no backprop)",
}


def run_job(cfg: ClassifyConfig, reuse: bool = False) -> dict:
    """One ``spiknerf bench classify`` job; its JSON record (an existing one with ``reuse``)."""
    if not (reuse and Path(cfg.json).exists()):
        main(cfg)
    return json.loads(Path(cfg.json).read_text())


def job(out: Path, dataset: str, method: str, T: int, seeds: int, **kwargs) -> ClassifyConfig:
    name = f"{dataset}-{method}-T{T}" + "".join(f"-{k}{v}" for k, v in kwargs.items())
    return ClassifyConfig(dataset=dataset, method=method, T=T, seeds=seeds, json=str(out / f"{name}.json"),
                          tb=str(out / "tb"), threads=1, **kwargs)


def peer_job(dataset: str, seed: int, path: Path, reuse: bool) -> list[float]:
    """The lif network and its SpikingJelly twin on one seed: accuracies, then seconds per epoch."""
    from spiknerf.bench.peer_spikingjelly import side_by_side

    if reuse and path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    cfg = ClassifyConfig(dataset=dataset, method="lif")
    s = settings(cfg, seed)
    ours, theirs = side_by_side(load_data(cfg, seed), s)
    record = [ours.accuracy, theirs.accuracy, ours.train_seconds / s.epochs, theirs.train_seconds / s.epochs]
    write_json_atomic(path, record)
    return record


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2, help="jobs run at once (default: 2, one per core)")
    p.add_argument("--out", default="runs/bench/classify", help="folder for the jobs' JSON records")
    p.add_argument("--reuse", action="store_true", help="reuse the JSON records already under --out")
    p.add_argument("--skip-memory", action="store_true", help="do not measure memory against T")
    p.add_argument("--skip-peer", action="store_true", help="do not run the SpikingJelly twin")
    p.add_argument("--no-install", action="store_true", help="do not pip-install SpikingJelly when missing")
    return p.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    out = Path(args.out)
    command = " ".join(["python scripts/bench_classify.py", *argv])
    prov = provenance(command)
    have_peer = not args.skip_peer and ensure_spikingjelly(not args.no_install)
    jobs = {(d, m): job(out, d, m, T_DEFAULT, args.seeds) for d in args.datasets for m in METHODS}
    probes = {} if args.skip_memory else {(m, t): job(out, "mnist5k", m, t, 1, epochs=1)
                                          for m in ("lif", "ratebp") for t in MEMORY_T}
    pairs = [(d, seed) for d in args.datasets for seed in range(args.seeds)] if have_peer else []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        peer_runs = [pool.submit(peer_job, d, seed, out / f"peer-{d}-seed{seed}.json", args.reuse)
                     for d, seed in pairs]
        runs = dict(zip(jobs, pool.map(run_job, jobs.values(), [args.reuse] * len(jobs)), strict=True))
        memory = dict(zip(probes, pool.map(run_job, probes.values(), [args.reuse] * len(probes)), strict=True))
        peers = {d: [f.result() for (pd, _), f in zip(pairs, peer_runs, strict=True) if pd == d]
                 for d in args.datasets}
    base = {"seeds": args.seeds, "T": T_DEFAULT, "threads a job": 1}
    for d in args.datasets:
        rows = [classify_row(m, LABELS[m], runs[d, m]) for m in METHODS]
        epochs = runs[d, "lif"]["epochs"]
        write_results(Results(table=f"classify_{d}", rows=rows, settings={**base, "epochs": epochs}, **prov))
    if probes:
        rows = [memory_row(m, {t: memory[m, t] for t in MEMORY_T}) for m in ("lif", "ratebp")]
        write_results(Results(table="classify_memory", rows=rows,
                              settings={"dataset": "mnist5k", "epochs": 1, "T": list(MEMORY_T)}, **prov))
    if have_peer:
        write_results(Results(table="classify_spikingjelly", rows=[peer_row(d, peers[d]) for d in args.datasets],
                              settings={"seeds": args.seeds}, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
