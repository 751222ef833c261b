"""Re-run the validation sweeps behind two benchmark settings; the test sets are never touched.

    python scripts/validate_settings.py [--only vowels|ltmd|epochs]

* vowels (temporal benchmark): the initial τ spread of hetsyn and hetneuron, 1.5 / 2 / 3, on 3 folds of
  the JapaneseVowels training set (each fold holds out a third).
* ltmd (classification benchmark): the moderate-dropout rate 0.1 / 0.2 / 0.3, and lif for reference, on
  MNIST-5k and digits, holding out a fifth of the training split of seeds 0 and 1.
* epochs (classification benchmark): the MNIST-5k training budget, 30 or 60 epochs, for lif and ltmd,
  holding out a fifth of the training split of seeds 0 to 3.

Prints one line per setting (the validation accuracy of each fold or seed and their mean), writes each sweep
to ``docs/results/validation_<sweep>.json`` and regenerates the docs.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from spiknerf.bench import temporal
from spiknerf.bench.classifier import Data, Settings
from spiknerf.bench.classify import EPOCHS, METHODS, SHIFT, ltmd_runner
from spiknerf.bench.datasets import load_dataset, split
from spiknerf.bench.tasks import SequenceData, load_vowels
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate

SPREADS = (1.5, 2.0, 3.0)
DROP_RATES = (0.1, 0.2, 0.3)
FOLDS = 3
SEEDS = (0, 1)
EPOCH_BUDGETS = (30, 60)
EPOCH_SEEDS = (0, 1, 2, 3)


Row = dict


def report(rows: list[Row], dataset: str, model: str, accs: list[float]) -> None:
    """Print one setting's validation accuracies and keep them as a row (percent)."""
    print(f"{dataset} {model}: {' / '.join(f'{100 * a:.2f}' for a in accs)} -> mean {100 * np.mean(accs):.2f} %",
          flush=True)
    rows.append({"dataset": dataset, "model": model, "accuracy": 100 * float(np.mean(accs)),
                 "per_split": [100 * a for a in accs]})


def vowels() -> tuple[list[Row], dict]:
    data = load_vowels()
    perm = torch.randperm(data.x_train.shape[1], generator=torch.Generator().manual_seed(123))
    everyone = torch.arange(len(perm))
    base = temporal.SETTINGS["vowels"]
    rows: list[Row] = []
    try:
        for neuron in ("hetsyn", "hetneuron"):
            for spread in SPREADS:
                # both fields set: the sweep fixes the spread whichever neuron reads it
                temporal.SETTINGS["vowels"] = dataclasses.replace(base, tau_spread=spread, synapse_spread=spread)
                accs = []
                for fold in range(FOLDS):
                    held = perm[fold::FOLDS]
                    kept = everyone[~torch.isin(everyone, held)]
                    sub = SequenceData(data.x_train[:, kept], data.y_train[kept], data.x_train[:, held],
                                       data.y_train[held])
                    cfg = temporal.TemporalConfig(task="vowels", neuron=neuron, seeds=1, seed=fold,
                                                  tb="runs/validate/vowels", noise="")
                    accs.append(temporal.run_seed(cfg, fold, [], sub)["accuracy"])
                report(rows, "vowels", f"{neuron} spread {spread:g}", accs)
    finally:
        temporal.SETTINGS["vowels"] = base
    return rows, {"splits": f"{FOLDS} folds of the JapaneseVowels training set"}


def validation_accuracy(runner, dataset: str, seed: int, epochs: int) -> float:
    """Train on four fifths of ``seed``'s training split, score on the fifth held out."""
    x_train, y_train, _, _ = split(*load_dataset(dataset), seed)
    xa, ya, xb, yb = split(x_train, y_train, seed + 100)
    data = Data(*map(torch.from_numpy, (xa, ya, xb, yb)), side=int(round(xa.shape[1] ** 0.5)))
    torch.manual_seed(seed)
    return runner(data, Settings(T=4, epochs=epochs, shift=SHIFT[dataset], seed=seed), None).accuracy


def ltmd() -> tuple[list[Row], dict]:
    rows: list[Row] = []
    for dataset in ("mnist5k", "digits"):
        for p in (None, *DROP_RATES):  # None: lif, for reference
            runner = METHODS["lif"] if p is None else ltmd_runner(p)
            accs = [validation_accuracy(runner, dataset, seed, EPOCHS[dataset]) for seed in SEEDS]
            report(rows, dataset, "lif" if p is None else f"ltmd p {p:g}", accs)
    seeds = " and ".join(map(str, SEEDS))
    return rows, {"splits": f"a fifth of the training split of seeds {seeds}", "mnist5k epochs": EPOCHS["mnist5k"]}


def epochs() -> tuple[list[Row], dict]:
    rows: list[Row] = []
    for budget in EPOCH_BUDGETS:
        for method in ("lif", "ltmd"):
            accs = [validation_accuracy(METHODS[method], "mnist5k", seed, budget) for seed in EPOCH_SEEDS]
            report(rows, "mnist5k", f"{method} {budget} epochs", accs)
    return rows, {"splits": f"a fifth of the training split of seeds {EPOCH_SEEDS[0]} to {EPOCH_SEEDS[-1]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("vowels", "ltmd", "epochs"), help="run one sweep (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, sweep in (("vowels", vowels), ("ltmd", ltmd), ("epochs", epochs)):
        if args.only in (None, name):
            prov = provenance(f"python scripts/validate_settings.py --only {name}")
            rows, settings = sweep()
            write_results(Results(table=f"validation_{name}", rows=rows, settings=settings, **prov))
    regenerate()


if __name__ == "__main__":
    main()
