"""Process memory for the benchmark drivers: the peak resident set, and its growth over one call.

Linux keeps a process's peak RSS in ``VmHWM`` (``/proc/self/status``). Unlike
``ru_maxrss`` it belongs to this process image alone (a child started by fork
inherits its parent's ``ru_maxrss``), and it can be reset to the current RSS
through ``/proc/self/clear_refs``, so the growth caused by one call can be read.
Elsewhere only ``ru_maxrss`` is available, and no growth can be measured.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_mb(key: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: ``VmHWM``, else ``ru_maxrss``."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, kB on Linux


def rss_growth_mb(fn: Callable[[], object]) -> float | None:
    """MB by which ``fn()`` raises this process's peak RSS above the RSS before it; ``None`` where the
    peak cannot be reset (not Linux, or a kernel older than 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    except OSError:
        return None
    before = _status_mb("VmRSS")
    result = fn()  # held while the peak is read: the kernel may update VmHWM lazily, but VmRSS counts it
    after = _status_mb("VmHWM")
    del result
    return None if before is None or after is None else after - before
