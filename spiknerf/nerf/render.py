"""Volume rendering of sampled rays through a field, with nerfacc's compositing.

nerfacc's packed rendering needs its CUDA extension; its batched
``(n_rays, n_samples)`` functions run anywhere. So without the extension (on
the CPU, or on CUDA where it is unavailable: :func:`nerfacc_cuda`) the packed
samples are evaluated packed (no wasted field work) and scattered into a padded
``[rays, max samples]`` layout for ``nerfacc.rendering``; padding has zero
density and so zero weight. With it the packed path is used directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import nerfacc
import torch
from torch import Tensor, nn

from spiknerf import threads
from spiknerf.nerf.distill import teacher_targets
from spiknerf.nerf.sampler import OccupancyGridSampler, RaySamples, nerfacc_cuda, packed_to_padded

FieldFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # points, unit dirs [S, 3] -> sigma [S], rgb [S, 3]


@dataclass
class Rendered:
    """Per-ray outputs, plus the packed field outputs (for distillation and statistics)."""

    rgb: Tensor  # [R, 3]
    opacity: Tensor  # [R]
    depth: Tensor  # [R]
    samples: RaySamples
    sigmas: Tensor  # [S]
    rgbs: Tensor  # [S, 3]
    points: Tensor  # [S, 3]
    directions: Tensor  # [S, 3]
    teacher: tuple[Tensor, Tensor] | None = None  # a marching teacher's density [S] and colour [S, 3] (render_rays)


def composite(field_fn: FieldFn, samples: RaySamples, origins: Tensor, dirs: Tensor, background: Tensor,
              view_dirs: Tensor | None = None) -> Rendered:
    """Evaluate the field at the samples and alpha-composite them over ``background`` (``[3]`` or ``[R, 3]``).

    ``view_dirs`` (unit, world space) are what the field's colour reads when the
    marching directions are not (NDC scenes).
    """
    points, d = samples.points(origins, dirs)
    if view_dirs is not None:
        d = view_dirs[samples.ray_indices]
    if samples.sigmas is not None and samples.values is not None:  # the sampler shaded them as it marched
        sigmas, rgbs = samples.sigmas, samples.values
    elif len(samples):
        sigmas, rgbs = field_fn(points, d)
    else:
        sigmas, rgbs = points.new_zeros(0), points.new_zeros(0, 3)
    rgbs, sigmas = rgbs.to(origins.dtype), sigmas.to(origins.dtype)  # float32 again after mixed precision
    n = samples.n_rays
    if origins.is_cuda and origins.dtype == torch.float32 and nerfacc_cuda():  # its kernels take float32 only
        rgb, opacity, depth, _ = nerfacc.rendering(
            samples.t_starts, samples.t_ends, samples.ray_indices, n_rays=n,
            rgb_sigma_fn=lambda *_: (rgbs, sigmas), render_bkgd=None,
        )
    else:
        pad = lambda v: packed_to_padded(v, samples.ray_indices, n)  # noqa: E731
        t_starts, t_ends = pad(samples.t_starts), pad(samples.t_ends)
        rgb, opacity, depth, _ = nerfacc.rendering(
            t_starts, t_ends, rgb_sigma_fn=lambda *_: (pad(rgbs), pad(sigmas)), render_bkgd=None,
        )
    rgb = rgb + background * (1.0 - opacity)
    return Rendered(rgb, opacity[:, 0], depth[:, 0], samples, sigmas, rgbs, points, d)


def render_rays(field, sampler, origins: Tensor, dirs: Tensor, background: Tensor, stratified: bool = False,
                view_dirs: Tensor | None = None, sigma_fn: Callable[[Tensor], Tensor] | None = None,
                jitter: Tensor | None = None, shade: bool = False, teacher: nn.Module | None = None) -> Rendered:
    """Sample the rays with ``sampler`` and composite ``field`` at the samples.

    The sampler skips samples whose transmittance is spent by ``sigma_fn``, by default ``field.density``;
    ``jitter``: the rays' offsets into their first marching step, if not the sampler's own draws.
    ``shade`` (rendering without gradients, with the field's own density): an occupancy-grid sampler evaluates
    the whole field as it marches, so that each sample's encoding and trunk are read once, not twice.
    ``teacher`` (a distilled student's frozen teacher: a teacher field, :mod:`spiknerf.nerf.fields`) marches the
    rays instead of ``sigma_fn``, and its density and colour at the kept samples come back in ``Rendered.teacher``. An
    occupancy-grid sampler keeps the teacher's density and colour features as it marches, at the very points
    ``field`` is then evaluated at, and the colour is computed from them at the kept samples alone: the teacher's
    encoding and trunk are read once a sample, not twice. Other samplers evaluate it again at the samples.
    """
    if teacher is not None and isinstance(sampler, OccupancyGridSampler):
        samples = sampler.sample(origins, dirs, stratified=stratified, jitter=jitter,
                                 shade_fn=lambda x, _: teacher.trunk(x))
    elif shade and sigma_fn is None and isinstance(sampler, OccupancyGridSampler):
        look = dirs if view_dirs is None else view_dirs
        samples = sampler.sample(origins, dirs, stratified=stratified, jitter=jitter,
                                 shade_fn=lambda x, rays: field(x, look[rays]))
    else:
        march_fn = sigma_fn or (field if teacher is None else teacher).density
        samples = sampler.sample(origins, dirs, sigma_fn=march_fn, stratified=stratified, jitter=jitter)
    if teacher is None:
        return composite(field, samples, origins, dirs, background, view_dirs)
    out = composite(field, replace(samples, sigmas=None, values=None), origins, dirs, background, view_dirs)
    if samples.sigmas is None:
        out.teacher = teacher_targets(teacher, out.points, out.directions)
    else:
        with torch.no_grad():
            out.teacher = samples.sigmas.float(), teacher.color(samples.values, out.directions).float()
    return out


@dataclass
class Image:
    """A rendered view, flattened row-major: rgb ``[P, 3]``, depth and opacity ``[P]``."""

    rgb: Tensor
    depth: Tensor
    opacity: Tensor
    samples_per_ray: float

    def cpu(self) -> Image:
        """The same view with its tensors in CPU memory (to send to another process)."""
        return Image(self.rgb.cpu(), self.depth.cpu(), self.opacity.cpu(), self.samples_per_ray)


@torch.no_grad()
def render_chunks(field, sampler, origins: Tensor, dirs: Tensor, background: Tensor,
                  view_dirs: Tensor | None = None, chunk: int | None = None) -> Image:
    """Render many rays in chunks without gradients, over a constant ``background`` ``[3]``.

    ``chunk`` rays at a time; by default the sampler's ``render_chunk`` (sized so
    that a chunk's samples fit in cache and memory), else 4096.
    """
    chunk = chunk or getattr(sampler, "render_chunk", 4096)
    parts, n_samples = [], 0
    for start in range(0, len(origins), chunk):
        sl = slice(start, start + chunk)
        vd = None if view_dirs is None else view_dirs[sl]
        threads.adapt()  # before the chunk, as before a training step: a first drop comes before the first compile
        out = render_rays(field, sampler, origins[sl], dirs[sl], background, view_dirs=vd, shade=True)
        parts.append((out.rgb, out.depth, out.opacity))
        n_samples += len(out.samples)
    rgb, depth, opacity = (torch.cat(p) for p in zip(*parts, strict=True))
    return Image(rgb, depth, opacity, n_samples / max(len(origins), 1))
