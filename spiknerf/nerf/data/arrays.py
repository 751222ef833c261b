"""Arrays from ``.npy`` and ``.npz`` files that may come from strangers.

``np.load`` trusts what it reads: an empty file raises EOFError, and a zip member
of a few hundred kilobytes declaring a 15000 x 15000 array is inflated whole.
Here the ``.npy`` header is read first (from the zip stream for an ``.npz``
member, without inflating the rest), then checked: plain numbers only (no
objects, so never pickle), a size that matches the bytes the file or the zip
member declares, and whatever the caller's ``check`` demands (shapes, the memory
budget). Only then is the array allocated and read, exactly as many bytes as
were checked.
"""

from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from spiknerf.errors import InputError

# (key, shape, dtype) -> None, raising InputError for an array the caller will not take
Check = Callable[[str, tuple[int, ...], np.dtype], None]

MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000  # numpy's own limit on a header's length
NUMBER_KINDS = "biuf"
# what reading a broken or hostile file may raise, besides our InputError
READ_ERRORS = (OSError, EOFError, ValueError, SyntaxError, struct.error, zipfile.BadZipFile, zipfile.LargeZipFile,
               zlib.error, NotImplementedError, RuntimeError, KeyError, MemoryError)


def _read_exact(f: BinaryIO, n: int, source: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise InputError(f"{source}: cut short (not a complete .npy array)")
    return data


def read_header(f: BinaryIO, source: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, header length in bytes) of the ``.npy`` stream ``f``."""
    start = _read_exact(f, 8, source)
    if start[:6] != MAGIC or start[6] not in (1, 2):
        raise InputError(f"{source}: not a .npy array (or a format version this reader does not take)")
    size_bytes = 2 if start[6] == 1 else 4
    length = int.from_bytes(_read_exact(f, size_bytes, source), "little")
    if length > MAX_HEADER:
        raise InputError(f"{source}: .npy header of {length} bytes, more than {MAX_HEADER}")
    text = _read_exact(f, length, source).decode("latin1")
    try:
        header = ast.literal_eval(text)
        shape, fortran, descr = header["shape"], header["fortran_order"], header["descr"]
        dtype = np.dtype(descr) if isinstance(descr, str) else None
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        raise InputError(f"{source}: malformed .npy header") from None
    if (
        not isinstance(shape, tuple)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        or not isinstance(fortran, bool)
    ):
        raise InputError(f"{source}: malformed .npy header")
    if dtype is None or dtype.kind not in NUMBER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(f"{source}: holds {descr!r:.40} values; only plain numbers are read")
    return shape, dtype, fortran, 8 + size_bytes + length


def read_npy(f: BinaryIO, size: int, key: str, source: str, check: Check) -> np.ndarray:
    """The array of the ``.npy`` stream ``f`` of ``size`` bytes, after ``check(key, shape, dtype)``."""
    shape, dtype, fortran, header = read_header(f, source)
    nbytes = math.prod(shape) * dtype.itemsize
    if header + nbytes != size:
        raise InputError(
            f"{source}: header declares a {shape} {dtype} array ({nbytes} bytes) but {size - header} bytes follow"
        )
    check(key, shape, dtype)
    out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(out.reshape(-1, order="A").view(np.uint8)) if out.size else memoryview(b"")
    filled = 0
    while filled < nbytes:
        n = f.readinto(view[filled:])
        if not n:
            raise InputError(f"{source}: cut short ({filled} of {nbytes} bytes)")
        filled += n
    return out


def _cannot_read(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path}: cannot read ({exc.__class__.__name__}: {str(exc)[:200]})")


def read_npy_file(path: Path, check: Check, key: str = "") -> np.ndarray:
    """One array from a ``.npy`` file (see :func:`read_npy`)."""
    try:
        with open(path, "rb") as f:
            return read_npy(f, os.fstat(f.fileno()).st_size, key, str(path), check)
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise _cannot_read(path, exc) from None


def read_npz(path: Path, keys: tuple[str, ...], check: Check) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of an ``.npz`` archive; other members are not read.

    Each member's header is read from its zip stream and checked against the
    member's declared uncompressed size and ``check`` before the member is inflated.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not an .npz archive of named arrays") from None
    except READ_ERRORS as exc:
        raise _cannot_read(path, exc) from None
    arrays: dict[str, np.ndarray] = {}
    try:
        with archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [k for k in keys if k not in members]
            if missing:
                found = sorted(members)
                listed = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
                raise InputError(f"{path}: missing arrays {', '.join(missing)} (has {listed or 'none'})")
            for key in keys:
                info = archive.getinfo(members[key])
                with archive.open(info) as f:
                    arrays[key] = read_npy(f, info.file_size, key, f"{path}: {key}", check)
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise _cannot_read(path, exc) from None
    return arrays
