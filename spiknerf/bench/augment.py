"""Training-time augmentation of flattened square images.

A random translation by up to ``pixels`` in each direction (zero fill) is the
cheapest augmentation that helps a pixel MLP trained on a few thousand MNIST
images. Digits at 8 x 8 are too small for it (one pixel is an eighth of the
image), so their default is no shift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_shift(x: Tensor, side: int, pixels: int, generator: torch.Generator | None = None) -> Tensor:
    """Translate each image of ``x`` ``[B, side*side]`` by a random offset in [-pixels, pixels]²."""
    if pixels == 0:
        return x
    b = x.shape[0]
    padded = F.pad(x.view(b, side, side), (pixels,) * 4)
    dy = torch.randint(0, 2 * pixels + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pixels + 1, (b,), generator=generator)
    grid = torch.arange(side)
    rows = (dy[:, None] + grid)[:, :, None]
    cols = (dx[:, None] + grid)[:, None, :]
    return padded[torch.arange(b)[:, None, None], rows, cols].reshape(b, side * side)
