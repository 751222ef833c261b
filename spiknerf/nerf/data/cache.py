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
    path: Path, build: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays stored at ``path`` if present and readable, else ``build()`` them and store them.

    Returns the arrays and whether they came from the cache.
    """
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}, True
        except (OSError, ValueError):
            pass  # unreadable entry (e.g. a foreign file): rebuild and overwrite it
    arrays = build()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    write_atomic(path, write)
    return arrays, False
