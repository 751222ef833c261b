"""Run every temporal task with every neuron over several seeds; write docs/results/temporal*.json.

    python scripts/bench_temporal.py [--seeds 3] [--small 16] [--out runs/bench/temporal]

Each (task, neuron) pair is one ``spiknerf bench temporal`` job (JSON record
under ``--out``); the fewer-neurons rows rerun dms and vowels with ``--small``
hidden neurons. First, each in a fresh process, the peak RSS growth of one
training step of lif, of hetsyn, and of per-synapse state run through plain
autograd (``--probe``). Then the docs are regenerated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from spiknerf.bench.recurrent import NEURONS, RecurrentSNN, temporal_neuron
from spiknerf.bench.temporal import SETTINGS, TASKS, TemporalConfig, main
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.measure import rss_growth_mb
from spiknerf.results.reports import (
    TEMPORAL_METRICS,
    temporal_cost_rows,
    temporal_noise_rows,
    temporal_rows,
    temporal_tau_rows,
)

SMALL_TASKS = ("dms", "vowels")
PROBE_SIZE = {"steps": 50, "batch": 32, "inputs": 32, "hidden": 256}
PROBES = {"lif": "lif", "hetsyn": "hetsyn", "naive": "per-synapse state through plain autograd"}


def probe(kind: str) -> float | None:
    """MB by which one training step (forward, backward, Adam) raises this process's peak RSS."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    T, B, n_in, n = PROBE_SIZE.values()
    x, y = (torch.rand(T, B, n_in) < 0.2).float(), torch.randint(0, 10, (B,))
    model = RecurrentSNN(temporal_neuron("lif" if kind == "lif" else "hetsyn", n_in, n, 10.0, 3.0, 3.0), 10)
    opt = torch.optim.Adam(model.parameters())

    def step() -> None:
        if kind == "naive":
            state, spikes = None, []
            for t in range(T):
                z, state = model.layer.step(x[t], state)
                spikes.append(z)
            logits = model.readout(torch.stack(spikes))
        else:
            logits, _ = model(x)
        F.cross_entropy(logits, y).backward()
        opt.step()

    return rss_growth_mb(step)


def rss_growth(kind: str) -> float | None:
    """:func:`probe` in a fresh process, so that nothing allocated before counts."""
    out = subprocess.run([sys.executable, __file__, "--probe", kind], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.split()[-1])


def run(task: str, neuron: str, seeds: int, out: Path, hidden: int | None = None) -> dict:
    name = f"{task}-{neuron}" + (f"-h{hidden}" if hidden else "")
    path = out / f"{name}.json"
    cfg = TemporalConfig(task=task, neuron=neuron, hidden=hidden, seeds=seeds, json=str(path), tb=str(out / "tb"))
    if main(cfg) != 0:
        raise SystemExit(f"{name} failed")
    return json.loads(path.read_text())


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per (task, neuron)")
    p.add_argument("--small", type=int, default=16, help="hidden neurons of the fewer-neurons runs")
    p.add_argument("--out", default="runs/bench/temporal", help="folder for the JSON records and TensorBoard logs")
    p.add_argument("--probe", choices=tuple(PROBES), help="internal: print one training step's RSS growth and exit")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.small < 1:
        p.error("--seeds and --small must be >= 1")
    return args


def bench(argv: list[str]) -> int:
    args = parse(argv)
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return 0
    out = Path(args.out)
    prov = provenance(" ".join(["python scripts/bench_temporal.py", *argv]))
    t0 = time.time()
    rss = {kind: rss_growth(kind) for kind in PROBES}
    results = {(t, n): run(t, n, args.seeds, out) for t in TASKS for n in NEURONS}
    small = {(t, n): run(t, n, args.seeds, out, args.small) for t in SMALL_TASKS for n in NEURONS}
    per_task = {t: {"hidden": s.hidden, "epochs": s.epochs, "tau": s.tau, "spread": s.tau_spread,
                    **({"hetsyn spread": s.synapse_spread} if s.synapse_spread else {})} for t, s in SETTINGS.items()}
    settings = {"seeds": args.seeds, "threads a job": TemporalConfig().threads, **per_task}
    initial = {t: (s.tau / s.spread("hetsyn"), s.tau * s.spread("hetsyn")) for t, s in SETTINGS.items()}
    small_metrics = tuple(m for m in TEMPORAL_METRICS if m[0] in SMALL_TASKS and m[1] != "nmse")
    tables = {
        "temporal": (temporal_rows(results, NEURONS), settings),  # its summary: the wall time, below
        "temporal_noise": (temporal_noise_rows(results, TASKS, NEURONS), {}),
        "temporal_small": (temporal_rows(small, NEURONS, small_metrics), {"hidden": args.small}),
        "temporal_cost": (temporal_cost_rows(results, TASKS, NEURONS), {}),
        "temporal_rss": ([{"model": label, "rss_growth_mb": rss[kind],
                           "vs_lif": None if kind == "lif" or not rss["lif"] or rss[kind] is None
                           else rss[kind] / rss["lif"]} for kind, label in PROBES.items()], PROBE_SIZE),
        "temporal_tau": (temporal_tau_rows(results, TASKS, initial), {}),
    }
    wall = {"wall_min": (time.time() - t0) / 60}
    for table, (rows, table_settings) in tables.items():
        write_results(Results(table=table, rows=rows, settings=table_settings,
                              summary=wall if table == "temporal" else {}, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(bench(sys.argv[1:]))
