"""Writing a benchmark's section of ``docs/benchmarks.md`` without touching the others."""

from __future__ import annotations

import re
from pathlib import Path

from spiknerf.atomic import write_atomic


def write_section(doc: str | Path, heading: str, text: str) -> None:
    """Replace the section that starts with the line ``heading`` (up to the next ``## `` heading) by ``text``.

    ``text`` should start with ``heading``. A missing section is appended; a
    missing file is created with a ``# Benchmarks`` title. The file is written atomically.
    """
    doc = Path(doc)
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    # the whole heading line: one heading may begin another ("... students" and "... students, mlp preset")
    found = re.search(rf"^{re.escape(heading)}$", old, flags=re.MULTILINE)
    start = found.start() if found else -1
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(heading))
        new = old[:start] + text.rstrip("\n") + "\n" + ("\n" + old[nxt + 1:] if nxt >= 0 else "")
    write_atomic(doc, lambda tmp: tmp.write_text(new.rstrip("\n") + "\n"))
