"""Generate the tables of ``docs/benchmarks.md`` and the README's headline from ``docs/results/*.json``.

A document holds generated blocks between markers; everything outside them is
written by hand and kept as it is::

    <!-- results:neuron_speed -->
    (generated from docs/results/neuron_speed.json)
    <!-- /results -->

``<!-- results:headline -->`` is the README's headline table, whose rows pick
single figures from several files (:data:`~spiknerf.results.tables.HEADLINE`).
"""

from __future__ import annotations

import re
from pathlib import Path

from spiknerf.atomic import write_atomic
from spiknerf.errors import InputError
from spiknerf.paths import DOCS as DOCS_DIR
from spiknerf.paths import RESULTS_DIR, ROOT
from spiknerf.results.render import render
from spiknerf.results.store import Results, load_table
from spiknerf.results.tables import HEADLINE, TABLES

DOCS = (DOCS_DIR / "benchmarks.md", ROOT / "README.md")
HEADLINE_BLOCK = "headline"
_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.DOTALL)


def headline(results_dir: Path = RESULTS_DIR) -> str:
    """The README's headline table: one figure a row, each with the results file it comes from."""
    cache: dict[str, Results] = {}
    rows = []
    for h in HEADLINE:
        r = cache.setdefault(h.table, load_table(h.table, results_dir))
        rows.append([h.label, h.value(r), f"[{h.table}](docs/results/{h.table}.json)"])
    lines = ["| result | measured | from |", "|---|---|---|", *("| " + " | ".join(row) + " |" for row in rows)]
    return "\n".join(lines)


def block(name: str, results_dir: Path = RESULTS_DIR) -> str:
    """The generated text of one block."""
    if name == HEADLINE_BLOCK:
        return headline(results_dir)
    if name not in TABLES:
        raise InputError(f"no table spec for results block '{name}' (spiknerf/results/tables.py)")
    return render(TABLES[name], load_table(name, results_dir))


def blocks_in(text: str) -> list[str]:
    """The names of the generated blocks in a document, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def generate(text: str, results_dir: Path = RESULTS_DIR) -> str:
    """``text`` with every generated block rewritten from the results files."""
    def fill(m: re.Match) -> str:
        return m.group(1) + block(m.group("name"), results_dir).rstrip("\n") + "\n" + m.group(4)

    return _BLOCK.sub(fill, text)


def regenerate(docs: tuple[Path, ...] = DOCS, results_dir: Path = RESULTS_DIR, write: bool = True) -> list[Path]:
    """Rewrite the generated blocks of ``docs``; returns the documents whose text changed (with
    ``write=False``: would change)."""
    changed = []
    for doc in docs:
        old = doc.read_text()
        new = generate(old, results_dir)
        if new != old:
            changed.append(doc)
            if write:
                write_atomic(doc, lambda tmp, text=new: tmp.write_text(text))
    return changed


def unused_tables(docs: tuple[Path, ...] = DOCS, results_dir: Path = RESULTS_DIR) -> list[str]:
    """Results files that no document shows."""
    shown = {name for doc in docs for name in blocks_in(doc.read_text())}
    return sorted(p.stem for p in Path(results_dir).glob("*.json") if p.stem not in shown)
