"""On-disk cache of derived arrays (downscaled images), never beside the user's data.

An entry is keyed by what it was made from: the absolute path, size and
modification time of every source file, plus the parameters. Editing a source
image or changing the downscale factor therefore makes a new entry. Entries are
written atomically, so a run killed mid-write leaves no half entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spiknerf.atomic import write_atomic
from spiknerf.errors import InputError
from spiknerf.nerf.data.arrays import read_npz

# Bump when the way cached arrays are computed changes.
CACHE_VERSION = 1


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/spiknerf``, or ``~/.cache/spiknerf``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spiknerf"


def cache_key(sources: list[Path], params: dict) -> str:
    """Hex digest identifying ``params`` applied to the current versions of ``sources``."""
    stamp = []
    for p in sources:
        st = p.stat()
        stamp.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"version": CACHE_VERSION, "params": params, "sources": stamp}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_arrays(
    path: Path, build: Callable[[], dict[str, np.ndarray]], expected: dict[str, tuple[tuple[int, ...], np.dtype]]
) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays stored at ``path`` if present, readable and of the ``expected`` (shape, dtype), else ``build()`` them.

    Only the ``expected`` arrays are read back, each checked from its header
    before it is inflated. An entry that cannot be used for any reason (empty,
    cut short, corrupt, a foreign file, other shapes) is rebuilt and overwritten.
    Returns the arrays and whether they came from the cache.
    """

    def check(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if (shape, dtype) != expected[key]:
            raise InputError(f"{path}: {key} is {shape} {dtype}, expected {expected[key]}")

    if path.is_file():
        try:
            return read_npz(path, tuple(expected), check), True
        except InputError:
            pass  # an unusable entry: rebuild it
    arrays = build()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    write_atomic(path, write)
    return arrays, False
