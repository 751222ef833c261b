"""No docstring or comment carries a measured figure: those live in docs/results/*.json.

The check looks for the shapes measured figures take in prose (a PSNR in dB, a
time, a percentage, a speed-up such as ``3.5x``) in every docstring and comment
of the package and the scripts. Settings, shapes (``8 x 256``) and constants
taken from the literature are not matched.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from spiknerf.paths import ROOT

MEASURED = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?\s?(?:dB|ms|µs|s|sec|seconds|min|minutes|hours)(?![\w/])"  # PSNR, times
    r"|(?<![\w.])\d+(?:\.\d+)?\s?%"  # percentages
    r"|(?<![\w.])\d+(?:\.\d+)?[x×](?!\s?\d|\w)"  # ratios: 3.5x
)


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every docstring and comment."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    found += [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]
    return found


def test_docstrings_and_comments_carry_no_measured_figure():
    hits = []
    for path in sorted([*(ROOT / "spiknerf").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]):
        for line, text in prose(path.read_text()):
            hits += [f"{path.relative_to(ROOT)}:{line}: {m.group()}" for m in MEASURED.finditer(text)]
    assert not hits, "measured figures belong in docs/results (cite the table instead):\n" + "\n".join(hits)


def test_the_check_finds_the_shapes_it_looks_for():
    text = '"""Gap 0.35 dB, 20-30 s to compile, 37 % fewer, 3.5x faster; an 8 x 256 MLP, θ = 0.5."""'
    assert [m.group() for m in MEASURED.finditer(prose(text)[0][1])] == ["0.35 dB", "30 s", "37 %", "3.5x"]
