"""JSON that may come from a stranger (a run's config.json, a camera path, checkpoint metadata).

Sizes are checked before reading, only regular files are opened (a FIFO would
block), nesting too deep for the parser and non-finite numbers (``NaN``,
``Infinity``: not JSON, though Python writes and reads them) are refused, and
every failure is one :class:`~spiknerf.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from spiknerf.errors import InputError
from spiknerf.limits import format_bytes

# Python refuses to turn more than 4300 digits into an int (a ValueError deep in the parser); integers
# longer than this are read as floats instead, which every reader checks like any other number.
INT_DIGITS = 18


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _integer(text: str) -> int | float:
    return int(text) if len(text) <= INT_DIGITS else float(text)


def parse_json(text: str | bytes, label: str, finite: bool = True) -> Any:
    """The value of a JSON document; ``label`` names it in errors. ``finite=False`` lets NaN and Infinity in."""
    try:
        return json.loads(text, parse_int=_integer, parse_constant=None if not finite else _refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise InputError(f"{label}: invalid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise InputError(f"{label}: invalid JSON (nested too deeply)") from None


def read_json(path: str | os.PathLike, max_bytes: int, label: str | None = None, finite: bool = True,
              raise_hint: str = "") -> Any:
    """The value of the JSON file ``path``, refused when it is not a regular file or exceeds ``max_bytes``.

    ``raise_hint`` ends the message of a file over the limit (how to raise it, where it can be raised).
    """
    label = label or str(path)
    try:
        with open(path, "rb", opener=_nonblocking) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"{label}: not a regular file")
            if info.st_size > max_bytes:
                raise InputError(f"{label}: {format_bytes(info.st_size)}, more than the {format_bytes(max_bytes)} "
                                 f"such a file may have{raise_hint}")
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{label}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew after the check
        raise InputError(f"{label}: more than the {format_bytes(max_bytes)} such a file may have{raise_hint}")
    return parse_json(data, label, finite)


def _nonblocking(path: str, flags: int) -> int:
    """Open without blocking: a FIFO put where a file belongs would otherwise wait for a writer forever."""
    return os.open(path, flags | os.O_NONBLOCK)


def expect_object(value: Any, label: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an InputError."""
    if not isinstance(value, dict):
        raise InputError(f"{label}: expected a JSON object, got {type(value).__name__}")
    return value


def is_number(value: Any) -> bool:
    """A JSON number (bool is not one, though Python counts it as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
