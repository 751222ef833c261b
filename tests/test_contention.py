"""The busy-machine benchmark's bookkeeping: each setup's environment, and the ratios to the idle machine."""

from __future__ import annotations

import pytest

from spiknerf.results import contention


def test_each_setup_starts_from_a_clean_threading_environment(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    assert "OMP_NUM_THREADS" not in contention._environment("spiknerf automatic")
    assert "GOMP_SPINCOUNT" not in contention._environment("spiknerf automatic")
    torch_default = contention._environment("torch default (GOMP_SPINCOUNT=300000)")
    assert torch_default["GOMP_SPINCOUNT"] == "300000"
    assert contention._environment("OMP_NUM_THREADS=1")["OMP_NUM_THREADS"] == "1"
    assert contention._environment("OMP_WAIT_POLICY=PASSIVE")["OMP_WAIT_POLICY"] == "PASSIVE"
    # every setup but spiknerf's own pins its thread count: only the automatic one adapts to the load
    for setup in contention.SETUPS:
        assert ("OMP_NUM_THREADS" in contention._environment(setup)) == (setup != "spiknerf automatic")


def test_an_automatic_runs_thread_changes_are_counted_from_what_it_says() -> None:
    said = ("threads: 2 (automatic: ...)\nthreads: 2 -> 1 (other processes kept 1.0 of 2 cores busy)\n"
            "teacher: 100/150\nthreads: 1 -> 2 (other processes kept 0.0 of 2 cores busy)\n"
            "threads: 2 for 3 s, 1 for 4 s\n")
    assert contention.thread_changes(said) == 2


def test_rows_take_the_median_and_divide_by_the_same_setups_idle_time(monkeypatch) -> None:
    seconds = {"idle": [10.0], "one busy loop beside it": [15.0], "two trainings at once": [18.0, 22.0]}
    monkeypatch.setattr(contention, "measure",
                        lambda args, setup, condition, scratch: [(s, 0) for s in seconds[condition]])
    rows = contention.contention_table([], ["spiknerf automatic"], repeats=1)
    assert [row["condition"] for row in rows] == list(contention.CONDITIONS)
    assert [row["x_idle"] for row in rows] == [1.0, 1.5, 2.2]
    assert rows[2]["tries"] == [18.0, 22.0]


def test_the_idle_machine_alone_makes_a_table_and_busy_cells_need_it(monkeypatch) -> None:
    monkeypatch.setattr(contention, "measure", lambda args, setup, condition, scratch: [(8.0, 0)])
    rows = contention.contention_table([], ["spiknerf automatic"], repeats=2, conditions=["idle"])
    assert [(row["condition"], row["tries"]) for row in rows] == [("idle", [8.0, 8.0])]
    with pytest.raises(ValueError, match="idle"):
        contention.contention_table([], ["spiknerf automatic"], repeats=1, conditions=["two trainings at once"])


def test_the_setups_take_turns_within_a_condition(monkeypatch) -> None:
    calls = []

    def measure(args, setup, condition, scratch):
        calls.append((condition, setup))
        return [(float(len(calls)), 0)]

    monkeypatch.setattr(contention, "measure", measure)
    setups = ["spiknerf automatic", "OMP_NUM_THREADS=1"]
    rows = contention.contention_table([], setups, repeats=3)
    assert calls[:6] == [("idle", s) for s in setups] * 3
    assert rows[0]["tries"] == [1.0, 3.0, 5.0] and rows[1]["tries"] == [2.0, 4.0, 6.0]
    assert [row["seconds"] for row in rows[:2]] == [3.0, 4.0]


def test_the_default_runs_stages_are_read_from_when_its_output_marks_them() -> None:
    from spiknerf.results.default_run import stage_seconds

    lines = [(1.0, "threads: 2 (...)"), (4.0, "run directory: runs/x"), (60.0, "student: test PSNR during training"),
             (150.0, "evaluating teacher on 13 test views"), (155.0, "evaluating student on 13 test views"),
             (170.0, "view    teacher PSNR"), (200.0, "video: runs/x/renders/student-orbit.mp4")]
    assert stage_seconds(lines, 201.0) == {"setup": 4.0, "teacher": 56.0, "student": 90.0, "evaluation": 20.0,
                                           "video": 30.0, "rest": 1.0}
    teacher_only = [(4.0, "run directory: runs/x"), (60.0, "evaluating teacher on 13 test views"),
                    (70.0, "view    teacher PSNR")]
    assert stage_seconds(teacher_only, 71.0) == {"setup": 4.0, "teacher": 56.0, "evaluation": 10.0, "video": 1.0,
                                                 "rest": 0.0}
