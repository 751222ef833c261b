"""The three presets: which field, sampler and optimisation settings a run uses.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from spiknerf.nerf.student import SpikingNeRFField, SpikingNGPField


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int  # default training steps of the teacher
    student_steps: int  # and of the student (its step costs more than the teacher's: docs/benchmarks.md)
    lr: float
    target_samples: int  # samples per batch; the number of rays follows the samples per ray
    min_rays: int
    max_rays: int
    warmup_steps: int  # linear learning-rate warm-up


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", steps=5000, student_steps=3500, lr=1e-2, target_samples=1 << 13, min_rays=256,
                   max_rays=2048, warmup_steps=100),
    "paper": Preset("paper", steps=3000, student_steps=3000, lr=5e-4, target_samples=1 << 14, min_rays=32,
                    max_rays=1024, warmup_steps=100),
    "mlp": Preset("mlp", steps=12000, student_steps=12000, lr=5e-4, target_samples=1 << 14, min_rays=32,
                  max_rays=1024, warmup_steps=100),
}

# depth, width and skip layer of the NeRF MLP of the presets that use one
MLP_SHAPES: dict[str, dict[str, int]] = {"paper": dict(depth=8, width=256, skip=4),
                                         "mlp": dict(depth=4, width=128, skip=2)}


def build_teacher(preset: str, scene: Scene) -> nn.Module:
    """The ANN field of a preset."""
    if preset == "fast":
        return NGPField(scene.aabb, max_resolution=grid_resolution(scene), contract=scene.unbounded)
    return NeRFField(scene.aabb, **MLP_SHAPES[preset], contract=scene.unbounded)


def with_saved_neuron_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A run config with the student neuron of its time: runs saved before ``reset``, ``threshold`` and
    ``delta_v`` were options trained a hard reset, θ = 0.5 and Δv = 1."""
    return config if "reset" in config else {**config, "reset": "hard", "threshold": 0.5, "delta_v": 1.0}


def build_student(preset: str, scene: Scene, config: dict[str, Any]) -> nn.Module:
    """The spiking field of a preset, with the neuron options of a run ``config`` (``neuron``, ``T``, ...).

    The neurons integrate their input current without the 1/τ input decay
    (``decay_input=False``): the same dynamics with the decay folded into the
    weights, so that default-initialised layers start close enough to the
    threshold to fire. A ternary neuron fires 1 at θ and 2 at θ + Δv (Δv = θ
    unless set), and its soft reset subtracts θ S, so that what a step does not
    spend carries to the next: at T = 2 a constant current then gives spike
    counts 0 to 4, where a hard reset gives 0, 1, 2 or 4.
    """
    config = with_saved_neuron_defaults(config)
    theta, delta_v = config["threshold"], config.get("delta_v")
    kw = dict(neuron=config["neuron"].replace("-", "_"), T=config["T"],
              learnable_threshold=config.get("learnable_threshold", False),
              surrogate=config.get("surrogate", "atan"), decay_input=False, reset=config["reset"],
              v_threshold=theta, delta_v=theta if delta_v is None else delta_v)
    if preset == "fast":
        return SpikingNGPField(scene.aabb, color_skip=config.get("color_skip", True),
                               max_resolution=grid_resolution(scene), contract=scene.unbounded, **kw)
    return SpikingNeRFField(scene.aabb, **MLP_SHAPES[preset], contract=scene.unbounded, **kw)


def build_sampler(preset: str, scene: Scene, device: torch.device) -> nn.Module:
    """Coarse-to-fine for the paper preset, else occupancy-grid marching (nerfacc's on CUDA when its
    extension loads, else ours; ours always for unbounded scenes, whose grid covers contracted space)."""
    if preset == "paper":
        return CoarseToFineSampler(scene.near, scene.far)
    if scene.unbounded:
        return OccupancyGridSampler(scene.aabb, scene.near, scene.far, march_step(scene), contract=True)
    cls = NerfaccOccupancySampler if device.type == "cuda" and nerfacc_cuda() else OccupancyGridSampler
    return cls(scene.aabb, scene.near, scene.far, march_step(scene))
