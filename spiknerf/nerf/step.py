"""One training step and the state it advances: the batch of rays, the loss, a model's :class:`Phase`.

:func:`train_step` draws a batch (:class:`Batcher`), renders it through the
phase's model, adds distillation from a frozen :class:`Teacher` when there is
one, and steps the optimizer; :meth:`Phase.advance` counts the step. The loop
around them (progress, periodic evaluation, checkpoints, the whole run) is
:mod:`spiknerf.nerf.train`'s; the time estimate (:mod:`spiknerf.nerf.estimate`)
and the step-cost benchmark run these same steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf import distributed, threads
from spiknerf.errors import InputError
from spiknerf.nerf.checkpoint import conform
from spiknerf.nerf.data import Scene, Split
from spiknerf.nerf.distill import kd_loss
from spiknerf.nerf.presets import PRESETS, Preset
from spiknerf.nerf.render import render_rays
from spiknerf.nerf.run import load_model, read_config
from spiknerf.nerf.train_config import TrainConfig


class Batch(NamedTuple):
    """This process's rays of a training batch (the whole batch in a single process)."""

    origins: Tensor
    dirs: Tensor
    view_dirs: Tensor | None
    target: Tensor
    background: Tensor
    jitter: Tensor | None  # the rays' offsets into their first marching step; None: the sampler draws them


class Batcher:
    """Random training rays across all pixels of all training views, rendered over a random background where the
    images are transparent (to learn transparency, not one background colour) or are photos of a real capture
    (``opaque``: nothing in them is background, so any light a ray lets through is an error; over a constant
    white, the fast preset's colour saturated to black and the views were fitted in grey, lit by the
    background through half-transparent density). Photos of an object (``backdrop``: RGB, the object on white,
    as ``spiknerf process`` and Blender scenes without alpha have it) die the same way over white, and over a
    random background fog the box to paint the white: their pure-white pixels, the backdrop, keep a white
    background (the ray may stay clear there), every other pixel gets a random one."""

    def __init__(self, split: Split, device: torch.device, generator: torch.Generator, opaque: bool = False,
                 backdrop: bool = False) -> None:
        self.split, self.device, self.generator = split, device, generator
        self.pixels_per_view = split.height * split.width
        self.backdrop = backdrop and split.channels == 3
        self.random_background = split.channels == 4 or opaque or self.backdrop

    def draw(self, n: int) -> Batch:
        """This process's share of a batch of ``n`` random rays.

        In a job every rank draws all ``n`` rays, backgrounds and marching offsets
        from the same streams (the phase's generator, torch's) and keeps its part
        (:func:`spiknerf.distributed.share`): the ranks hold disjoint parts of the
        batch one process would draw, and their streams stay alike.
        """
        flat = torch.randint(0, len(self.split) * self.pixels_per_view, (n,), generator=self.generator)
        bg = torch.rand(n, 3, generator=self.generator) if self.random_background else torch.ones(n, 3)
        jitter = None
        if distributed.world() > 1:  # alone, the sampler draws these offsets itself, from the same stream
            part = distributed.share(n)
            jitter = torch.rand(n, 1, device=self.device)[part]
            flat, bg = flat[part], bg[part]
        index = flat // self.pixels_per_view
        ys, xs = (flat % self.pixels_per_view) // self.split.width, flat % self.split.width
        target = self.split.pixels(index, ys, xs, bg)
        if self.backdrop:
            bg = torch.where((target >= 1.0).all(-1, keepdim=True), torch.ones_like(bg), bg)
        o, d, vd = self.split.rays(index, ys, xs)
        to = lambda t: None if t is None else t.to(self.device, non_blocking=True)  # noqa: E731
        return Batch(to(o), to(d), to(vd), to(target), to(bg), jitter)


class StepResult(NamedTuple):
    """What one training step measured (over the whole batch, all processes' parts), and this process's sample
    points (for firing statistics)."""

    loss: float
    train_psnr: float  # of the photometric loss alone
    rays: int
    samples: int
    samples_per_ray: float
    seconds: float
    points: Tensor
    directions: Tensor


class BatchLoss(NamedTuple):
    """The loss of a whole batch, and what this process back-propagates of it."""

    backward: Tensor
    value: float
    photo: float  # the photometric part of value
    rays: int  # of the whole batch
    samples: int


def batch_loss(photo: Tensor, distill: Tensor | None, rays: int, samples: int) -> BatchLoss:
    """The batch's loss from this process's photometric mean (over its ``rays``) and distillation mean (over its
    ``samples``).

    Alone it is ``photo + distill``. In a job each rank's means weigh by its share
    of the batch's rays and samples, times the number of ranks, because DDP
    averages the ranks' gradients: the average is then the gradient of the loss
    one process computes on the whole batch (a batch split unevenly included).
    """
    loss = photo if distill is None else photo + distill
    if distributed.world() == 1:
        return BatchLoss(loss, float(loss.detach()), float(photo.detach()), rays, samples)
    part = 0.0 if distill is None else float(distill.detach())
    all_rays, all_samples, photo_sum, distill_sum = distributed.total(rays, samples, float(photo.detach()) * rays,
                                                                      part * samples)
    ranks, per_sample = distributed.world(), max(all_samples, 1.0)
    loss = photo * (rays * ranks / all_rays)
    if distill is not None:
        loss = loss + distill * (samples * ranks / per_sample)
    photo_mean = photo_sum / all_rays
    return BatchLoss(loss, photo_mean + distill_sum / per_sample, photo_mean, int(all_rays), int(all_samples))


def idle_pass(field: nn.Module, device: torch.device) -> Tensor:
    """A zero loss through ``field`` at one point, for a rank whose rays all missed while the others' did not:
    DDP averages the gradients of ranks that all ran the model forward and backward."""
    sigma, rgb = field(torch.zeros(1, 3, device=device), torch.tensor([[0.0, 0.0, 1.0]], device=device))
    return 0.0 * (sigma.sum() + rgb.sum())


class Distillation(NamedTuple):
    """A frozen teacher and the weights of the student's distillation losses."""

    teacher: nn.Module
    weight_sigma: float
    weight_color: float


class Phase:
    """Training state of one model (teacher or student) that checkpoints and resumes as a unit."""

    def __init__(self, name: str, model: nn.Module, sampler: nn.Module, preset: Preset, steps: int,
                 seed: int) -> None:
        self.name, self.model, self.sampler, self.preset, self.steps = name, model, sampler, preset, steps
        self.optimizer = preset.optimizer(model)
        self.scheduler = preset.scheduler(self.optimizer, steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.train_seconds, self.rays, self.samples = 0, 0.0, 0, 0
        self.samples_per_ray = 64.0  # running estimate that sizes the batch

    @property
    def done(self) -> bool:
        return self.step >= self.steps

    def advance(self, result: StepResult) -> None:
        """Count a finished step: its time, rays and samples, and the running samples per ray (an exponential
        average: it sizes the next batch, so it is training state, saved and resumed with the rest)."""
        self.step += 1
        self.train_seconds += result.seconds
        self.rays += result.rays
        self.samples += result.samples
        spr = result.samples_per_ray
        self.samples_per_ray = 0.9 * self.samples_per_ray + 0.1 * spr if self.step > 1 else spr

    def state(self) -> dict[str, Any]:
        """Everything a resumed phase needs to continue bit for bit (a checkpoint's content)."""
        return {
            "phase": self.name, "step": self.step, "train_seconds": self.train_seconds, "rays": self.rays,
            "samples": self.samples,
            "samples_per_ray": self.samples_per_ray, "model": self.model.state_dict(),
            "sampler": self.sampler.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "done": self.done,
        }

    def template(self) -> dict[str, Any]:
        """The layout of this phase's checkpoints: its state, with Adam's moments for every parameter."""
        state = self.state()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        moments = {i: {"step": torch.zeros(()), "exp_avg": p, "exp_avg_sq": p} for i, p in enumerate(params)}
        state["optimizer"] = {"state": moments, "param_groups": state["optimizer"]["param_groups"]}
        return state

    def load(self, path: Path, state: dict[str, Any]) -> None:
        """Continue from the checkpoint ``path`` holding ``state``, each part checked against what it replaces."""
        template = self.template()
        state = conform(path, state, template)
        if _settings(state) != _settings(template):
            raise InputError(f"checkpoint {path}: its optimizer's settings or parameters are not this run's")
        try:
            self.model.load_state_dict(state["model"])
            self.sampler.load_state_dict(state["sampler"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
        except RuntimeError as exc:  # e.g. a random-number generator state that torch refuses
            raise InputError(f"checkpoint {path}: cannot restore it ({str(exc)[:200]})") from None
        self.step, self.train_seconds = state["step"], state["train_seconds"]
        self.rays, self.samples = state["rays"], state["samples"]
        self.samples_per_ray = state["samples_per_ray"]


def _settings(state: dict[str, Any]) -> tuple[list[dict[str, Any]], list[float]]:
    """What a phase's optimizer and schedule are built with, as opposed to what training changes (the learning
    rate): a checkpoint must agree on these (Adam would fail on capturable or amsgrad, say, mid-run)."""
    groups = [{k: v for k, v in group.items() if k != "lr"} for group in state["optimizer"]["param_groups"]]
    return groups, state["scheduler"]["base_lrs"]


def train_step(phase: Phase, field: nn.Module, batcher: Batcher, kd: Distillation | None,
               amp: AbstractContextManager, batch_samples: int | None = None) -> StepResult:
    """One optimisation step of ``phase`` on a fresh batch: the photometric loss, plus distillation with ``kd``.

    ``field`` is the phase's model as it trains (:func:`spiknerf.distributed.wrap`); the batch aims at
    ``batch_samples`` samples (default: the preset's), summed over the processes of a job, each of which
    renders its share of the rays (:class:`Batcher`) and weighs its loss by it (:func:`batch_loss`).

    Without a teacher the model refreshes its own occupancy grid first. With one the student marches the
    teacher's sampler: the teacher's occupancy grid, left as it is, and the teacher's density to drop the
    samples behind spent transmittance. The student learns the teacher's density, so the teacher's grid is
    already the one it would converge to, and its samples are those the KD targets describe best. Marching
    its own young density instead, the mlp preset's student refreshed the whole grid through its spiking MLP
    during warm-up, and its warm-up and its steps were much slower than they are now
    (docs/notes/2026-11-28-spiknerf-table-history.md). Evaluation and rendering march the student's own density.
    The frozen teacher's density and colour at the kept samples, the KD targets, come from that march
    (``render_rays``'s ``teacher``): its last reading of the teacher at those points, not a second one.
    """
    # before the clock and the step: the first look (the loading before it) can drop a thread before the first
    # step compiles the kernels, which would otherwise compile again for the new count; trial steps look too, so
    # that two runs started together share the cores from their first step
    threads.adapt()
    t0 = time.perf_counter()
    model, sampler = phase.model, phase.sampler
    model.train()
    with amp:
        if kd is None:  # in a job the ranks share the density evaluations, and all apply them all
            sampler.update(phase.step, distributed.sharded(model.density), phase.generator)
        batch = batcher.draw(phase.preset.rays_per_batch(phase.samples_per_ray, batch_samples))
        out = render_rays(field, sampler, batch.origins, batch.dirs, batch.background, stratified=True,
                          view_dirs=batch.view_dirs, sigma_fn=model.density if kd is None else None,
                          jitter=batch.jitter, teacher=None if kd is None else kd.teacher)
        photo = F.mse_loss(out.rgb, batch.target)
        distill = None
        if kd is not None:
            sigma_t, rgb_t = out.teacher
            distill = kd_loss(out.sigmas, out.rgbs, sigma_t, rgb_t, out.samples.t_ends - out.samples.t_starts,
                              kd.weight_sigma, kd.weight_color)
    loss = batch_loss(photo, distill, len(batch.origins), len(out.samples))
    phase.optimizer.zero_grad(set_to_none=True)
    if loss.samples:  # a batch whose rays all miss the occupied cells has nothing to learn from
        backward = loss.backward if len(out.samples) else loss.backward + idle_pass(field, batch.origins.device)
        backward.backward()
        phase.optimizer.step()
    phase.scheduler.step()
    seconds = time.perf_counter() - t0
    return StepResult(loss=loss.value, train_psnr=-10.0 * math.log10(max(loss.photo, 1e-10)), rays=loss.rays,
                      samples=loss.samples, samples_per_ray=loss.samples / max(loss.rays, 1), seconds=seconds,
                      points=out.points, directions=out.directions)


def phase_batcher(phase: Phase, scene: Scene, device: torch.device) -> Batcher:
    """The training rays of ``phase``, drawn from its own generator."""
    return Batcher(scene.splits["train"], device, phase.generator, opaque=scene.kind in ("forward", "unbounded"),
                   backdrop=scene.kind == "object")


def step_autocast(device: torch.device) -> AbstractContextManager:
    """The mixed precision training steps run under: bfloat16 on CUDA, none on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def build_phase(name: str, build: Callable[[], nn.Module], scene: Scene, cfg: TrainConfig, device: torch.device,
                teacher: Teacher | None = None) -> Phase:
    """A new phase of ``name``: its model (``build()`` after seeding), its sampler (a distilled student's a copy of
    its teacher's, and its encoding the teacher's), optimizer and schedule, at step 0."""
    seed = cfg.seed * 2 + (name == "student")
    torch.manual_seed(seed)
    model = build()
    preset = PRESETS[cfg.preset]
    sampler = preset.sampler(scene, device).to(device)
    if teacher is not None:
        sampler.load_state_dict(teacher.sampler.state_dict())
        inherit_encoding(model, teacher.model)
    return Phase(name, model.to(device), sampler, preset, cfg.total_steps(name, scene.kind), seed)


def inherit_encoding(student: nn.Module, teacher: nn.Module) -> None:
    """Copy the teacher's learned encoding into the student when both have the same one."""
    enc_s, enc_t = getattr(student, "encoding", None), getattr(teacher, "encoding", None)
    if enc_s is not None and enc_t is not None:
        enc_s.load_state_dict(enc_t.state_dict())


@dataclass
class Teacher:
    """A trained teacher: its field (frozen) and its occupancy grid."""

    model: nn.Module
    sampler: nn.Module


def load_teacher(run: Path, scene: Scene, cfg: TrainConfig, device: torch.device) -> Teacher:
    """The finished teacher of another run (``--teacher RUN``), which must use the same preset."""
    config = read_config(run)
    if config.preset != cfg.preset:
        raise InputError(f"--teacher {run}: its preset is {config.preset}, this run's is {cfg.preset}")
    model, sampler, _ = load_model(run, "teacher", config, scene, device)
    return Teacher(model, sampler)
