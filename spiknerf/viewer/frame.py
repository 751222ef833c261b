"""One frame of the viewer: a camera, the model's rendering from it, and what the frame cost.

Besides colour and depth a frame can show what only a spiking field has, per
pixel (:func:`spiknerf.nerf.spike_map.ray_maps` measures each ray):

* ``spikes``: the spikes emitted along the pixel's ray (every sample point,
  layer, unit and time step; a ternary 2 counts twice);
* ``firing rate``: the same per neuron and time step, averaged over the ray's
  sample points (so that it does not grow with the number of samples);
* ``energy``: the energy of evaluating the ray's sample points, per sample
  point, relative to the ANN teacher's (1: the teacher's cost; its MACs per
  sample point do not depend on the input).

Maps use the spike-map colour ramp (dark: none, bright: the frame's largest
value, or the teacher's cost for energy when nothing costs more); the value at
the brightest colour comes with the frame's statistics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from spiknerf.nerf.evaluate import layer_of
from spiknerf.nerf.rays import focal_from_fov, frame_rays
from spiknerf.nerf.spike_map import RayMaps, colorize, ray_maps

OUTPUTS: tuple[str, ...] = ("colour", "depth", "spikes", "firing rate", "energy")
# viser's cameras have OpenCV axes (x right, y down, looking down +z); ours OpenGL's (y up, looking down -z)
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class ViewCamera:
    """A pinhole view: camera-to-world ``c2w [4, 4]`` (OpenGL convention), vertical field of view ``fov``
    (radians), and the frame's size in pixels; the principal point is the frame's centre."""

    c2w: np.ndarray
    fov: float
    width: int
    height: int

    def intrinsics(self) -> Tensor:
        f = focal_from_fov(self.height, self.fov)
        return torch.tensor([f, f, self.width / 2, self.height / 2], dtype=torch.float32)

    @classmethod
    def from_opencv(cls, c2w: np.ndarray, fov: float, width: int, height: int) -> ViewCamera:
        """The camera of a viser client (its ``c2w`` has OpenCV axes)."""
        return cls(np.asarray(c2w, dtype=np.float64) @ OPENCV_TO_OPENGL, float(fov), int(width), int(height))


@dataclass(frozen=True)
class SceneView:
    """What every frame of one scene shares.

    ``background`` ``[3]`` is composited behind the field; ``near`` and ``far``
    scale depth; ``ndc_camera`` is a forward-facing scene's training camera
    (:func:`~spiknerf.nerf.rays.frame_rays`), else ``None``; ``teacher_pj`` is
    the ANN teacher's energy per sample point, what the energy map divides by.
    """

    background: Tensor
    near: float
    far: float
    ndc_camera: tuple[float, float, int, int] | None
    teacher_pj: float
    e_mac: float
    e_ac: float


@dataclass
class FrameStats:
    """What one frame cost: totals over its rays, the firing rate of each spiking layer, and its map's scale."""

    model: str
    output: str
    width: int
    height: int
    seconds: float
    samples: float
    macs: float
    sops: float
    energy_pj: float
    teacher_pj: float  # the teacher's energy for the same sample points
    firing_rate: dict[str, float] = field(default_factory=dict)
    top: float = 0.0  # the value at the brightest colour of a map

    @property
    def rays(self) -> int:
        return self.width * self.height

    @property
    def energy_ratio(self) -> float:
        """This frame's energy over the teacher's for the same sample points (nan without samples)."""
        return self.energy_pj / self.teacher_pj if self.teacher_pj > 0 else math.nan


def picture(maps: RayMaps, output: str, scene: SceneView) -> tuple[Tensor, float]:
    """The colours ``[R, 3]`` in [0, 1] an output shows, and the value at the brightest colour of a map."""
    has = maps.samples > 0
    if output == "colour":
        return maps.rgb.clamp(0, 1), 1.0
    if output == "depth":
        depth = ((maps.depth - scene.near) / (scene.far - scene.near)).clamp(0, 1) * maps.opacity
        return depth[:, None].expand(-1, 3), scene.far
    if output == "spikes":
        values = maps.spikes
    elif output == "firing rate":
        per_sample = maps.ops.neuron_outputs / maps.ops.samples  # neuron outputs (units x steps) per sample point
        values = torch.where(has, maps.spikes / (maps.samples.clamp_min(1) * max(per_sample, 1.0)), 0.0)
    elif output == "energy":
        values = torch.where(has, maps.energy_pj / maps.samples.clamp_min(1) / scene.teacher_pj, 0.0)
        top = max(1.0, float(values.max()) if len(values) else 1.0)
        return colorize(values, top), top
    else:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (got {output!r})")
    top = float(values.max()) if len(values) else 0.0
    return colorize(values, top), top


@torch.no_grad()
def render_frame(model: nn.Module, sampler: nn.Module, scene: SceneView, camera: ViewCamera, output: str,
                 name: str = "") -> tuple[np.ndarray, FrameStats]:
    """A uint8 ``[H, W, 3]`` picture of ``output`` (one of :data:`OUTPUTS`) seen by ``camera``, and its cost."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (got {output!r})")
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    c2w = torch.as_tensor(camera.c2w, dtype=torch.float32)
    o, d, vd = frame_rays(c2w, camera.intrinsics(), camera.width, camera.height, scene.ndc_camera)
    maps = ray_maps(model, sampler, o.to(device), d.to(device), scene.background.to(device),
                    None if vd is None else vd.to(device), e_mac=scene.e_mac, e_ac=scene.e_ac)
    colours, top = picture(maps, output, scene)
    image = (colours.reshape(camera.height, camera.width, 3).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    samples = float(maps.samples.sum())
    ops = maps.ops
    stats = FrameStats(name, output, camera.width, camera.height, time.perf_counter() - t0, samples, ops.macs,
                       ops.sops, ops.energy_pj, scene.teacher_pj * samples,
                       {layer_of(k): v for k, v in ops.firing_rate.items()}, top)
    return image, stats
