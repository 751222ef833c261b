"""Resource limits for files that may come from strangers, checked before anything is decoded or inflated.

A few hundred kilobytes can declare gigabytes: a PNG header can claim 12000 x 12000
pixels, a zip member or a gzip stream can inflate a thousandfold. Readers therefore
take sizes from headers first, check them here, and only then allocate.

* :func:`image_pixel_limit`: pixels of one image, default 64 Mi (a 48 to 64 MP
  phone photo fits); environment variable ``SPIKNERF_MAX_IMAGE_PIXELS``.
* :func:`memory_budget`: bytes a whole load may keep (a scene's uint8 images and
  the arrays read with them), default half the memory available now, at most
  16 GiB; ``SPIKNERF_MAX_MEMORY``.
* :func:`json_byte_limit`: size of one JSON file, default 16 MiB (a
  ``transforms.json`` of ten thousand frames takes a few MB);
  ``SPIKNERF_MAX_JSON_BYTES``.

Each variable takes a number with an optional binary suffix: ``8G``, ``512M``,
``100000000``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from spiknerf.errors import InputError

DEFAULT_IMAGE_PIXELS = 64 * 2**20
MEMORY_CAP = 16 * 2**30
DEFAULT_JSON_BYTES = 16 * 2**20
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _setting(name: str, default: int) -> int:
    """An environment variable holding a size such as ``8G``; ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", value.upper())
    if match is None or float(match[1]) <= 0:
        raise InputError(f"{name} must be a positive size such as 8G, 512M or 1000000 (got {value!r})")
    return int(float(match[1]) * _SUFFIXES[match[2]])


def image_pixel_limit() -> int:
    """Most pixels (width x height) one image may declare."""
    return _setting("SPIKNERF_MAX_IMAGE_PIXELS", DEFAULT_IMAGE_PIXELS)


def json_byte_limit() -> int:
    """Largest JSON file read."""
    return _setting("SPIKNERF_MAX_JSON_BYTES", DEFAULT_JSON_BYTES)


def available_memory() -> int | None:
    """Bytes of memory this process could still get: MemAvailable, less where a cgroup limit is tighter."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:  # a container's own limit (cgroup v2)
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            return None
    return max(0, min(found))


def memory_budget() -> int:
    """Bytes one load may keep: ``SPIKNERF_MAX_MEMORY``, else half the available memory, at most 16 GiB."""
    available = available_memory()
    default = MEMORY_CAP if available is None else min(MEMORY_CAP, available // 2)
    return _setting("SPIKNERF_MAX_MEMORY", default)


def format_bytes(n: int) -> str:
    """``n`` bytes for a person: 1.5 GiB, 12.0 MiB, 300 bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


class Budget:
    """Memory a load may still take; :meth:`take` refuses what would not fit, before it is allocated."""

    def __init__(self, total: int | None = None) -> None:
        self.total = memory_budget() if total is None else total
        self.left = self.total

    def take(self, kept: int, what: str, transient: int = 0) -> None:
        """Account for ``kept`` bytes held from now on (and ``transient`` bytes needed meanwhile).

        ``what`` starts the error message, e.g. ``"scene/train: 100 images of 800x800x4"``.
        """
        need = kept + transient
        if need > self.left:
            used = f", {format_bytes(self.total - self.left)} of it already taken" if self.left < self.total else ""
            raise InputError(
                f"{what} need {format_bytes(need)} of memory, more than the budget of {format_bytes(self.total)}"
                f"{used} (half the available memory, at most {format_bytes(MEMORY_CAP)}; "
                "set SPIKNERF_MAX_MEMORY to change it, or load fewer or smaller images)"
            )
        self.left -= kept
