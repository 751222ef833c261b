"""The three presets: each builds its fields and sampler and says how they train.

* ``fast``: hash grid + small MLP, occupancy-grid marching (Instant-NGP / nerfacc style).
* ``paper``: the NeRF MLP (8 x 256) with positional encoding and 64 + 128
  coarse-to-fine samples (the Spik-NeRF setup), with the batch sized by samples
  so that it fits a CPU.
* ``mlp``: the same kind of MLP at 4 x 128, marched through the occupancy grid:
  as in the paper, every hidden layer of its student spikes, but teacher and
  student train on a CPU in a fraction of the paper preset's time
  (docs/benchmarks.md, "mlp preset"). Teacher and student get the same steps:
  with a third of them the teacher ended below its own spiking students, and
  the students were far from converged
  (docs/notes/2026-11-28-spiknerf-table-history.md).

A preset is an object whose methods build what a run needs (``teacher``,
``student``, ``sampler``, ``optimizer``, ``scheduler``), so that the rest of the
code asks ``PRESETS[name]`` for them instead of comparing preset names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spiknerf.nerf.data import Scene
from spiknerf.nerf.fields import NeRFField, NGPField
from spiknerf.nerf.footprint import grid_resolution, march_step
from spiknerf.nerf.sampler import (
    CoarseToFineSampler,
    NerfaccOccupancySampler,
    OccupancyGridSampler,
    nerfacc_cuda,
)
from spiknerf.nerf.student import SpikingNeRFField, SpikingNGPField, StudentSettings


def lr_lambda(steps: int, warmup: int) -> Callable[[int], float]:
    """Linear warm-up, then x0.33 at 1/2, 3/4 and 9/10 of the steps (nerfacc's Instant-NGP schedule)."""
    milestones = [steps // 2, steps * 3 // 4, steps * 9 // 10]

    def factor(step: int) -> float:
        warm = min(1.0, 0.01 + 0.99 * step / max(warmup, 1))
        return warm * 0.33 ** sum(step >= m for m in milestones)

    return factor


@dataclass(frozen=True, kw_only=True)
class Preset:
    """What a preset shares: its optimisation settings, and occupancy-grid marching. Subclasses add the fields."""

    name: str
    teacher_steps: int  # default training steps of the teacher
    student_steps: int  # and of the student (its step costs more than the teacher's: docs/benchmarks.md)
    lr: float
    target_samples: int  # samples per batch; the number of rays follows the samples per ray
    min_rays: int
    max_rays: int
    warmup_steps: int = 100  # linear learning-rate warm-up
    # teacher and student steps for a forward-facing capture, if not the same: a photo's ray marches more samples
    # than an object's, and the default job on one must fit the 2-core CPU's budget (issue 30)
    forward_steps: tuple[int, int] | None = None
    has_color_branch: bool = False  # whether its student has the colour branch --color-hidden and --no-color-skip set

    def teacher(self, scene: Scene) -> nn.Module:
        """The ANN field."""
        raise NotImplementedError

    def student(self, scene: Scene, settings: StudentSettings) -> nn.Module:
        """The spiking field, with the neurons of ``settings``."""
        raise NotImplementedError

    def checks(self, settings: StudentSettings) -> list[tuple[bool, str]]:
        """(holds, what to say if not) for each student setting this preset's student must respect."""
        fast_only = "applies to the fast preset's student only"
        return [(settings.color_skip or self.has_color_branch, f"--no-color-skip {fast_only}"),
                (settings.color_hidden == StudentSettings.color_hidden or self.has_color_branch,
                 f"--color-hidden {fast_only}")]

    def default_steps(self, phase: str, kind: str = "object") -> int:
        """Training steps of ``phase`` (teacher or student) on a scene of ``kind`` when ``--steps`` is not given."""
        teacher, student = (self.forward_steps if kind == "forward" and self.forward_steps
                            else (self.teacher_steps, self.student_steps))
        return student if phase == "student" else teacher

    def sampler(self, scene: Scene, device: torch.device) -> nn.Module:
        """Occupancy-grid marching: nerfacc's on CUDA when its extension loads, else ours; ours always for an
        unbounded scene, whose grid covers contracted space."""
        if scene.unbounded:
            return OccupancyGridSampler(scene.aabb, scene.near, scene.far, march_step(scene), contract=True)
        cls = NerfaccOccupancySampler if device.type == "cuda" and nerfacc_cuda() else OccupancyGridSampler
        return cls(scene.aabb, scene.near, scene.far, march_step(scene))

    def optimizer(self, model: nn.Module) -> torch.optim.Adam:
        """Adam; the MLP weights get a little weight decay, the encoding table none (Instant-NGP)."""
        table = [p for n, p in model.named_parameters() if n.startswith("encoding.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("encoding.")]
        groups = [{"params": rest, "weight_decay": 1e-6}] + ([{"params": table}] if table else [])
        return torch.optim.Adam(groups, lr=self.lr, eps=1e-15, fused=True)  # fused: a much faster step on the CPU

    def scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """The learning-rate schedule of a phase of ``steps`` steps (:func:`lr_lambda`)."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(steps, self.warmup_steps))

    def rays_per_batch(self, samples_per_ray: float, samples: int | None = None) -> int:
        """Rays of a batch that holds about ``samples`` samples (default ``target_samples``), within ``min_rays`` to
        ``max_rays`` (scaled as ``samples`` is to ``target_samples``)."""
        if samples is None:
            samples, lo, hi = self.target_samples, self.min_rays, self.max_rays
        else:
            scale = samples / self.target_samples
            lo, hi = max(1, int(self.min_rays * scale)), max(1, int(self.max_rays * scale))
        n = int(samples / max(samples_per_ray, 1e-3))
        return max(lo, min(hi, n))


@dataclass(frozen=True, kw_only=True)
class HashGridPreset(Preset):
    """A hash grid and a small MLP (Instant-NGP); its student keeps the grid and spikes in the MLP."""

    has_color_branch: bool = True

    def teacher(self, scene: Scene) -> nn.Module:
        return NGPField(scene.aabb, max_resolution=grid_resolution(scene), contract=scene.unbounded)

    def student(self, scene: Scene, settings: StudentSettings) -> nn.Module:
        return SpikingNGPField(scene.aabb, color_hidden=settings.color_hidden, color_skip=settings.color_skip,
                               max_resolution=grid_resolution(scene),
                               contract=scene.unbounded, **settings.layer_kwargs())


@dataclass(frozen=True, kw_only=True)
class MLPPreset(Preset):
    """The NeRF MLP with positional encoding, ``depth`` x ``width`` with the skip at layer ``skip``."""

    depth: int
    width: int
    skip: int

    def teacher(self, scene: Scene) -> nn.Module:
        return NeRFField(scene.aabb, depth=self.depth, width=self.width, skip=self.skip, contract=scene.unbounded)

    def student(self, scene: Scene, settings: StudentSettings) -> nn.Module:
        return SpikingNeRFField(scene.aabb, depth=self.depth, width=self.width, skip=self.skip,
                                contract=scene.unbounded, **settings.layer_kwargs())


@dataclass(frozen=True, kw_only=True)
class CoarseToFinePreset(MLPPreset):
    """The NeRF MLP with the original NeRF's coarse-to-fine sampling instead of the occupancy grid."""

    def sampler(self, scene: Scene, device: torch.device) -> nn.Module:
        return CoarseToFineSampler(scene.near, scene.far)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    # the fast preset's steps: the fewest measured that keep the default run's quality targets on lego
    # (docs/benchmarks.md, "Step budgets"; docs/notes/2026-11-29-cpu-budgets.md); the student's 2000 fell just
    # short once its layers were compiled, and its faster step pays for 2500 (docs/notes/2026-11-29-cpu-threads.md)
    HashGridPreset(name="fast", teacher_steps=4000, student_steps=2500, lr=1e-2, target_samples=1 << 13,
                   min_rays=256, max_rays=2048, forward_steps=(1500, 1000)),
    CoarseToFinePreset(name="paper", teacher_steps=3000, student_steps=3000, lr=5e-4, target_samples=1 << 14,
                       min_rays=32, max_rays=1024, depth=8, width=256, skip=4),
    MLPPreset(name="mlp", teacher_steps=12000, student_steps=12000, lr=5e-4, target_samples=1 << 14, min_rays=32,
              max_rays=1024, depth=4, width=128, skip=2),
)}
