"""Speed and memory of the neuron core's multi-step LIF against SpikingJelly and snnTorch, side by side.

    python scripts/bench_neurons.py [--repeats 15] [--budget 120] [--threads 1 2] [--no-install] [--doc FILE]

Contenders, all with the same dynamics (τ = 4, θ = 0.5, hard reset to 0,
no input decay: H = (1 - 1/τ) V + X, as the NeRF student runs them; ATan
surrogate with α = 2, reset not detached):

- spiknerf binary and ternary: ``BinaryLIF`` / ``TernaryLIF`` (one fused autograd node);
- SpikingJelly ``LIFNode(step_mode="m")`` (installed if missing with
  ``pip install --no-deps spikingjelly loguru tqdm``: its declared dependencies
  would pull another torch; ``--no-install`` skips that);
- snnTorch ``Leaky(reset_mechanism="zero", reset_delay=False)`` stepped over T
  (``reset_delay=False`` resets in the step that fires, as the others do).

Each repeat times one forward+backward of every contender at every thread
count, in a rotating order, so that load from other jobs on the machine hits
all of them alike; the table gives medians. After 3 repeats a shape stops
once ``--budget`` seconds have passed: on a loaded 2-core machine two threads
can be very slow, and the whole run stays under about 10 minutes. Memory: the bytes autograd saves
for backward (:class:`spiknerf.bench.memory.SavedTensorMeter`), and the peak
RSS growth of one forward+backward in a fresh process (``VmHWM`` after
resetting it through ``/proc/self/clear_refs``; inputs and gradient of the
output are allocated before). Before timing, every peer's spikes and input
gradients are compared with the core's binary LIF.

The "Neuron core speed" block of ``--doc`` (between its markers) is replaced,
or appended; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor

from spiknerf.bench.memory import SavedTensorMeter
from spiknerf.benchmarks_doc import write_section
from spiknerf.neurons import BinaryLIF, TernaryLIF

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Neuron core speed"
SHAPES: tuple[tuple[int, int, int], ...] = ((4, 1024, 256), (2, 65536, 64), (16, 256, 512))
TAU, THRESHOLD, ALPHA = 4.0, 0.5, 2.0
CONTENDERS = ("spiknerf binary", "spiknerf ternary", "SpikingJelly LIFNode", "snnTorch Leaky")
REFERENCE = "spiknerf binary"
PEERS = {"SpikingJelly LIFNode": "spikingjelly.activation_based.neuron", "snnTorch Leaky": "snntorch"}

Neuron = Callable[[Tensor], Tensor]


def spiknerf_neuron(kind: str) -> Neuron:
    cls = BinaryLIF if kind == "binary" else TernaryLIF
    return cls(tau=TAU, v_threshold=THRESHOLD, surrogate="atan", alpha=ALPHA, reset="hard", decay_input=False)


def spikingjelly_neuron() -> Neuron:
    from spikingjelly.activation_based import neuron, surrogate

    kwargs = dict(tau=TAU, decay_input=False, v_threshold=THRESHOLD, v_reset=0.0,
                  surrogate_function=surrogate.ATan(alpha=ALPHA), detach_reset=False, step_mode="m")
    if "backend" in inspect.signature(neuron.LIFNode).parameters:  # before 2.0: pick the pure-torch one
        kwargs["backend"] = "torch"
    node = neuron.LIFNode(**kwargs)

    def run(x: Tensor) -> Tensor:
        node.reset()  # SpikingJelly keeps V between calls
        return node(x)

    return run


def snntorch_neuron() -> Neuron:
    import snntorch

    leaky = snntorch.Leaky(beta=1.0 - 1.0 / TAU, threshold=THRESHOLD, spike_grad=snntorch.surrogate.atan(ALPHA),
                           reset_mechanism="zero", reset_delay=False)

    def run(x: Tensor) -> Tensor:
        mem, out = leaky.reset_mem(), []
        for t in range(x.shape[0]):
            spk, mem = leaky(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run


def build(name: str) -> Neuron:
    if name.startswith("spiknerf"):
        return spiknerf_neuron(name.split()[1])
    return spikingjelly_neuron() if name.startswith("SpikingJelly") else snntorch_neuron()


def peer_versions() -> dict[str, str]:
    """Version of each peer whose API imports; a missing peer is left out (and said so)."""
    found = {}
    for name, module in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            print(f"{name}: {module} does not import ({exc}); left out", file=sys.stderr)
            continue
        found[name] = metadata.version(module.split(".")[0])
    return found


def inputs(shape: tuple[int, ...], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Input currents (about a third of the neurons fire each step) and a gradient for the spikes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 0.5 + 0.3
    return x.requires_grad_(), torch.randn(shape, generator=g)


def forward_backward(neuron: Neuron, x: Tensor, grad: Tensor) -> tuple[Tensor, float, float]:
    """Spikes, forward seconds and backward seconds of one pass."""
    x.grad = None
    t0 = time.perf_counter()
    s = neuron(x)
    t1 = time.perf_counter()
    s.backward(grad)
    return s.detach(), t1 - t0, time.perf_counter() - t1


def agreement(names: list[str], shape: tuple[int, ...]) -> dict[str, dict]:
    """Per contender: its spike rate, and (binary ones) the share of spikes equal to the reference's and the
    largest difference of the input gradient from it."""
    x, grad = inputs(shape)
    ref, _, _ = forward_backward(build(REFERENCE), x, grad)
    ref_grad = x.grad.clone()
    out = {}
    for name in names:
        s, _, _ = forward_backward(build(name), x, grad)
        binary = name != "spiknerf ternary"
        out[name] = {"rate": float((s != 0).float().mean()),
                     "agree": float((s == ref).float().mean()) if binary else None,
                     "grad_diff": float((x.grad - ref_grad).abs().max()) if binary else None}
    return out


def saved_bytes(name: str, shape: tuple[int, ...]) -> int:
    """Bytes autograd keeps for the backward of one forward pass (distinct storages)."""
    neuron, (x, grad) = build(name), inputs(shape)
    meter = SavedTensorMeter()
    with meter:
        s = neuron(x)
    s.backward(grad)
    return meter.peak_bytes


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_growth_mb(name: str, shape: tuple[int, ...]) -> float | None:
    """Peak RSS growth of one forward+backward in this (fresh) process, after one warm-up pass."""
    torch.set_num_threads(1)
    neuron, (x, grad) = build(name), inputs(shape)
    forward_backward(neuron, x, grad)  # first-use allocations (thread pools, caches) are not the neuron's
    x.grad = None
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return None
    base = _status_kb("VmRSS")
    forward_backward(neuron, x, grad)
    return (_status_kb("VmHWM") - base) / 1024


def rss_in_fresh_process(name: str, shape: tuple[int, ...]) -> float | None:
    """:func:`rss_growth_mb` in a new interpreter, with glibc's mmap threshold fixed at 128 KiB: blocks
    above it are mapped and given back when freed, so the peak RSS follows the bytes alive (by default
    the threshold grows with freed blocks, and freed memory that stays in the heap hides new allocations)."""
    cmd = [sys.executable, __file__, "--rss", name, *map(str, shape)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False, env=env)
    if proc.returncode != 0:
        print(f"RSS probe of {name} at {shape} failed", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_all(names: list[str], shape: tuple[int, ...], threads: list[int], repeats: int, budget: float) -> dict:
    """Median forward and forward+backward seconds per (contender, threads), interleaved per repeat; stops
    after ``repeats`` repeats, or after 3 once ``budget`` seconds have passed (two threads can be very slow
    on a loaded machine)."""
    neurons = {name: build(name) for name in names}
    x, grad = inputs(shape)
    runs = [(name, n) for n in threads for name in names]
    for name, n in runs:  # warm-up
        torch.set_num_threads(n)
        forward_backward(neurons[name], x, grad)
    fwd: dict = {r: [] for r in runs}
    total: dict = {r: [] for r in runs}
    start = time.perf_counter()
    for rep in range(repeats):
        if rep >= 3 and time.perf_counter() - start > budget:
            break
        k = rep % len(runs)
        for name, n in runs[k:] + runs[:k]:  # rotate the order so no contender always runs first
            torch.set_num_threads(n)
            _, f, b = forward_backward(neurons[name], x, grad)
            fwd[name, n].append(f)
            total[name, n].append(f + b)
    return {r: {"fwd": statistics.median(fwd[r]), "total": statistics.median(total[r]), "n": len(total[r])}
            for r in runs}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def verdicts(r: dict, names: list[str], threads: list[int]) -> list[str]:
    """Ours against the fastest peer at one thread and with the best thread count of each."""
    peers = [n for n in names if not n.startswith("spiknerf")]
    if not peers:
        return []
    shape = " × ".join(map(str, r["shape"]))
    out = []
    for label, pick in (("1 thread", lambda name: r["timing"][name, 1]["total"]),
                        ("best thread count", lambda name: min(r["timing"][name, n]["total"] for n in threads))):
        if label == "1 thread" and 1 not in threads:
            continue
        fastest, who = min((pick(n), n) for n in peers)
        for ours in ("spiknerf binary", "spiknerf ternary"):
            out.append(f"{shape}, {label}: {ours} {ms(pick(ours))} ms vs {who} {ms(fastest)} ms: "
                       f"{fastest / pick(ours):.2f}x")
    return out


def section(results: list[dict], names: list[str], peers: dict[str, str], threads: list[int], command: str,
            took: float) -> str:
    sj = ("SpikingJelly `LIFNode(decay_input=False, v_reset=0.0, detach_reset=False, step_mode='m')` (2.x has "
          "no `backend` option; on the CPU it runs its own fused `sj_lif` op: a torch step loop and a hand-written "
          "backward). " if "SpikingJelly LIFNode" in peers else "")
    snn = (f"snnTorch `Leaky(beta={1 - 1 / TAU:g}, reset_mechanism='zero', reset_delay=False)` called once per "
           "step; it fires at H > θ where the others fire at H ≥ θ. " if "snnTorch Leaky" in peers else "")
    missing = [n for n in PEERS if n not in peers]
    counts = [v["n"] for r in results for v in r["timing"].values()]
    repeats = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    lines = [
        SECTION,
        "",
        f"Command: `{command}` ({took / 60:.1f} min on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}). The machine is shared with other jobs, so "
        "timings are indicative: all contenders ran interleaved in one process (order rotated each repeat) so "
        f"that load hits them alike, and the table gives medians of {repeats} repeats. When other jobs keep "
        "both cores busy, the 2-thread columns swing by orders of magnitude from run to run (each parallel "
        "region waits for a descheduled thread); the 1-thread columns stay comparable.",
        "",
        (f"Dynamics, the same for all: τ = {TAU:g}, θ = {THRESHOLD}, hard reset to 0, no input decay "
        "(H = (1 - 1/τ) V + X, as the NeRF student runs its neurons), reset not detached, ATan surrogate "
        f"(α/2) / (1 + (π α x / 2)²) with α = {ALPHA:g}, float32. spiknerf: `BinaryLIF` / `TernaryLIF` (ternary "
        "fires 1 at θ and 2 at θ + 1), one fused autograd node with a hand-written BPTT that saves only its input, "
        "its forward and backward each compiled by TorchInductor into one loop (a few seconds once per process "
        "and shape family, spent in the untimed warm-up pass; how it is made fast: the docstring of "
        "spiknerf/neurons/dynamics.py). "
        f"Peers: {', '.join(f'{n} {v}' for n, v in peers.items()) or 'none'}. " + sj + snn
        + (f"Left out (does not import): {', '.join(missing)}." if missing else "")).rstrip(),
        "",
        "Columns: median milliseconds of one forward+backward (backward of the spikes against a random "
        f"gradient) with torch.set_num_threads(n), and of the forward alone with n = {min(threads)}; MB saved "
        "for backward (SavedTensorMeter: distinct storages, inputs included); peak RSS growth of one "
        "forward+backward in a fresh process with 1 thread (spikes, input gradient, saved tensors and "
        "temporaries; inputs allocated before; "
        "glibc's mmap threshold fixed at 128 KiB so that freed blocks leave the RSS); share of firing neurons; "
        "share of spikes equal to spiknerf binary's, and the largest difference of the input gradient from it.",
        "",
        "| T × B × N | neuron | " + " | ".join(f"fwd+bwd ms, {n} thr" for n in threads)
        + " | fwd ms | saved MB | peak RSS growth MB | firing | spikes = binary | max Δ grad |",
        "|---|---|" + "---|" * len(threads) + "---|---|---|---|---|---|",
    ]
    for r in results:
        shape = " × ".join(map(str, r["shape"]))
        for name in names:
            tm, ag, rss = r["timing"], r["agree"][name], r["rss"][name]
            agree = "—" if ag["agree"] is None else f"{100 * ag['agree']:.4f}%"
            diff = "—" if ag["grad_diff"] is None else f"{ag['grad_diff']:.1e}"
            lines.append(
                f"| {shape} | {name} | " + " | ".join(ms(tm[name, n]["total"]) for n in threads)
                + f" | {ms(tm[name, min(threads)]['fwd'])} | {r['saved'][name] / 2**20:.1f} | "
                + ("n/a" if rss is None else f"{rss:.0f}") + f" | {ag['rate']:.3f} | {agree} | {diff} |")
    lines += ["", "Ours against the fastest peer (x > 1: ours faster; the peers have no ternary neuron, so the "
              "ternary one is compared with their binary LIF):", ""]
    lines += [f"- {v}" for r in results for v in verdicts(r, names, threads)]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15, help="timed passes per contender and thread count")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    p.add_argument("--budget", type=float, default=120.0, help="seconds of timing per shape after 3 repeats")
    p.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--no-install", action="store_true", help="do not pip-install SpikingJelly when missing")
    p.add_argument("--rss", nargs=4, metavar=("NEURON", "T", "B", "N"), help=argparse.SUPPRESS)  # internal probe
    args = p.parse_args(argv)
    if args.repeats < 1 or min(args.threads) < 1:
        p.error("--repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.rss:
        print(json.dumps(rss_growth_mb(args.rss[0], tuple(int(v) for v in args.rss[1:]))))
        return
    start = time.perf_counter()
    from spiknerf.bench.peer_spikingjelly import ensure_spikingjelly

    ensure_spikingjelly(not args.no_install)
    peers = peer_versions()
    names = [n for n in CONTENDERS if n.startswith("spiknerf") or n in peers]
    results = []
    for shape in SHAPES:
        r = {"shape": shape, "agree": agreement(names, shape),
             "saved": {n: saved_bytes(n, shape) for n in names},
             "rss": {n: rss_in_fresh_process(n, shape) for n in names},
             "timing": time_all(names, shape, args.threads, args.repeats, args.budget)}
        results.append(r)
        print(shape, {f"{k[0]}@{k[1]}": ms(v["total"]) for k, v in r["timing"].items()}, file=sys.stderr)
    argv_text = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
    command = "python scripts/bench_neurons.py" + (f" {argv_text}" if argv_text else "")
    text = section(results, names, peers, args.threads, command, time.perf_counter() - start)
    write_section(Path(args.doc), SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
