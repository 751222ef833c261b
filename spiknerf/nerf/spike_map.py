"""Per-ray spike counts of a spiking field: where in an image the student's neurons fire.

A ray's count is the number of spikes that every spiking unit of the field emits
at every sample point the renderer evaluates along the ray, over all T steps:

    count(ray) = Σ_samples Σ_layers Σ_t Σ_units |s|

A ternary spike of 2 counts as two spikes (and a signed-ternary -1 as one), so
the count is what the layers reading the spikes receive, not how many units fired.
Counts are taken from the neurons' raw outputs, so a folded (re-parameterized)
student gives the same counts as its training form.

``weighting="sum"`` (the default) adds every evaluated sample alike: the spikes a
chip spends on the ray. ``weighting="rendering"`` weights each sample by its
volume-rendering weight ``T_i α_i``: the spikes behind what the pixel shows. A
ray whose marching finds no sample (it misses the scene box, or crosses only
empty occupancy-grid cells) has count 0 either way.

The result is one value per ray (``[R]``), for the caller to reshape into an
image; :func:`colorize` turns such an image into colours.

:func:`ray_maps` renders the rays and measures them in one pass: colour, depth
and opacity beside each ray's sample points, spikes (as ``weighting="sum"``)
and energy (what :class:`~spiknerf.neurons.OpRecorder` counts for its samples:
MACs of the analog layers, synaptic operations of the spike-reading ones), and
the frame's op totals and firing rate per layer. It works for any field; an ANN
has no spikes, and its energy is its MACs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from spiknerf.nerf.render import composite
from spiknerf.neurons import E_AC_PJ, E_MAC_PJ, LIFNeuron, OpCount, OpRecorder

Weighting = Literal["sum", "rendering"]
# black -> purple -> orange -> pale yellow (close to matplotlib's "inferno"), evenly spaced in [0, 1]
_RAMP = torch.tensor([[0.0, 0.0, 0.016], [0.341, 0.063, 0.431], [0.735, 0.216, 0.330], [0.976, 0.557, 0.035],
                      [0.988, 1.0, 0.643]])


@contextmanager
def counting_spikes(field: nn.Module) -> Iterator[list[Tensor]]:
    """While active, every neuron module of ``field`` appends its spikes per sample (``[B]``) to the list."""
    counts: list[Tensor] = []

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        # neuron outputs are [T, B, units]: sum over time steps and units, one count per sample
        counts.append(out.detach().abs().sum(dim=(0, *range(2, out.dim()))))

    handles = [m.register_forward_hook(hook) for m in field.modules() if isinstance(m, LIFNeuron)]
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()


def rendering_weights(sigmas: Tensor, t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor) -> Tensor:
    """Volume-rendering weight ``T_i (1 - exp(-σ_i δ_i))`` of each packed sample (``ray_indices`` sorted)."""
    if len(sigmas) == 0:
        return sigmas
    sdt = sigmas * (t_ends - t_starts)
    exclusive = torch.cumsum(sdt, 0) - sdt
    _, counts = torch.unique_consecutive(ray_indices, return_counts=True)
    firsts = torch.cumsum(counts, 0) - counts
    base = torch.repeat_interleave(exclusive[firsts], counts)  # optical depth before each ray's first sample
    return torch.exp(-(exclusive - base)) * (1.0 - torch.exp(-sdt))


@torch.no_grad()
def spike_map(field: nn.Module, sampler: nn.Module, origins: Tensor, dirs: Tensor, background: Tensor,
              view_dirs: Tensor | None = None, weighting: Weighting = "sum", chunk: int | None = None) -> Tensor:
    """Spikes emitted along each ray ``[R]`` (float), marched and evaluated as :func:`render_chunks` renders.

    Args:
        field: a spiking field (its neurons are :class:`~spiknerf.neurons.LIFNeuron` modules).
        sampler: the run's sampler; the field's own density drops the samples behind spent transmittance.
        origins, dirs: rays ``[R, 3]`` (unit directions).
        background: the constant background ``[3]`` the rendering composites over.
        view_dirs: what the colour branch reads for NDC scenes (``[R, 3]``), else ``None``.
        weighting: ``"sum"`` (every evaluated sample alike) or ``"rendering"`` (each sample by its weight).
        chunk: rays at a time (default: the sampler's ``render_chunk``, else 4096).

    Example::

        o, d, vd = split.view_rays(0)
        image = spike_map(student, sampler, o, d, torch.ones(3), vd).reshape(split.height, split.width)
    """
    if weighting not in ("sum", "rendering"):
        raise ValueError(f"weighting must be 'sum' or 'rendering' (got {weighting!r})")
    if not any(isinstance(m, LIFNeuron) for m in field.modules()):
        raise ValueError("field has no spiking neurons (an ANN teacher?)")
    chunk = chunk or getattr(sampler, "render_chunk", 4096)
    out = torch.zeros(len(origins), device=origins.device)
    for start in range(0, len(origins), chunk):
        sl = slice(start, start + chunk)
        o, d = origins[sl], dirs[sl]
        samples = sampler.sample(o, d, sigma_fn=field.density)
        if len(samples) == 0:
            continue
        with counting_spikes(field) as counts:
            rendered = composite(field, samples, o, d, background, None if view_dirs is None else view_dirs[sl])
        per_sample = torch.stack(counts).sum(0).to(out.dtype)
        if weighting == "rendering":
            per_sample = per_sample * rendering_weights(rendered.sigmas, samples.t_starts, samples.t_ends,
                                                        samples.ray_indices)
        out[sl] = torch.zeros(len(o), device=out.device).index_add_(0, samples.ray_indices, per_sample)
    return out


@dataclass
class RayMaps:
    """A rendering and what it cost, per ray: ``rgb [R, 3]``, the rest ``[R]``; ``ops``: totals over all rays."""

    rgb: Tensor
    depth: Tensor
    opacity: Tensor
    samples: Tensor  # sample points evaluated along the ray
    spikes: Tensor  # spikes emitted at them (every layer, unit and step; a 2 counts twice)
    energy_pj: Tensor  # energy of evaluating them, MACs at e_mac and synaptic operations at e_ac
    ops: OpCount  # MACs, SOPs and firing rate per layer over every sample of every ray


@torch.no_grad()
def ray_maps(field: nn.Module, sampler: nn.Module, origins: Tensor, dirs: Tensor, background: Tensor,
             view_dirs: Tensor | None = None, chunk: int | None = None, e_mac: float = E_MAC_PJ,
             e_ac: float = E_AC_PJ) -> RayMaps:
    """Render rays as :func:`~spiknerf.nerf.render.render_chunks` does and measure each one (see :class:`RayMaps`).

    Arguments as :func:`spike_map`'s; ``e_mac`` and ``e_ac`` price a MAC and an accumulate in pJ.

    Example::

        maps = ray_maps(student, sampler, o, d, torch.ones(3))
        spikes_per_ray = maps.spikes.reshape(h, w)
        per_sample = maps.energy_pj / maps.samples.clamp_min(1)  # pJ per sample point along each ray
    """
    chunk = chunk or getattr(sampler, "render_chunk", 4096)
    n, dev = len(origins), origins.device
    rgb, depth, opacity = origins.new_zeros(n, 3), origins.new_zeros(n), origins.new_zeros(n)
    samples, spikes, energy = (torch.zeros(n, device=dev) for _ in range(3))
    recorder = OpRecorder(field, e_mac, e_ac, per_sample=True)
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        o, d = origins[sl], dirs[sl]
        marched = sampler.sample(o, d, sigma_fn=field.density)
        with counting_spikes(field) as counts, recorder:
            out = composite(field, marched, o, d, background, None if view_dirs is None else view_dirs[sl])
        rgb[sl], depth[sl], opacity[sl] = out.rgb, out.depth, out.opacity
        if len(marched) == 0:
            continue
        per_sample = [torch.ones(len(marched), device=dev), torch.stack(counts).sum(0) if counts else None,
                      torch.stack(recorder.sample_energy).sum(0) if recorder.sample_energy else None]
        recorder.sample_energy.clear()
        for target, values in zip((samples, spikes, energy), per_sample, strict=True):
            if values is not None:
                target[sl] = torch.zeros(len(o), device=dev).index_add_(0, marched.ray_indices, values.float())
    return RayMaps(rgb, depth, opacity, samples, spikes, energy, recorder.result(max(int(samples.sum()), 1)))


def colorize(values: Tensor, top: float | None = None) -> Tensor:
    """Colours ``[..., 3]`` in [0, 1] for non-negative ``values`` (dark: none, bright: ``top`` or more).

    ``top`` defaults to the largest value. The ramp is perceptually ordered, so
    brighter always means more.
    """
    top = float(values.max()) if top is None else top
    x = (values.float() / top if top > 0 else torch.zeros_like(values, dtype=torch.float32)).clamp(0, 1)
    pos = x * (len(_RAMP) - 1)
    lo = pos.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    return _RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac
