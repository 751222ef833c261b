"""``spiknerf bench temporal``: LIF, ALIF and heterogeneous time constants on tasks that need memory.

One recurrent spiking layer (:mod:`spiknerf.bench.recurrent`) is trained per
seed on a task from :mod:`spiknerf.bench.tasks` (Adam, cosine learning-rate
decay, gradient norm clipped at 1), then tested clean and under the ``--noise``
levels of input noise (:mod:`spiknerf.bench.temporal_protocols`). Robustness to
fewer neurons is a run with a smaller ``--hidden``.

Results (mean and population std over seeds, and each seed) go to ``--json``;
training loss, test metrics and, for the heterogeneous neurons, histograms of
the learned time constants go to TensorBoard under ``--tb``.
``peak_memory_mb`` is the training footprint of one step: tensors saved for
backward (SavedTensorMeter), HetSyn's per-synapse backward buffers
(``workspace_bytes``), parameters, gradients and Adam state. ``peak_rss_mb`` is
the process's peak resident memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spiknerf import distributed
from spiknerf.atomic import write_json_atomic
from spiknerf.bench.memory import SavedTensorMeter, state_bytes
from spiknerf.bench.recurrent import NEURONS, RecurrentSNN, temporal_neuron
from spiknerf.bench.tasks import SequenceData, load_smnist, load_vowels
from spiknerf.bench.temporal_protocols import DMSProtocol, PatternProtocol, Protocol, SequenceProtocol
from spiknerf.errors import InputError
from spiknerf.results.measure import peak_rss_mb

TASKS: tuple[str, ...] = ("pattern", "dms", "vowels", "smnist")


@dataclass(frozen=True)
class TaskSettings:
    """Per-task defaults (an epoch is one pass over the data; see temporal_protocols for pattern and dms)."""

    hidden: int
    epochs: int
    batch_size: int
    lr: float
    tau: float  # membrane τ of lif/alif and the centre of the heterogeneous initial τ
    tau_spread: float  # heterogeneous τ start log-uniform in [tau / spread, tau * spread]
    weight_gain: float
    augment: float = 0.0  # training input noise (analog tasks), in the units of --noise
    synapse_spread: float | None = None  # hetsyn's own spread where it differs from tau_spread

    def spread(self, neuron: str) -> float:
        """The initial τ spread of a heterogeneous neuron."""
        return self.synapse_spread if neuron == "hetsyn" and self.synapse_spread else self.tau_spread


SETTINGS: dict[str, TaskSettings] = {
    "pattern": TaskSettings(hidden=64, epochs=30, batch_size=1, lr=1e-2, tau=10.0, tau_spread=4.0, weight_gain=3.0),
    "dms": TaskSettings(hidden=64, epochs=30, batch_size=64, lr=1e-2, tau=10.0, tau_spread=4.0, weight_gain=3.0),
    # vowels: the spreads were picked on validation folds of the training set (docs/results/validation_vowels.json)
    "vowels": TaskSettings(hidden=64, epochs=60, batch_size=30, lr=1e-2, tau=5.0, tau_spread=3.0, weight_gain=3.0,
                           augment=0.5, synapse_spread=1.5),
    "smnist": TaskSettings(hidden=64, epochs=12, batch_size=100, lr=1e-2, tau=5.0, tau_spread=3.0, weight_gain=3.0),
}


@dataclass
class TemporalConfig:
    """Temporal SNN benchmark: recurrent LIF, ALIF, per-neuron and per-synapse (HetSyn) time constants."""

    task: str = field(default="vowels", metadata={"help": "task", "choices": TASKS})
    neuron: str = field(default="hetsyn", metadata={"help": "neuron model", "choices": NEURONS})
    hidden: int | None = field(default=None, metadata={"help": "recurrent neurons; unset: the task's default"})
    epochs: int | None = field(default=None, metadata={"help": "training epochs; unset: the task's default"})
    seeds: int = field(default=3, metadata={"help": "number of seeds, starting at --seed"})
    seed: int = field(default=0, metadata={"help": "first seed"})
    noise: str = field(default="0.1,0.2,0.4", metadata={"help": "comma-separated input noise levels to test"})
    json: str | None = field(default=None, metadata={"help": "write results to this JSON file"})
    tb: str = field(default="runs/bench/temporal", metadata={"help": "TensorBoard folder"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    nproc: int = field(default=1, metadata={"help": "spread the seeds over this many processes (as torchrun "
                                                    "--nproc-per-node does; under torchrun leave it out)"})


def check_config(cfg: TemporalConfig) -> list[float]:
    """Raise InputError naming the first bad option; return the parsed noise levels."""
    if cfg.task not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)} (got {cfg.task!r})")
    if cfg.neuron not in NEURONS:
        raise InputError(f"--neuron must be one of {', '.join(NEURONS)} (got {cfg.neuron!r})")
    for name in ("hidden", "epochs", "seeds", "threads"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise InputError(f"--{name} must be >= 1 (got {value})")
    try:
        levels = [float(v) for v in cfg.noise.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--noise must be comma-separated numbers (got {cfg.noise!r})") from None
    if any(not (v >= 0 and math.isfinite(v)) for v in levels):
        raise InputError(f"--noise levels must be finite and >= 0 (got {cfg.noise!r})")
    return levels


def make_protocol(task: str, seed: int, data: SequenceData | None) -> Protocol:
    """The training and test protocol of a task."""
    s = SETTINGS[task]
    if task == "pattern":
        return PatternProtocol(seed)
    if task == "dms":
        return DMSProtocol(seed, s.batch_size)
    return SequenceProtocol(seed, data, s.batch_size, s.augment)


def build_model(neuron: str, task: str, hidden: int, protocol: Protocol) -> RecurrentSNN:
    """The recurrent network for a task, with the task's settings."""
    s = SETTINGS[task]
    layer = temporal_neuron(neuron, protocol.n_in, hidden, s.tau, s.spread(neuron), s.weight_gain)
    return RecurrentSNN(layer, protocol.n_out, window=protocol.window, trace_tau=s.tau if protocol.trace else None)


@dataclass
class TrainStats:
    """Training time and the footprint of the first step."""

    seconds: float = 0.0
    memory_bytes: int = 0
    losses: list[float] = field(default_factory=list)


def train(
    model: RecurrentSNN,
    protocol: Protocol,
    epochs: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> TrainStats:
    """Adam with cosine decay over ``epochs``; ``on_epoch(epoch, mean loss)`` after each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(seed)
    stats, meter = TrainStats(), SavedTensorMeter()
    for epoch in range(epochs):
        losses = []
        for x, target in protocol.epoch(g):
            t0 = time.perf_counter()
            with meter:
                out, _ = model(x)
            loss = protocol.loss(out, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            stats.seconds += time.perf_counter() - t0
            losses.append(float(loss.detach()))
            if not stats.memory_bytes:
                stats.memory_bytes = (meter.peak_bytes + state_bytes(model, opt)
                                      + model.layer.workspace_bytes(x))
        sched.step()
        stats.losses.append(float(np.mean(losses)))
        on_epoch(epoch, stats.losses[-1])
    return stats


def tau_summary(taus: Tensor) -> dict[str, float]:
    """Summary statistics of learned time constants (in steps)."""
    q = torch.quantile(taus.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
    return {"mean": float(taus.mean()), "p10": q[0], "median": q[1], "p90": q[2],
            "min": float(taus.min()), "max": float(taus.max()), "count": int(taus.numel())}


def run_seed(cfg: TemporalConfig, seed: int, levels: list[float], data: SequenceData | None) -> dict:
    """Train and test one seed; returns its metrics."""
    from torch.utils.tensorboard import SummaryWriter  # imported on use: it is slow to import

    s = SETTINGS[cfg.task]
    hidden, epochs = cfg.hidden or s.hidden, cfg.epochs or s.epochs
    torch.manual_seed(seed)
    protocol = make_protocol(cfg.task, seed, data)
    model = build_model(cfg.neuron, cfg.task, hidden, protocol)
    learns_tau = cfg.neuron in ("hetneuron", "hetsyn")
    writer = SummaryWriter(str(Path(cfg.tb) / cfg.task / f"{cfg.neuron}-h{hidden}" / f"seed{seed}"))

    def on_epoch(epoch: int, loss: float) -> None:
        writer.add_scalar("train/loss", loss, epoch)
        if learns_tau:
            writer.add_histogram("tau", model.layer.time_constants(), epoch)

    try:
        stats = train(model, protocol, epochs, s.lr, seed, on_epoch)
        result = protocol.test(model, levels)
        for key in ("accuracy", "accuracy_long_delay", "nmse"):
            if key in result:
                writer.add_scalar(f"test/{key}", result[key], epochs)
    finally:
        writer.close()
    result.update(seed=seed, train_seconds=stats.seconds, peak_memory_mb=stats.memory_bytes / 2**20)
    if learns_tau:
        result["tau_synapse" if cfg.neuron == "hetsyn" else "tau_neuron"] = tau_summary(model.layer.time_constants())
    return result


def aggregate(runs: list[dict]) -> dict:
    """Mean and population std over seeds of each float metric, of each noise level and of the τ summaries."""
    out: dict = {}
    for key, value in runs[0].items():
        if isinstance(value, float):
            vals = [r[key] for r in runs]
            out[key], out[f"{key}_std"] = float(np.mean(vals)), float(np.std(vals))
        elif isinstance(value, dict):
            out[key] = {k: {"mean": float(np.mean([r[key][k] for r in runs])),
                            "std": float(np.std([r[key][k] for r in runs]))} for k in value}
    return out


def main(cfg: TemporalConfig) -> int:
    levels = check_config(cfg)
    data = {"vowels": load_vowels, "smnist": load_smnist}.get(cfg.task, lambda: None)()
    s = SETTINGS[cfg.task]
    runs, threads = [], torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    distributed.check_nproc(cfg.nproc)
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    try:
        with distributed.session(cuda=False):  # in a job: seed i on rank i mod N, all gathered on rank 0
            results = distributed.gathered(lambda seed: run_seed(cfg, seed, levels, data), seeds)
            for seed, run in zip(seeds, results, strict=False):  # ranks other than 0 get no results
                runs.append(run)
                shown = {k: round(v, 4) for k, v in run.items() if isinstance(v, float)}
                print(f"{cfg.task} {cfg.neuron} seed {seed}: {shown}", flush=True)
    finally:
        torch.set_num_threads(threads)  # a caller in the same process keeps its setting
    if not runs:  # a rank other than 0: its seeds went to rank 0
        return 0
    result = {"task": cfg.task, "neuron": cfg.neuron, "hidden": cfg.hidden or s.hidden,
              "epochs": cfg.epochs or s.epochs, "seeds": [r["seed"] for r in runs], **aggregate(runs),
              "peak_rss_mb": peak_rss_mb(), "runs": runs}
    if cfg.json:
        write_json_atomic(cfg.json, result)
    return 0
