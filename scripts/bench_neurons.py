"""Speed and memory of the neuron core's multi-step LIF against SpikingJelly and snnTorch, side by side.

    python scripts/bench_neurons.py [--repeats 15] [--budget 120] [--threads 1 2] [--no-install]

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
can be very slow, and the whole run stays short. Memory: the bytes autograd saves
for backward (:class:`spiknerf.bench.memory.SavedTensorMeter`), and the peak
RSS growth of one forward+backward in a fresh process (``VmHWM`` after
resetting it, :func:`spiknerf.results.measure.rss_growth_mb`; inputs and
gradient of the output are allocated before). Before timing, every peer's
spikes and input gradients are compared with the core's binary LIF.

Writes ``docs/results/neuron_speed.json`` and regenerates the docs.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata

import torch
from torch import Tensor

from spiknerf.bench.memory import SavedTensorMeter
from spiknerf.neurons import BinaryLIF, TernaryLIF
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.measure import rss_growth_mb

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


def rss_probe(name: str, shape: tuple[int, ...]) -> float | None:
    """Peak RSS growth of one forward+backward in this (fresh) process, after one warm-up pass."""
    torch.set_num_threads(1)
    neuron, (x, grad) = build(name), inputs(shape)
    forward_backward(neuron, x, grad)  # first-use allocations (thread pools, caches) are not the neuron's
    x.grad = None
    return rss_growth_mb(lambda: forward_backward(neuron, x, grad))


def rss_in_fresh_process(name: str, shape: tuple[int, ...]) -> float | None:
    """:func:`rss_probe` in a new interpreter, with glibc's mmap threshold fixed at 128 KiB: blocks
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


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15, help="timed passes per contender and thread count")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    p.add_argument("--budget", type=float, default=120.0, help="seconds of timing per shape after 3 repeats")
    p.add_argument("--no-install", action="store_true", help="do not pip-install SpikingJelly when missing")
    p.add_argument("--rss", nargs=4, metavar=("NEURON", "T", "B", "N"), help=argparse.SUPPRESS)  # internal probe
    args = p.parse_args(argv)
    if args.repeats < 1 or min(args.threads) < 1:
        p.error("--repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.rss:
        print(json.dumps(rss_probe(args.rss[0], tuple(int(v) for v in args.rss[1:]))))
        return
    argv_text = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
    command = "python scripts/bench_neurons.py" + (f" {argv_text}" if argv_text else "")
    prov = provenance(command)
    start = time.perf_counter()
    from spiknerf.bench.peer_spikingjelly import ensure_spikingjelly

    ensure_spikingjelly(not args.no_install)
    peers = peer_versions()
    names = [n for n in CONTENDERS if n.startswith("spiknerf") or n in peers]
    rows = []
    for shape in SHAPES:
        agree = agreement(names, shape)
        saved = {n: saved_bytes(n, shape) for n in names}
        rss = {n: rss_in_fresh_process(n, shape) for n in names}
        timing = time_all(names, shape, args.threads, args.repeats, args.budget)
        for n in names:
            rows.append({"shape": list(shape), "neuron": n,
                         "fwd_bwd_ms": {str(k): timing[n, k]["total"] * 1e3 for k in args.threads},
                         "fwd_ms": timing[n, min(args.threads)]["fwd"] * 1e3, "saved_mb": saved[n] / 2**20,
                         "rss_growth_mb": rss[n], "firing": agree[n]["rate"],
                         "agree_pct": None if agree[n]["agree"] is None else 100 * agree[n]["agree"],
                         "grad_diff": agree[n]["grad_diff"], "repeats": timing[n, min(args.threads)]["n"]})
        print(shape, {f"{k[0]}@{k[1]}": f"{v['total'] * 1e3:.1f}" for k, v in timing.items()}, file=sys.stderr)
    settings = {"threads": args.threads, "repeats": args.repeats, "budget s": args.budget, "peers": peers}
    write_results(Results(table="neuron_speed", rows=rows, settings=settings,
                          summary={"wall_min": (time.perf_counter() - start) / 60}, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")


if __name__ == "__main__":
    main()
