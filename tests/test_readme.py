"""The README as a person uses it: its test command is the one CI runs, and its code example runs."""

from __future__ import annotations

import re

from spiknerf.paths import ROOT

README = (ROOT / "README.md").read_text()


def code_block(after_heading: str, lang: str) -> str:
    """The first ``lang`` code block after a heading of the README."""
    section = README.split(after_heading, 1)[1]
    found = re.search(rf"```{lang}\n(.*?)```", section, flags=re.DOTALL)
    assert found, f"no {lang} block after {after_heading!r}"
    return found.group(1)


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = re.findall(r"```bash\n(.*?)```", README.split("## Two commands", 1)[1], flags=re.DOTALL)
    train, test = blocks[0].strip(), blocks[1].strip()
    assert train.endswith("pip install -e . && spiknerf train")
    assert test.endswith('pip install -e ".[test]" && python -m pytest -x')
    ci = (ROOT / ".ci" / "run").read_text().replace("pip install -q ", "pip install ")  # CI installs quietly
    # CI makes the venv and installs torch itself, then runs the rest of the command as written
    assert test.split("pip install torch==2.13.0 && ", 1)[1] in ci


def test_the_neuron_core_example_runs(capsys):
    exec(compile(code_block("## The neuron core in your own model", "python"), "README.md", "exec"), {})
    assert re.fullmatch(r"\d+ MACs, \d+ SOPs, \d+ pJ a sample\n", capsys.readouterr().out)
