"""Atomic file writes: write a temporary file beside the target, then rename.

A reader (or a run killed at any moment) sees either the old file or the new
one, never half of one. A process killed with SIGKILL mid-write leaves its
temporary (``.NAME.XXXXXXXX.tmp.SUFFIX``) behind; :func:`remove_stale_temporaries`
clears those once no writer can be using them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spiknerf.errors import InputError

# the names atomic_path gives its temporaries: mkstemp puts 8 characters of [a-z0-9_] between prefix and suffix
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    A failure of the file system (no space left, a read-only folder) is an InputError
    naming ``path``; the temporary is removed and an existing ``path`` stays as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the temporary name keeps the suffix: writers such as imageio pick the format from it
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        os.chmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the file gets a plain open()'s mode instead
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cannot_write(path: Path, exc: OSError) -> InputError:
    """The one-line error of a failed write: the target and the system's reason."""
    return InputError(f"cannot write {path}: {exc.strerror or exc}")


def current_umask() -> int:
    """The process's umask (only readable by setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed writers left in ``folder``; returns what was removed.

    Only call it while no writer can be at work in ``folder`` (a run folder's lock held).
    """
    removed = []
    if Path(folder).is_dir():
        for entry in os.scandir(folder):
            if _TEMPORARY.match(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
