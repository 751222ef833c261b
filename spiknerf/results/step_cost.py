"""What a student step costs against a teacher step, measured side by side in one process.

Issue 28 bounds what a student step (T = 2) may cost against a teacher step. Two
whole runs measured apart see different loads on a shared machine; here one
process takes a finished teacher run, trains a copy of its teacher on (the steps
of a trained teacher: its pruned grid, its few samples a ray) and distils a new
student from the frozen original (the steps of the student phase: its teacher's
grid and march, the KD targets), in alternating blocks of steps, so that both
see the same conditions. Each step's wall seconds and this process's CPU
seconds (``time.process_time``: the CPU time of all its threads, which other
processes on the machine do not inflate) are recorded. The first block of each
compiles the kernels and is left out.

The machine's speed drifts over minutes (a shared VM), more slowly than one
pair of blocks takes, so each pair of adjacent blocks (a teacher's, then a
student's) gives a ratio of its own: their spread says how far the pooled
ratio can be trusted, and against which bound.

A teacher step refreshes part of its occupancy grid every ``update_every``
steps (one step in 16), a student step never (it marches its frozen teacher's
grid). The median step leaves those refreshes out; the mean spreads them over
the steps, as a whole phase pays them. The copy of the teacher starts its step
count past the grid's warm-up (when every step's refresh reads the whole grid),
so that its refreshes are those of the rest of a run.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch

from spiknerf.nerf.data import load_scene
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.run import read_config
from spiknerf.nerf.step import (
    Batcher,
    Distillation,
    Phase,
    build_phase,
    load_teacher,
    phase_batcher,
    train_step,
)
from spiknerf.nerf.train_config import TrainConfig


def _timed_block(phase: Phase, batcher: Batcher, kd: Distillation | None, steps: int,
                 wall: list[float], cpu: list[float], samples: list[int]) -> None:
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        result = train_step(phase, phase.model, batcher, kd, nullcontext())
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        samples.append(result.samples)
        phase.advance(result)


def step_costs(teacher_run: Path, blocks: int = 6, block_steps: int = 50,
               color_widths: tuple[int, ...] = ()) -> tuple[list[dict], dict]:
    """Rows for the teacher's and the student's steps: milliseconds of wall and of CPU time a step (medians and
    means over the timed steps) and samples a step; ``blocks`` blocks of ``block_steps`` steps of each, alternating, the
    first of each not counted. And a summary of the ratios of the block pairs (:func:`pair_ratios`).

    ``color_widths``: students whose colour layers have these widths (``--color-hidden``) take their blocks after
    the default student's, each its own row (``student, colour width W``); the summary's ``by_color_hidden`` holds
    the ratios of each one's blocks to the teacher's block of the same round."""
    config = read_config(teacher_run)
    cfg = TrainConfig(data=config.data, downscale=config.downscale, background=config.background,
                      scene_kind=config.scene_kind, preset=config.preset, model="student", teacher=str(teacher_run))
    scene = load_scene(cfg.data, downscale=cfg.downscale, background=cfg.background, scene_kind=cfg.scene_kind)
    device = torch.device("cpu")
    teacher = load_teacher(teacher_run, scene, cfg, device)
    teacher.model.requires_grad_(False)
    preset = PRESETS[cfg.preset]
    steps = blocks * block_steps
    own = Phase("teacher", copy.deepcopy(teacher.model).requires_grad_(True).train(),
                copy.deepcopy(teacher.sampler), preset, steps, seed=0)
    own.step = getattr(own.sampler, "warmup_steps", 0)  # past the warm-up's whole-grid refreshes
    kd = Distillation(teacher.model, cfg.kd_sigma, cfg.kd_color)
    students = {"student": cfg.student} | {_width_name(w): dataclasses.replace(cfg.student, color_hidden=w)
                                            for w in color_widths}
    phases = [("teacher", own, None)] + [
        (name, build_phase("student", partial(preset.student, scene, settings), scene,
                           dataclasses.replace(cfg, steps=steps), device, teacher), kd)
        for name, settings in students.items()]
    runs = {name: (phase, phase_batcher(phase, scene, device), distil, ([], [], []))
            for name, phase, distil in phases}
    block_medians: dict[str, list[float]] = {name: [] for name in runs}
    for block in range(blocks):
        for name, (phase, batcher, distil, (wall, cpu, samples)) in runs.items():
            if block == 0:  # compiling and warming up: not counted
                _timed_block(phase, batcher, distil, block_steps, [], [], [])
            else:
                _timed_block(phase, batcher, distil, block_steps, wall, cpu, samples)
                block_medians[name].append(statistics.median(wall[-block_steps:]))
    rows = [{"phase": name, "steps": len(wall), "wall_ms": 1000 * statistics.median(wall),
             "cpu_ms": 1000 * statistics.median(cpu), "wall_ms_mean": 1000 * statistics.mean(wall),
             "cpu_ms_mean": 1000 * statistics.mean(cpu), "samples_per_step": statistics.mean(samples)}
            for name, (_, _, _, (wall, cpu, samples)) in runs.items()]
    summary = pair_ratios(block_medians["teacher"], block_medians["student"])
    if color_widths and summary:
        summary["by_color_hidden"] = {str(w): pair_ratios(block_medians["teacher"], block_medians[_width_name(w)])
                                      for w in color_widths}
    return rows, summary


def _width_name(color_hidden: int) -> str:
    return f"student, colour width {color_hidden}"


def pair_ratios(teacher: list[float], student: list[float]) -> dict:
    """The spread of the ratios student block / teacher block over adjacent pairs of blocks (each block's median
    step): their median, quartiles and extremes."""
    ratios = sorted(s / t for t, s in zip(teacher, student, strict=True))
    if len(ratios) < 2:
        return {}
    low, middle, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"pairs": len(ratios), "pair_ratio_median": middle, "pair_ratio_q1": low, "pair_ratio_q3": high,
            "pair_ratio_min": ratios[0], "pair_ratio_max": ratios[-1]}
