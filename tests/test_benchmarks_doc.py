"""Writing one section of docs/benchmarks.md leaves the others as they were."""

from __future__ import annotations

from spiknerf.benchmarks_doc import write_section


def test_a_section_is_replaced_by_its_whole_heading_line(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Table, mlp preset\n\nold mlp\n\n## Table\n\nold fast\n\n## Other\n\nkept\n")
    write_section(doc, "## Table", "## Table\n\nnew fast\n")
    write_section(doc, "## Table, mlp preset", "## Table, mlp preset\n\nnew mlp\n")
    assert doc.read_text() == ("# Benchmarks\n\n## Table, mlp preset\n\nnew mlp\n\n## Table\n\nnew fast\n\n"
                               "## Other\n\nkept\n")


def test_a_missing_section_is_appended(tmp_path):
    doc = tmp_path / "benchmarks.md"
    write_section(doc, "## Table", "## Table\n\nrows\n")
    write_section(doc, "## Table, mlp preset", "## Table, mlp preset\n\nmore rows\n")
    assert doc.read_text() == "# Benchmarks\n\n## Table\n\nrows\n\n## Table, mlp preset\n\nmore rows\n"
