"""``spiknerf bench classify``: train one method on one data set over several seeds.

Methods (each a module of :mod:`spiknerf.bench`):

=========  =====================================================================
lif        BPTT, binary LIF neurons (the baseline)
ternary    BPTT, Spik-NeRF ternary neurons (spikes 0/1/2)
ltmd       learnable thresholds θ = tanh(w) + moderate dropout + consistency loss
imloss     information-maximisation loss + evolving tanh surrogate
ratebp     rate-based backpropagation (training memory constant in T)
bwsnn      binary-weight SNN (1 bit a weight) fine-tuned from the lif network: s2nn's reference
s2nn       sub-bit weights (codebook of binary blocks) + membrane distillation from the lif network
ncg        supervised STDP with neuronal competition groups, no backprop
=========  =====================================================================

The result is the mean and standard deviation over seeds (each seed draws its
own stratified train/test split and initialisation). Under ``torchrun`` (or with
``--nproc N``) the seeds are spread over the processes and gathered into one table. It is printed and, with
``--json``, written atomically; per-epoch curves go to TensorBoard.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from spiknerf import distributed
from spiknerf.atomic import write_json_atomic
from spiknerf.bench.classifier import Data, Objective, RunResult, Settings, build_network, fit
from spiknerf.bench.datasets import DATASETS, load_dataset, load_mnist_idx, split
from spiknerf.bench.imloss import IMLossObjective
from spiknerf.bench.ltmd import DROP_RATE, LTMDObjective
from spiknerf.bench.ncg import NCGSettings, fit_ncg
from spiknerf.bench.ratebp import RateBPObjective
from spiknerf.bench.s2nn import S2NNObjective
from spiknerf.bench.subbit import quantize_weights
from spiknerf.errors import InputError

ALL_DATASETS: tuple[str, ...] = (*DATASETS, "mnist")
# MNIST-5k: 60 rather than 30 on validation splits (scripts/validate_settings.py --only epochs)
EPOCHS = {"digits": 40, "mnist5k": 60, "mnist": 10}
NCG_EPOCHS = {"digits": 10, "mnist5k": 6, "mnist": 2}
SHIFT = {"digits": 0, "mnist5k": 2, "mnist": 2}
SUBBIT_BLOCK, SUBBIT_ETA = 8, 6

Runner = Callable[[Data, Settings, object], RunResult]


def _bptt(neuron: str, **kwargs) -> Runner:
    return lambda data, s, writer: fit(Objective(build_network(data, s, neuron, **kwargs)), data, s, writer)


def ltmd_runner(p: float = DROP_RATE) -> Runner:
    """LTMD at moderate-dropout rate ``p``."""

    def run(data: Data, s: Settings, writer) -> RunResult:
        model = build_network(data, s, "binary", learnable_threshold=True)
        masks = torch.Generator().manual_seed(s.seed + 1)
        return fit(LTMDObjective(model, p=p, generator=masks), data, s, writer)

    return run


def _imloss(data: Data, s: Settings, writer) -> RunResult:
    return fit(IMLossObjective(build_network(data, s, "binary", surrogate="tanh")), data, s, writer)


def _ratebp(data: Data, s: Settings, writer) -> RunResult:
    return fit(RateBPObjective(build_network(data, s, "binary")), data, s, writer)


def _from_teacher(eta: int | None) -> Runner:
    """A quantized student fine-tuned from a full-precision teacher (the lif network, trained first).

    ``eta=None``: binary weights and plain cross-entropy (the binary-weight SNN);
    else S2NN: sub-bit weights, outlier-aware scaling and membrane distillation.
    The student trains for as many epochs as the teacher; time and peak memory cover both phases.
    """

    def run(data: Data, s: Settings, writer) -> RunResult:
        teacher = build_network(data, s, "binary")
        taught = fit(Objective(teacher), data, s)
        student = copy.deepcopy(teacher)
        quantize_weights(student, SUBBIT_BLOCK, eta, outlier_aware=eta is not None)
        objective = Objective(student) if eta is None else S2NNObjective(student, teacher)
        result = fit(objective, data, s, writer)
        result.train_seconds += taught.train_seconds
        result.peak_memory_bytes = max(result.peak_memory_bytes, taught.peak_memory_bytes)
        result.extra["teacher_accuracy"] = taught.accuracy
        return result

    return run


def _ncg(data: Data, s: Settings, writer) -> RunResult:
    return fit_ncg(data, NCGSettings(T=s.T, epochs=s.epochs, seed=s.seed), writer)


METHODS: dict[str, Runner] = {
    "lif": _bptt("binary"),
    "ternary": _bptt("ternary"),
    "ltmd": ltmd_runner(),
    "imloss": _imloss,
    "ratebp": _ratebp,
    "bwsnn": _from_teacher(None),
    "s2nn": _from_teacher(SUBBIT_ETA),
    "ncg": _ncg,
}


@dataclass
class ClassifyConfig:
    """Train and evaluate one SNN classification method over several seeds."""

    dataset: str = field(default="digits", metadata={"help": "data set", "choices": ALL_DATASETS})
    method: str = field(default="lif", metadata={"help": "training method", "choices": tuple(METHODS)})
    T: int = field(default=4, metadata={"help": "time steps (ncg: steps of the first-spike code)"})
    epochs: int | None = field(default=None, metadata={
        "help": "training epochs (default by data set: "
                + ", ".join(f"{d} {EPOCHS[d]} (ncg {NCG_EPOCHS[d]})" for d in ALL_DATASETS) + ")"})
    seeds: int = field(default=3, metadata={"help": "seeds (splits and initialisations) to average over"})
    hidden: int = field(default=512, metadata={"help": "neurons per spiking layer"})
    data: str | None = field(default=None, metadata={"help": "folder of MNIST IDX files (--dataset mnist)"})
    json: str | None = field(default=None, metadata={"help": "write the results to this JSON file"})
    tb: str = field(default="runs/bench/classify", metadata={"help": "TensorBoard folder"})
    threads: int = field(default=0, metadata={
        "help": "CPU threads for torch (0: torch's default; 1 is fastest on a busy shared machine)"})
    nproc: int = field(default=1, metadata={"help": "spread the seeds over this many processes (as torchrun "
                                                    "--nproc-per-node does; under torchrun leave it out)"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)} (got {self.method!r})")
        if self.dataset not in ALL_DATASETS:
            raise InputError(f"--dataset must be one of {', '.join(ALL_DATASETS)} (got {self.dataset!r})")
        if self.threads < 0:
            raise InputError(f"--threads must be >= 0 (got {self.threads})")
        for name in ("T", "seeds", "hidden"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name} must be >= 1 (got {getattr(self, name)})")
        if self.epochs is not None and self.epochs < 1:
            raise InputError(f"--epochs must be >= 1 (got {self.epochs})")
        if (self.dataset == "mnist") != (self.data is not None):
            raise InputError("--data DIR goes with --dataset mnist, and only with it")


def load_data(cfg: ClassifyConfig, seed: int) -> Data:
    """The seed's split of the chosen data set (MNIST IDX: its own fixed train/test split)."""
    if cfg.dataset == "mnist":
        xtr, ytr = load_mnist_idx(cfg.data, "train")
        xte, yte = load_mnist_idx(cfg.data, "test")
    else:
        xtr, ytr, xte, yte = split(*load_dataset(cfg.dataset), seed)
    side = int(round(xtr.shape[1] ** 0.5))
    classes = int(max(ytr.max(), yte.max())) + 1
    return Data(*map(torch.from_numpy, (xtr, ytr, xte, yte)), side=side, classes=classes)


def settings(cfg: ClassifyConfig, seed: int) -> Settings:
    default = (NCG_EPOCHS if cfg.method == "ncg" else EPOCHS)[cfg.dataset]
    return Settings(T=cfg.T, epochs=cfg.epochs or default, hidden=cfg.hidden,
                    shift=SHIFT[cfg.dataset], seed=seed)


def _writer(cfg: ClassifyConfig, seed: int):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(Path(cfg.tb) / f"{cfg.dataset}-{cfg.method}-T{cfg.T}" / f"seed{seed}"))


def _mean_dict(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]} if dicts else {}


def summarize(cfg: ClassifyConfig, epochs: int, results: list[RunResult]) -> dict:
    """The JSON record: means over seeds (and the accuracy of each seed)."""
    accs = [r.accuracy for r in results]
    return {
        "dataset": cfg.dataset,
        "method": cfg.method,
        "T": cfg.T,
        "seeds": cfg.seeds,
        "epochs": epochs,
        "hidden": cfg.hidden,
        "accuracy": statistics.fmean(accs),
        "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "accuracy_per_seed": accs,
        "train_seconds": statistics.fmean(r.train_seconds for r in results),
        "peak_memory_mb": max(r.peak_memory_bytes for r in results) / 2**20,
        "bits_per_weight": results[0].bits_per_weight,
        "sops_per_sample": statistics.fmean(r.sops_per_sample for r in results),
        "firing_rate": _mean_dict([r.firing_rate for r in results]),
        "extra": _mean_dict([r.extra for r in results]),
    }


def run_seed(cfg: ClassifyConfig, seed: int) -> RunResult:
    """Train and test the method on one seed's split and initialisation."""
    data = load_data(cfg, seed)
    torch.manual_seed(seed)
    writer = _writer(cfg, seed)
    try:
        return METHODS[cfg.method](data, settings(cfg, seed), writer)
    finally:
        writer.close()


def main(cfg: ClassifyConfig) -> int:
    """Train the seeds (in a job of several processes, spread over them: seed i on rank i mod N), then print and
    write their summary (rank 0)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    distributed.check_nproc(cfg.nproc)
    with distributed.session(cuda=False):
        results = []
        for seed, result in zip(range(cfg.seeds), distributed.gathered(partial(run_seed, cfg), range(cfg.seeds)),
                                strict=False):  # ranks other than 0 get no results
            results.append(result)
            print(f"  seed {seed}: accuracy {result.accuracy:.4f} ({result.train_seconds:.1f} s)", flush=True)
    if not results:  # a rank other than 0: its seeds went to rank 0
        return 0
    record = summarize(cfg, settings(cfg, 0).epochs, results)
    print(f"{cfg.method} on {cfg.dataset}, T={cfg.T}: accuracy {100 * record['accuracy']:.2f} "
          f"± {100 * record['accuracy_std']:.2f} % over {cfg.seeds} seed(s); "
          f"{record['train_seconds']:.1f} s a seed; peak training memory {record['peak_memory_mb']:.2f} MB; "
          f"{record['bits_per_weight']:.3g} bits/weight; {record['sops_per_sample']:.0f} SOPs/sample")
    if cfg.json:
        write_json_atomic(cfg.json, record)
    return 0
