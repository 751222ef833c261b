"""Who may write into a run folder: its marker, its lock, and the temporaries of killed writers.

``train`` writes only into a new or empty folder, or into a folder it marked as
its own when it created it (the file ``.spiknerf-run``); it never writes into a
folder of a person's own files. A marked folder holds a run once its
``config.json`` exists; until then (a run that failed before it started) a new
``train`` may take it over.

One writer at a time: ``train`` (for the whole run, resumes included), ``eval``
(its ``metrics.json``) and ``render`` (a video inside the run) hold an exclusive
``flock`` on ``.spiknerf-lock``, which records who holds it so that a second
writer is told; the kernel drops the lock when its holder exits, however it
exits. Whoever takes the lock first removes the temporaries a killed writer
left (:func:`spiknerf.atomic.remove_stale_temporaries`).

A run folder holds no symbolic links: through one, reading a run would read
elsewhere and writing it would write elsewhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from spiknerf.atomic import cannot_write, remove_stale_temporaries, write_json_atomic
from spiknerf.errors import InputError

MARKER = ".spiknerf-run"
LOCK = ".spiknerf-lock"
RUN_CONFIG = "config.json"
# the folders of a run that writers fill through spiknerf.atomic (the top folder too)
WRITTEN_FOLDERS = ("checkpoints", "renders", "cache/images")


def is_marked(path: Path) -> bool:
    return (path / MARKER).is_file()


def check_run(path: Path) -> None:
    """``path`` is a run folder: a directory with the marker and without symbolic links."""
    if not path.is_dir():
        raise InputError(f"{path} is not a run directory" + (" (it does not exist)" if not path.exists() else ""))
    if not is_marked(path):
        raise InputError(f"{path} is not a spiknerf run folder (it has no {MARKER} file)")
    check_no_links(path)


def check_no_links(path: Path) -> None:
    """Refuse a run folder that holds a symbolic link anywhere inside it."""
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            if os.path.islink(os.path.join(folder, name)):
                link = Path(folder, name)
                raise InputError(f"{link} is a symbolic link; a run folder holds only files spiknerf wrote")


def check_new_run(path: Path) -> None:
    """``path`` can take a new run: absent, empty, or marked and holding no run yet. Writes nothing."""
    if not path.exists():
        return
    if not path.is_dir():
        raise InputError(f"--out {path} is a file, not a folder")
    if is_marked(path):
        if (path / RUN_CONFIG).exists():
            raise InputError(f"{path} already holds a run; pass --resume to continue it or choose another --out")
        return
    others = sorted(p.name for p in path.iterdir() if p.name not in (MARKER, LOCK))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise InputError(f"--out {path} holds files that spiknerf did not write ({shown}); "
                         "train writes only into a new or empty folder")


def _holder(fd: int) -> str:
    """Who holds the lock on ``fd``'s file, as its holder recorded it."""
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        return f"spiknerf {info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, TypeError, KeyError):
        return "another spiknerf process"


def _open_lock(path: Path) -> int:
    """The lock file's descriptor: a plain file with one link, never followed through a symbolic link."""
    lock_file = path / LOCK
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        raise InputError(f"cannot lock {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise InputError(f"{lock_file} is not a plain file; a run folder holds only files spiknerf wrote")
    return fd


@contextmanager
def hold_run(path: Path, command: str, create: bool = False) -> Iterator[Path]:
    """Hold the run folder ``path`` for ``command`` (``train``, ``eval``, ``render``) until the block ends.

    With ``create`` the folder is claimed for a new run first (see :func:`check_new_run`):
    made if absent, and marked. Another holder is an InputError naming it.
    """
    path = Path(path)
    if create:
        path = path.resolve()  # 'x/../run' with no x: mkdir would make x before it finds out
        check_new_run(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the run folder {path}: {exc.strerror or exc}") from None
        check_no_links(path)
    else:
        check_run(path)
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise InputError(f"{path} is in use by {holder}; wait until it has finished") from None
    try:
        if create:
            check_new_run(path)  # again, now that no one else can be claiming it
            if not is_marked(path):
                write_json_atomic(path / MARKER, {"spiknerf": "run", "created": _now(), "host": socket.gethostname()})
        for folder in ("", *WRITTEN_FOLDERS):
            for stale in remove_stale_temporaries(path / folder):
                print(f"note: removed {stale}, left by a writer that was killed", file=sys.stderr)
        record = json.dumps({"command": command, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode() + b"\n", 0)
        except OSError as exc:
            raise cannot_write(path / LOCK, exc) from None
        yield path
    finally:
        with suppress(OSError):
            os.ftruncate(fd, 0)  # the record names a holder only while there is one
        os.close(fd)  # releases the lock


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
