"""Whether a capture's photos differ in exposure or white balance enough for a per-photo appearance code.

nerfacto gives each training photo an embedding the colour network reads, so that what the camera changed
between photos (exposure, white balance) need not be baked into the scene. Whether a capture needs one can be
read off a model trained without it: fit each view's rendering to its photo by the best gain ``a`` and offset
``b`` per channel (least squares over the view's pixels, ``photo ≈ a * rendering + b``) and see how much error
goes. The fit is an upper bound on what a per-photo exposure and white balance could recover (it also absorbs
some of the model's own errors, and it sees the photo itself), and the gains' spread over the training views is
how much the photos' exposure varies around what the model rendered: a shared model renders their average.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from spiknerf.nerf.data import Split
from spiknerf.nerf.evaluate import render_split
from spiknerf.nerf.metrics import psnr


class ColourFit(NamedTuple):
    """One view's rendering against its photo, as rendered and after its best per-channel gain and offset."""

    psnr: float
    fitted_psnr: float
    gain: Tensor  # [3]
    offset: Tensor  # [3]


def colour_fit(rendering: Tensor, photo: Tensor) -> ColourFit:
    """The least-squares ``a``, ``b`` per channel with ``photo ≈ a * rendering + b``, over pixels ``[..., 3]``."""
    x, y = rendering.reshape(-1, 3).double(), photo.reshape(-1, 3).double()
    mx, my = x.mean(0), y.mean(0)
    var, cov = ((x - mx) ** 2).mean(0), ((x - mx) * (y - my)).mean(0)
    gain = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.ones(3, dtype=x.dtype))  # flat: gain 1
    offset = my - gain * mx
    fitted = (x * gain + offset).clamp(0, 1)
    return ColourFit(psnr(x, y), psnr(fitted, y), gain.float(), offset.float())


@torch.no_grad()
def split_colour_fits(model: nn.Module, sampler: nn.Module, split: Split, background: Tensor,
                      pixels: int, device: torch.device | str = "cpu") -> list[ColourFit]:
    """:func:`colour_fit` of every view of ``split``, each rendered on an even grid of at most ``pixels`` of its
    pixels (a photo's every pixel is not needed to fit six numbers)."""
    stride = split.grid_stride(1, pixels)
    views = list(range(len(split)))
    images = render_split(model, sampler, split, background, torch.device(device), views, stride)
    fits = []
    for v, image in zip(views, images, strict=True):
        photo = split.image(v, background.cpu())[::stride, ::stride]
        fits.append(colour_fit(image.rgb.cpu().reshape(photo.shape).clamp(0, 1), photo))
    return fits


def summary(fits: list[ColourFit]) -> dict[str, float]:
    """Mean PSNR as rendered and after each view's fit, and the spread over the views of the gains (standard
    deviation in per cent, the mean over channels) and of the offsets (in units of the [0, 1] colour)."""
    gains, offsets = torch.stack([f.gain for f in fits]), torch.stack([f.offset for f in fits])
    n = len(fits)
    spread = (lambda t: float(t.std(0, unbiased=False).mean())) if n > 1 else (lambda t: 0.0)
    return {"views": n, "psnr": sum(f.psnr for f in fits) / n, "fitted_psnr": sum(f.fitted_psnr for f in fits) / n,
            "gain_spread_pct": 100 * spread(gains), "offset_spread": spread(offsets),
            "gain_range_pct": 100 * float((gains.max(0).values - gains.min(0).values).mean())}
