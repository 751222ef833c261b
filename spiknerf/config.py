"""Job configs: dataclasses whose fields are a command's options.

The command line (``spiknerf.cli``) turns their fields into options, and the
fields of a field that is itself a dataclass too; a run's saved ``config.json``
turns back into one through :func:`config_from_json`, with the same types and
choices checked, so that a config read from disk is held to what the command
line would have accepted.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from spiknerf.errors import InputError
from spiknerf.json_input import expect_object, is_number


def field_type(tp: object) -> tuple[type, bool]:
    """(scalar type, is_optional) of a dataclass field annotation."""
    if isinstance(tp, str):
        tp = eval(tp, {"typing": typing})  # annotations are postponed strings
    args = typing.get_args(tp)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return tp, False  # type: ignore[return-value]


def finite_float(text: str) -> float:
    """A float option's value: NaN and infinities are refused (they would poison every number computed from them)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


_KINDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def _checked(name: str, tp: type, optional: bool, choices: Any, value: Any, label: str) -> Any:
    """``value`` of field ``name`` if it has the field's type (and is among its choices), else an InputError."""
    if value is None and optional:
        return None
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = is_number(value) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, tp)
    if not ok:
        want = _KINDS.get(tp, tp.__name__) + (" or null" if optional else "")
        raise InputError(f"{label}: {name!r} must be {want}, got {value!r:.80}")
    if choices is not None and value not in choices:
        raise InputError(f"{label}: {name!r} must be one of {', '.join(map(str, choices))}, got {value!r:.80}")
    return value


def config_from_json(cls: type, values: Any, label: str) -> Any:
    """An instance of the job config ``cls`` from a JSON object; unknown keys, wrong types and values outside
    a field's choices are InputErrors naming ``label``. Missing keys take the field's default. A field that is
    itself a dataclass reads a nested object the same way."""
    values = expect_object(values, label)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{label}: unknown key {unknown[0]!r:.80}")
    kwargs = {}
    for name, value in values.items():
        tp, optional = field_type(hints[name])
        if dataclasses.is_dataclass(tp):
            kwargs[name] = config_from_json(tp, value, f"{label}: {name}")
        else:
            kwargs[name] = _checked(name, tp, optional, fields[name].metadata.get("choices"), value, label)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise InputError(f"{label}: {exc}") from None
