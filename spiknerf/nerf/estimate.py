"""How long a run will take on this machine, said before it starts, with a warning when that is long.

Before the first step, a few trial steps of each phase's model, built as the run
builds it and then thrown away (torch's random streams restored after, so that
the run trains exactly as it would without them), give seconds a step on this
machine with this process's threads; a trial render of a few test rays gives
seconds a ray. The steps the run has ahead, and the rays its evaluation and
video render, scale them up. The first trial steps compile the kernels (which
the run then does not do again) and are not counted.

The trial models' occupancy grid has hardly pruned: their rays march many more
samples than a trained model's, so an occupancy-grid preset's rendering is only
bounded from above (said as "at most", and left out of what the warning
weighs), and its steps, whose marching evaluates the density of all those
samples, come out on the high side. Coarse-to-fine sampling (the paper preset)
takes as many samples a ray trained or not, and its estimate is a fair one.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from spiknerf import threads
from spiknerf.nerf.data import Scene, Split
from spiknerf.nerf.evaluate import check_rays
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.render import render_chunks
from spiknerf.nerf.render_video import VIDEO_RAYS
from spiknerf.nerf.run import eval_background
from spiknerf.nerf.sampler import CoarseToFineSampler
from spiknerf.nerf.step import (
    Distillation,
    Phase,
    Teacher,
    build_phase,
    phase_batcher,
    step_autocast,
    train_step,
)
from spiknerf.nerf.train_config import TrainConfig

WARN_MINUTES = 30.0  # a run estimated longer than this gets a warning
TRIAL_WARMUP = 3  # trial steps (and one trial render) that compile and warm up, not counted
TRIAL_STEPS = 10  # timed trial steps at most, their median taken (a late recompile makes one step slow)
TRIAL_SECONDS = 0.5  # ... or fewer (at least MIN_TRIAL_STEPS) once they took this long: a paper-preset step on a
MIN_TRIAL_STEPS = 3  # CPU takes seconds
TRIAL_RAYS = 128  # rays a trial render takes at a time, until it took TRIAL_SECONDS (or TRIAL_RAYS x 16)
CHECK_RENDERS = 6  # a ternary student's re-parameterization check renders its check rays about this many times over
# (two forms, in float32 and in float64, which costs about twice as much)


@dataclass(frozen=True)
class Estimate:
    """Seconds of each stage of a run, as measured and scaled before it starts."""

    stages: dict[str, float]  # stage -> seconds
    details: dict[str, str]  # stage -> how it was reckoned
    bounds: frozenset[str] = frozenset()  # the stages whose seconds are an upper bound only

    @property
    def seconds(self) -> float:
        """The seconds of the stages that are estimated, not only bounded."""
        return sum(s for stage, s in self.stages.items() if stage not in self.bounds)

    def lines(self) -> list[str]:
        """What the run prints: the estimate, and a warning when it is long."""
        parts = ", ".join(f"{stage} {'at most ' if stage in self.bounds else ''}{_duration(s)} ({self.details[stage]})"
                          for stage, s in self.stages.items())
        bounded = sum(self.stages[stage] for stage in self.bounds)
        more = f", and at most {_duration(bounded)} more to render" if bounded else ""
        lines = [f"estimate: about {_duration(self.seconds)}{more}, on this machine with "
                 f"{threads.current()} thread(s): {parts}"]
        if self.seconds > 60 * WARN_MINUTES:
            lines.append(f"warning: this run will take about {_duration(self.seconds)} on this machine; fewer "
                         "--steps, a larger --downscale, fewer --video-frames or the fast preset take less")
        return lines


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


def estimate_run(cfg: TrainConfig, scene: Scene, device: torch.device, teacher: Teacher | None) -> Estimate:
    """Measure and scale the run of ``cfg`` on ``scene`` (``teacher``: a ``--teacher`` run's, if given)."""
    preset = PRESETS[cfg.preset]
    stages: dict[str, float] = {}
    details: dict[str, str] = {}
    rendered: dict[str, float] = {}  # model -> seconds a ray
    fixed_samples = False  # whether a ray takes as many samples trained or not: else rendering is only bounded
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        phases = (["teacher"] if cfg.model in ("both", "teacher") else []) + \
                 (["student"] if cfg.model in ("both", "student") else [])
        for name in phases:
            build = partial(preset.teacher, scene) if name == "teacher" else partial(preset.student, scene,
                                                                                      cfg.student)
            distilled = teacher if name == "student" and cfg.kd else None
            phase = build_phase(name, build, scene, cfg, device, distilled)
            kd = None if distilled is None else Distillation(distilled.model, cfg.kd_sigma, cfg.kd_color)
            per_step = _seconds_a_step(phase, scene, device, kd, cfg.batch)
            stages[name] = per_step * phase.steps
            details[name] = f"{phase.steps} steps at {1000 * per_step:.0f} ms"
            rendered[name] = _seconds_a_ray(phase.model, phase.sampler, scene, device)
            fixed_samples = isinstance(phase.sampler, CoarseToFineSampler)
            if name == "teacher":
                teacher = Teacher(phase.model.eval().requires_grad_(False), phase.sampler)
    test = scene.splits["test"] if len(scene.splits["test"]) else scene.splits["train"]
    view = test.height * test.width
    rays = {name: (len(test) + 1) * view for name in rendered}  # every test view, and one for the op counts
    if "student" in rays:  # the fold's calibration view and the re-parameterization check
        rays["student"] += view + CHECK_RENDERS * len(check_rays(test)[0])
    stages["evaluation"] = sum(rendered[name] * n for name, n in rays.items())
    details["evaluation"] = f"{sum(rays.values())} rays"
    if cfg.video_frames:
        shown = "student" if "student" in rendered else "teacher"
        train = scene.splits["train"]
        video_rays = min(cfg.video_frames * train.height * train.width, VIDEO_RAYS)
        stages["video"] = rendered[shown] * video_rays
        details["video"] = f"{cfg.video_frames} frames, {video_rays} rays"
    bounds = frozenset() if fixed_samples else frozenset(stages) & {"evaluation", "video"}
    return Estimate(stages, details, bounds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_a_step(phase: Phase, scene: Scene, device: torch.device, kd: Distillation | None,
                    batch: int | None) -> float:
    batcher, amp = phase_batcher(phase, scene, device), step_autocast(device)
    timed: list[float] = []
    for k in range(TRIAL_WARMUP + TRIAL_STEPS):
        _synchronize(device)
        result = train_step(phase, phase.model, batcher, kd, amp, batch)
        phase.advance(result)
        if k >= TRIAL_WARMUP:
            timed.append(result.seconds)
            if sum(timed) >= TRIAL_SECONDS and len(timed) >= MIN_TRIAL_STEPS:
                break
    return statistics.median(timed)


def _seconds_a_ray(model: nn.Module, sampler: nn.Module, scene: Scene, device: torch.device) -> float:
    split: Split = scene.splits["test"] if len(scene.splits["test"]) else scene.splits["train"]
    origins, dirs, view_dirs = (None if t is None else t.to(device) for t in check_rays(split, TRIAL_RAYS * 16))
    background = eval_background(scene).to(device)
    model.eval()
    seconds, rays = 0.0, 0
    for start in range(0, len(origins), TRIAL_RAYS):
        part = slice(start, start + TRIAL_RAYS)
        _synchronize(device)
        t0 = time.perf_counter()
        render_chunks(model, sampler, origins[part], dirs[part], background,
                      None if view_dirs is None else view_dirs[part])
        _synchronize(device)
        if start:  # the first render warms up
            seconds, rays = seconds + time.perf_counter() - t0, rays + TRIAL_RAYS
            if seconds >= TRIAL_SECONDS:
                break
    return seconds / max(rays, 1)


def announce_estimate(cfg: TrainConfig, scene: Scene, device: torch.device, teacher: Teacher | None) -> None:
    """Print the run's estimate (and a warning when it is long) on stderr."""
    for line in estimate_run(cfg, scene, device, teacher).lines():
        print(line, file=sys.stderr)
