"""The default run end to end, timed by stage: ``spiknerf train`` as a person starts it, in a fresh process.

Stages are read from when the run's own output says they begin: the scene has
loaded and the teacher starts ("run directory:"), the student starts
("student: test PSNR during training"), evaluation starts ("evaluating"), the
video starts once the table is printed (its "view" header), and ends when the
run names it ("video:"). Step times,
PSNRs, the student's energy per sample against its teacher's and the threading
come from the run's ``metrics.json`` and ``config.json``; how often an automatic
run changed its thread count, from its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spiknerf.results.contention import thread_changes

# (stage, the output that starts it); the run starts with "setup", and "video:" ends the video
STAGES: tuple[tuple[str, str], ...] = (
    ("teacher", "run directory:"),
    ("student", "student: test PSNR during training"),
    ("evaluation", "evaluating "),
    ("video", "view "),
)
VIDEO_WRITTEN = "video:"


def stage_seconds(lines: Sequence[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds of each stage from ``(seconds since start, line)`` of a run's output: from the first line that
    starts it to the next stage's, the last to the "video:" line (else the process's ``end``); the time after
    that is ``rest``. A stage whose line never came (no student) is left out."""
    def first(mark: str) -> float | None:
        return next((t for t, line in lines if line.startswith(mark)), None)

    starts = [("setup", 0.0)] + [(stage, t) for stage, mark in STAGES if (t := first(mark)) is not None]
    starts.sort(key=lambda st: st[1])
    video_end = first(VIDEO_WRITTEN)
    ends = [t for _, t in starts[1:]] + [video_end if video_end is not None else end]
    seconds = {stage: stop - start for (stage, start), stop in zip(starts, ends, strict=True)}
    seconds["rest"] = end - ends[-1]
    return seconds


def time_default_run(train_args: Sequence[str], out: Path) -> dict:
    """Run ``spiknerf train train_args --out out`` and return a row: wall seconds by stage and in all, step
    times and PSNRs of teacher and student, and the threading the run chose."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "spiknerf.cli", "train", *train_args, "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:  # text mode reads tqdm's carriage returns as line ends too
        lines.append((time.perf_counter() - start, line.strip()))
    if process.wait() != 0:
        tail = "\n".join(line for _, line in lines[-5:])
        raise RuntimeError(f"the default run into {out} failed with exit code {process.returncode}:\n{tail}")
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    threading = json.loads((out / "config.json").read_text())["threading"]
    row = {"wall_s": wall, "stages_s": stage_seconds(lines, wall), "threads": threading["threads"],
           "wait": threading["wait"]}
    for phase in ("teacher", "student"):
        block = metrics.get(phase)
        if block:
            row[f"{phase}_psnr"] = block["psnr"]
            row[f"{phase}_steps"] = block["steps"]
            row[f"{phase}_ms_per_step"] = 1000 * block["train_seconds"] / block["steps"]
            row[f"{phase}_eval_s_per_view"] = block["seconds_per_view"]
    if "teacher_psnr" in row and "student_psnr" in row:
        row["student_minus_teacher_db"] = row["student_psnr"] - row["teacher_psnr"]
        row["step_x_teacher"] = row["student_ms_per_step"] / row["teacher_ms_per_step"]
        row["energy_ratio_per_sample"] = metrics["student"]["energy_ratio_per_sample"]
    row["thread_changes"] = thread_changes("\n".join(line for _, line in lines))
    return row
