"""Step budgets of the default run: the teacher's and the student's quality for fewer training steps.

A candidate (teacher steps, student steps) is two real runs of those lengths,
since the learning-rate schedule follows a phase's steps: ``spiknerf train
--model teacher --steps N`` and then ``--model student --teacher RUN --steps
M``, one thread each, no video. Quality does not depend on the machine's load,
so these run on a shared machine; their training seconds do, and are recorded
only as what they were. A teacher serves every candidate with its step count,
and a run folder that already holds its ``metrics.json`` is read, not trained
again (a candidate list can grow over several calls).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def _train(args: Sequence[str], out: Path) -> dict:
    """The ``metrics.json`` of ``spiknerf train args --out out``, training it first unless it is there."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        if out.exists():
            raise RuntimeError(f"{out} holds an unfinished run: remove it to train the candidate again")
        out.parent.mkdir(parents=True, exist_ok=True)
        with (out.parent / f"{out.name}.log").open("w") as log:
            done = subprocess.run([sys.executable, "-m", "spiknerf.cli", "train", *args, "--threads", "1",
                                   "--video-frames", "0", "--out", str(out)], stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"training into {out} failed with exit code {done.returncode} ({log.name})")
    return json.loads(metrics.read_text())


def budget_row(scene_args: Sequence[str], teacher_steps: int, student_steps: int, root: Path, seed: int = 0) -> dict:
    """One candidate's row for one ``--seed``: PSNR, SSIM and training seconds of its teacher and of its student."""
    tag = f"-seed{seed}" if seed else ""  # seed 0's folders keep their first names, so that they are read again
    teacher = root / f"teacher-{teacher_steps}{tag}"
    seeded = [*scene_args, "--seed", str(seed)]
    t = _train([*seeded, "--model", "teacher", "--steps", str(teacher_steps)], teacher)["teacher"]
    s = _train([*seeded, "--model", "student", "--teacher", str(teacher), "--steps", str(student_steps)],
               root / f"teacher-{teacher_steps}-student-{student_steps}{tag}")["student"]
    return {"teacher_steps": teacher_steps, "student_steps": student_steps, "seed": seed, "teacher_psnr": t["psnr"],
            "teacher_ssim": t["ssim"], "student_psnr": s["psnr"], "student_ssim": s["ssim"],
            "student_minus_teacher_db": s["psnr"] - t["psnr"], "teacher_train_s": t["train_seconds"],
            "student_train_s": s["train_seconds"]}
