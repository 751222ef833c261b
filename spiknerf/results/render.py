"""Markdown from results files: a provenance paragraph, the table, and the notes that belong to it.

A :class:`Column` says how one cell of a row is written: ``fmt`` is a format
spec for numbers (``".2f"``, ``",.0f"``), or a function of the whole row for
cells that combine keys; ``std`` names the key of a spread written as
``mean ± std``. A missing or ``null`` value is written as ``missing``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spiknerf.results.store import MEASURED, Results

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    fmt: str | Callable[[Row], str] = ""
    std: str | None = None
    suffix: str = ""
    missing: str = ""

    def cell(self, row: Row) -> str:
        if callable(self.fmt):
            return self.fmt(row)
        return number(row.get(self.key), self.fmt, row.get(self.std) if self.std else None, self.suffix,
                      self.missing)


def number(value: Any, fmt: str = "", std: Any = None, suffix: str = "", missing: str = "") -> str:
    """``value`` formatted with ``fmt`` (lists joined by spaces), ``± std`` when given, then ``suffix``."""
    if value is None:
        return missing
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(number(v, fmt) for v in value) + suffix
    text = format(value, fmt)
    if std is not None:
        text += f" ± {format(std, fmt)}"
    return text + suffix


@dataclass(frozen=True)
class TableSpec:
    """How one results table is written: its columns, and optional lines derived from it (``extra``)."""

    columns: list[Column] | Callable[[Results], list[Column]]
    extra: Callable[[Results], list[str]] | None = None
    show_commands: bool = True

    def columns_for(self, results: Results) -> list[Column]:
        return self.columns(results) if callable(self.columns) else self.columns


def markdown_table(columns: list[Column], rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(c.label for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(c.cell(row) for c in columns) + " |")
    return lines


def provenance_lines(r: Results) -> list[str]:
    """Where the numbers come from: the command, code, date and machine; the source when imported."""
    m = r.machine
    where = ", ".join(str(p) for p in (
        m.get("cpu"),
        f"{m['cores']} cores" if m.get("cores") else None,
        m.get("platform"),
        f"torch {m['torch']}" if m.get("torch") else None,
        f"device {m['device']}" if m.get("device") else None,
    ) if p)
    extra = ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("cpu", "cores", "platform", "torch", "device"))
    where = ", ".join(p for p in (where, extra) if p) or "machine not recorded"
    lines = [f"Command: `{r.command}`. Code {r.code}, {r.date or 'date not recorded'}, on {where}."]
    if r.source != MEASURED:
        lines.append(f"Source: {r.source}.")
    if r.conditions:
        lines.append(f"Conditions: {r.conditions}.")
    if r.summary.get("wall_min") is not None:
        lines.append(f"The driver ran {number(r.summary['wall_min'], '.3g')} min.")
    if r.settings:
        lines.append(f"Settings: {settings_text(r.settings)}.")
    return lines


def settings_text(settings: dict[str, Any]) -> str:
    """``{"a": 1, "b": {"c": 2}}`` as ``a 1; b: c 2``."""
    parts = []
    for k, v in settings.items():
        if isinstance(v, dict):
            parts.append(f"{k}: " + ", ".join(f"{kk} {number(vv)}" for kk, vv in v.items()))
        else:
            parts.append(f"{k} {number(v) if not isinstance(v, bool) else str(v).lower()}")
    return "; ".join(parts)


def render(spec: TableSpec, r: Results) -> str:
    """The generated block of one table: provenance, the table, derived lines, jobs and notes."""
    lines = [" ".join(provenance_lines(r)), "", *markdown_table(spec.columns_for(r), r.rows)]
    if spec.extra is not None:
        derived = spec.extra(r)
        if derived:
            lines += ["", *derived]
    if spec.show_commands and r.commands:
        lines += ["", "Jobs:", "", *(f"- `{c}`" for c in r.commands)]
    if r.notes:
        lines += ["", *(f"- {n}" for n in r.notes)]
    return "\n".join(lines)


@dataclass(frozen=True)
class Headline:
    """One row of the README's headline table: a label, the table it comes from, and its value."""

    label: str
    table: str
    value: Callable[[Results], str]
    section: str = field(default="")
