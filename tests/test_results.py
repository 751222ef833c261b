"""Results files and the docs generated from them: the committed docs match the committed results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from spiknerf.errors import InputError
from spiknerf.paths import RESULTS_DIR, ROOT
from spiknerf.results import Results, load_results, load_table, write_results
from spiknerf.results.docs import DOCS, blocks_in, generate, regenerate, unused_tables
from spiknerf.results.measure import peak_rss_mb
from spiknerf.results.reports import add_seeds, spiknerf_summary
from spiknerf.results.step_cost import pair_ratios
from spiknerf.results.tables import HEADLINE, TABLES


def test_committed_docs_are_what_the_committed_results_generate():
    assert regenerate(write=False) == [], "run `python -m spiknerf.results` and commit the docs"


def test_the_check_command_passes_on_the_checkout_and_fails_on_a_stale_doc(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "spiknerf.results", "--check"], capture_output=True, text=True,
                        cwd=ROOT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = tmp_path / "doc.md"
    doc.write_text("# hand\n\n<!-- results:cuda_timing -->\nedited by hand\n<!-- /results -->\n\nkept\n")
    assert regenerate((doc,), write=False) == [doc]
    regenerate((doc,))
    text = doc.read_text()
    assert text.startswith("# hand\n\n<!-- results:cuda_timing -->\n") and text.endswith("<!-- /results -->\n\nkept\n")
    assert "edited by hand" not in text and regenerate((doc,), write=False) == []


def test_every_results_file_loads_has_a_spec_and_is_shown_in_the_docs():
    names = sorted(p.stem for p in RESULTS_DIR.glob("*.json"))
    assert names and unused_tables() == []
    shown = {name for doc in DOCS for name in blocks_in(doc.read_text())}
    assert "headline" in shown and set(names) <= shown
    for name in names:
        r = load_table(name)
        assert name in TABLES and r.rows, name
        assert r.command and r.code and r.source and r.machine, name
    assert {h.table for h in HEADLINE} <= set(names)


def test_a_changed_number_changes_the_generated_table(tmp_path):
    r = load_table("cuda_timing")
    r.rows[0]["ms"] = 123.0
    write_results(r, tmp_path)
    text = "<!-- results:cuda_timing -->\n<!-- /results -->\n"
    assert "| 123 |" in generate(text, tmp_path) and "| 123 |" not in generate(text)


def results(table: str = "t", **kw) -> Results:
    base = dict(table=table, command="python x.py", code="abc1234", date="2026-11-29",
                machine={"cpu": "cpu", "cores": 2, "torch": "2.13.0", "device": "cpu", "platform": "x86_64"},
                source="measured", rows=[{"a": 1.5}])
    return Results(**{**base, **kw})


def test_results_round_trip_and_are_written_atomically(tmp_path, monkeypatch):
    path = write_results(results(notes=["n"]), tmp_path)
    assert path == tmp_path / "t.json" and load_results(path) == results(notes=["n"])
    before = path.read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InputError, match="disk full"):
        write_results(results(rows=[{"a": 2.0}]), tmp_path)
    assert path.read_text() == before and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("command"), "'command' missing"),
    (lambda d: d.update(table="other"), "holds table 'other'"),
    (lambda d: d.update(schema=2), "schema"),
    (lambda d: d.update(rows=[1]), "every row"),
    (lambda d: d.update(extra=1), "unknown keys"),
])
def test_a_malformed_results_file_is_an_input_error_naming_it(tmp_path, edit, message):
    path = write_results(results(), tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as exc:
        load_results(path)
    assert str(path) in str(exc.value)
    path.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        load_results(path)


def test_peak_rss_grows_with_an_allocation():
    """In a fresh process, as the drivers measure: a long test session's heap would blur it."""
    assert peak_rss_mb() > 0
    code = ("from spiknerf.results.measure import rss_growth_mb; "
            "print(rss_growth_mb(lambda: b'\\x01' * (64 * 2**20)))")  # written, so every page is resident
    grown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    if grown == "None":
        pytest.skip("the peak RSS cannot be reset here")
    assert float(grown) >= 48


def row(model: str, psnr: float, ms: float) -> dict:
    return {"model": model, "psnr": psnr, "ms_per_step": ms, "us_per_sample": ms / 2}


def test_spiknerf_summary_reads_the_right_rows_on_the_mean_over_seeds():
    models = ["ANN (teacher)", "binary SNN, T=2", "ternary SNN, T=2", "ternary SNN + KD, T=2",
              "binary SNN, T=2, spike-only colour", "ternary SNN, T=2, spike-only colour"]
    seed0 = [row(m, p, ms) for m, p, ms in zip(models, [33.0, 32.0, 32.5, 32.9, 31.0, 32.0],
                                               [10, 14, 15, 16, 30, 31], strict=True)]
    seed1 = [row(m, p, 1) for m, p in zip(models, [33.2, 32.2, 32.5, 32.9, 31.2, 32.4], strict=True)]
    add_seeds(seed0, {0: seed0, 1: seed1})
    assert seed0[0]["psnr_by_seed"] == {"0": 33.0, "1": 33.2} and seed0[0]["psnr_mean"] == pytest.approx(33.1)
    s = spiknerf_summary(seed0, 600.0)
    assert s["ternary_minus_binary_db"] == pytest.approx(0.4)  # (32.5 - 32.1), the default rows
    assert s["kd_minus_teacher_db"] == pytest.approx(-0.2)
    assert s["student_step_ratio"] == pytest.approx(1.6)  # the distilled student's, not the last row's
    assert s["spike_only_ternary_minus_binary_db"] == pytest.approx(1.1)
    assert s["default_run_wall_min"] == pytest.approx(10.0)
    assert "spike_only_ternary_minus_binary_db" not in spiknerf_summary(seed0[:4], 60.0)
    assert "kd_minus_teacher_db_by_color_hidden" not in s


def test_spiknerf_summary_gives_each_narrower_students_difference_to_the_teacher(tmp_path):
    rows = [row("ANN (teacher)", 33.0, 10), row("binary SNN, T=2", 32.0, 14), row("ternary SNN, T=2", 32.5, 15),
            row("ternary SNN + KD, T=2", 32.9, 16), row("ternary SNN + KD, T=2, colour width 48", 32.8, 15)]
    rows[-1]["color_hidden"] = 48
    s = spiknerf_summary(rows, 60.0)
    assert s["kd_minus_teacher_db"] == pytest.approx(-0.1)
    assert s["kd_minus_teacher_db_by_color_hidden"] == {"48": pytest.approx(-0.2)}
    write_results(results("spiknerf_fast_builtin", rows=rows, summary=s), tmp_path)
    text = generate("<!-- results:spiknerf_fast_builtin -->\n<!-- /results -->\n", tmp_path)
    assert "ternary + KD with colour width 48 minus teacher -0.20 dB" in text


def test_step_cost_pairs_each_student_block_with_the_teacher_block_before_it(tmp_path):
    # the machine slows down half way: pooled medians would mix its two speeds, each pair sees one
    teacher, student = [40.0, 40.0, 60.0, 60.0, 60.0], [48.0, 52.0, 72.0, 78.0, 75.0]
    s = pair_ratios(teacher, student)
    assert s["pairs"] == 5 and s["pair_ratio_min"] == pytest.approx(1.2) and s["pair_ratio_max"] == pytest.approx(1.3)
    assert s["pair_ratio_median"] == pytest.approx(1.25) and s["pair_ratio_q1"] <= 1.25 <= s["pair_ratio_q3"]
    assert pair_ratios([40.0], [50.0]) == {}
    rows = [{"phase": p, "steps": 5, "wall_ms": w, "cpu_ms": 2 * w, "samples_per_step": 1.0}
            for p, w in (("teacher", 50.0), ("student", 65.0))]
    write_results(results("cpu_step_cost", rows=rows, summary=s), tmp_path)
    text = generate("<!-- results:cpu_step_cost -->\n<!-- /results -->\n", tmp_path)
    assert "medians: 1.30 x in wall time" in text
    assert "5 pairs): median 1.25 x, quartiles" in text and "from 1.20 to 1.30." in text
    s["by_color_hidden"] = {"48": pair_ratios(teacher, [44.0, 46.0, 66.0, 69.0, 66.0])}
    write_results(results("cpu_step_cost", rows=rows, summary=s), tmp_path)
    text = generate("<!-- results:cpu_step_cost -->\n<!-- /results -->\n", tmp_path)
    assert "colour width 48, its blocks over the same round's teacher block: median 1.10 x" in text


def test_the_bench_driver_refuses_spike_only_rows_for_the_mlp_preset():
    out = subprocess.run([sys.executable, "scripts/bench_spiknerf.py", "--preset", "mlp", "--spike-only"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "--spike-only applies to the fast preset" in out.stderr


def test_the_benchmarks_have_no_hand_written_table():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    outside = re.sub(r"<!-- results:[\w-]+ -->.*?<!-- /results -->", "", text, flags=re.DOTALL)
    assert "|---|" not in outside


def test_notes_are_dated_and_cited_from_the_benchmarks():
    notes = sorted((ROOT / "docs" / "notes").glob("*.md"))
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert notes
    for note in notes:
        assert len(note.stem) > 11 and note.stem[4] == note.stem[7] == note.stem[10] == "-", note.name
        assert f"notes/{note.name}" in text, note.name


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in ("docs/benchmarks.md", "scenes/README.md", "docs/images/readme-spike-map.png"):
        assert f"]({target})" in text and (ROOT / target).exists(), target
    assert "](docs/security.md)" in text  # written on another branch


def test_provenance_says_whether_other_jobs_shared_the_machine(monkeypatch):
    from spiknerf.results import store

    now = time.monotonic()
    short = store.Watch(now, 0.1, None, 0.0)  # a watch too short to tell: the load at the start decides
    monkeypatch.setattr(store, "STARTED", short)
    quiet = store.provenance("python x.py", conditions="one run", code="abc1234")
    assert quiet["conditions"].startswith("one run; the 1-minute load average was 0.10")
    assert quiet["conditions"].endswith("a quiet machine")
    monkeypatch.setattr(store, "STARTED", short._replace(load=3.5))
    busy = store.provenance("python x.py", code="abc1234")
    assert "3.50" in busy["conditions"] and "rerun on a quiet machine" in busy["conditions"]
    assert busy["source"] == "measured" and busy["machine"]["cores"] == os.cpu_count()


def test_a_driver_that_starts_in_the_wake_of_other_work_is_judged_by_what_the_others_used(monkeypatch):
    from spiknerf.results import store

    # 100 s ago the load average was high; since then the machine was busy 50 CPU seconds
    start = store.Watch(time.monotonic() - 100, 3.5, 1000.0, 0.0)
    monkeypatch.setattr(store, "_busy_seconds", lambda: 1050.0)
    monkeypatch.setattr(store, "_own_seconds", lambda: 48.0)  # nearly all of them the driver's own
    said = store.machine_conditions(start)
    assert "other processes used 2 CPU seconds" in said and said.endswith("a quiet machine")
    monkeypatch.setattr(store, "_own_seconds", lambda: 0.0)  # none of them its own
    said = store.machine_conditions(start)
    assert "other processes used 50 CPU seconds" in said and "rerun on a quiet machine" in said
