"""A run's model rendered at a split's views: colour, opacity and the expected depth of what is seen.

The renderer's depth is ``Σ w_i t_i`` over a ray's samples, which shrinks with
the ray's opacity ``Σ w_i`` at silhouettes; the exports use the expected depth
of the surface the ray sees, ``Σ w_i t_i / Σ w_i`` (0 where nothing is seen), in
scene units along the ray (rays have unit directions in world space).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spiknerf.export.source import Source
from spiknerf.nerf.data import Split
from spiknerf.nerf.render import render_chunks
from spiknerf.nerf.run import eval_background

MIN_OPACITY = 1e-6  # below this a ray sees nothing and has no depth


@dataclass
class View:
    """One rendered view, ``[H, W]`` maps plus the rays: origins and unit directions ``[H * W, 3]``."""

    rgb: Tensor  # [H, W, 3], over the scene's background
    opacity: Tensor  # [H, W]
    depth: Tensor  # [H, W], expected depth of the surface seen
    origins: Tensor
    dirs: Tensor


def surface_depth(depth: Tensor, opacity: Tensor) -> Tensor:
    """``Σ w t / Σ w`` from the renderer's ``Σ w t`` and opacity; 0 where the opacity is below MIN_OPACITY."""
    seen = opacity > MIN_OPACITY
    return torch.where(seen, depth / opacity.clamp(min=MIN_OPACITY), torch.zeros_like(depth))


def render_view(source: Source, split: Split, index: int) -> View:
    """Render view ``index`` of ``split`` with the source's model, on its device."""
    o, d, vd = split.view_rays(index, source.device)
    image = render_chunks(source.model, source.sampler, o, d, eval_background(source.scene).to(source.device),
                          view_dirs=vd)
    h, w = split.height, split.width
    opacity = image.opacity.cpu().reshape(h, w)
    return View(image.rgb.cpu().reshape(h, w, 3), opacity, surface_depth(image.depth.cpu().reshape(h, w), opacity),
                o.cpu(), d.cpu())
