"""A loaded scene: views (images, poses, intrinsics) per split, bounds and background.

Images stay uint8 ``[N, H, W, C]`` on the CPU; :meth:`Split.pixels` converts a
batch to float and composites RGBA onto a background. :meth:`Split.rays` turns
the same pixels into rays with :func:`spiknerf.nerf.rays.camera_rays`, already in
the scene's sampling space (NDC for forward-facing LLFF scenes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spiknerf.errors import InputError
from spiknerf.nerf.rays import camera_rays

BACKGROUNDS: tuple[str, ...] = ("white", "black", "random")
# A scene with a single set of views holds out every HOLDOUT-th one for test
# (views 0, 8, 16, ...), as the original NeRF code does for LLFF.
HOLDOUT = 8


def composite(values: Tensor, background: Tensor) -> Tensor:
    """uint8 RGB or RGBA ``[..., C]`` to float32 RGB ``[..., 3]`` in [0, 1], RGBA over ``background``."""
    rgba = values.to(torch.float32) / 255.0
    if rgba.shape[-1] == 3:
        return rgba
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + background.to(torch.float32) * (1.0 - alpha)


@dataclass
class Split:
    """The views of one split.

    ``images`` uint8 ``[N, H, W, C]`` (C = 3 or 4, RGBA kept); ``c2w`` float32
    ``[N, 4, 4]`` camera-to-world (OpenGL convention); ``intrinsics`` float32
    ``[N, 4]`` = (fx, fy, cx, cy) in pixels of these images; ``ndc``: rays are
    returned in normalized device coordinates (forward-facing scenes).
    """

    images: Tensor
    c2w: Tensor
    intrinsics: Tensor
    names: list[str]
    ndc: bool = False

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def pixels(self, index: Tensor, ys: Tensor, xs: Tensor, background: Tensor) -> Tensor:
        """Colours float32 ``[n, 3]`` in [0, 1]; RGBA is composited onto ``background`` (``[3]`` or ``[n, 3]``)."""
        return composite(self.images[index, ys, xs], background)

    def image(self, index: int, background: Tensor) -> Tensor:
        """One whole view as float32 ``[H, W, 3]``, composited onto ``background`` (``[3]``)."""
        return composite(self.images[index], background)

    def rays(self, index: Tensor, ys: Tensor, xs: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Origins and directions ``[n, 3]`` in the scene's sampling space, and the viewing directions.

        Directions are unit length in world space, or NDC directions with ``t`` in
        [0, 1] when ``ndc`` (see :mod:`spiknerf.nerf.rays`). The viewing directions
        are what view-dependent colour reads: unit world-space directions for NDC
        scenes, ``None`` elsewhere (there they are the directions).
        """
        return camera_rays(self.c2w[index], self.intrinsics[index], xs, ys, self.width, self.height, self.ndc)

    def image_pixels(self) -> tuple[Tensor, Tensor]:
        """Row-major ``(ys, xs)`` of every pixel of one view, ``[H * W]`` each."""
        ys, xs = torch.meshgrid(torch.arange(self.height), torch.arange(self.width), indexing="ij")
        return ys.reshape(-1), xs.reshape(-1)

    def view_rays(self, index: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`rays` of every pixel of view ``index``, row-major, on ``device``.

        Every pixel gathers its own copy of the camera, as a training batch does,
        so that evaluation renders exactly the rays that training would draw.
        """
        ys, xs = self.image_pixels()
        o, d, vd = self.rays(torch.full_like(ys, index), ys, xs)
        return o.to(device), d.to(device), None if vd is None else vd.to(device)

    def views(self, start: int, stop: int) -> Split:
        """Views ``start`` to ``stop - 1``, sharing this split's memory."""
        return Split(
            self.images[start:stop], self.c2w[start:stop], self.intrinsics[start:stop], self.names[start:stop],
            self.ndc,
        )


def make_split(
    images: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray, names: list[str], ndc: bool = False
) -> Split:
    """A :class:`Split` from numpy arrays (uint8 images, float poses and intrinsics); float32 must hold them."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    intrinsics = torch.as_tensor(intrinsics, dtype=torch.float32).reshape(-1, 4)
    bad = (~c2w.isfinite().flatten(1).all(1) | ~intrinsics.isfinite().all(1)).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{names[i]}: camera pose or intrinsics {intrinsics[i].tolist()} out of float32 range")
    return Split(torch.from_numpy(np.ascontiguousarray(images)), c2w, intrinsics, list(names), ndc)


def scale_intrinsics(intrinsics: np.ndarray, source_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Intrinsics ``[..., 4]`` given for images of ``source_size = (H, W)``, rescaled to ``size = (h, w)``.

    Pixel-centre coordinates scale with the image (``u' = u * w / W``), so the
    principal point scales like the focal length.
    """
    sy, sx = size[0] / source_size[0], size[1] / source_size[1]
    return np.asarray(intrinsics, dtype=np.float64) * np.array([sx, sy, sx, sy])


def holdout_order(n: int) -> list[int]:
    """Order of ``n`` views that puts the held-out ones (every ``HOLDOUT``-th) last.

    Loading views in this order lets :func:`hold_out` cut train and test as
    slices of one image array instead of copying it (256 MB for lego).
    """
    return [i for i in range(n) if i % HOLDOUT] + list(range(0, n, HOLDOUT))


def hold_out(views: Split, reason: str) -> tuple[Split, Split, str]:
    """(train, test, note) from views loaded in :func:`holdout_order`; ``reason`` starts the note."""
    n = len(views)
    n_test = len(range(0, n, HOLDOUT))
    test = views.views(n - n_test, n)
    # a single view: train and test on it rather than train on nothing
    train = views.views(0, n - n_test) if n > n_test else test
    note = f"{reason}: every {HOLDOUT}th view ({n_test} of {n}) held out for test"
    return train, test, note


@dataclass
class Scene:
    """A loaded scene: splits ``train`` and ``test`` (and ``val`` if present), bounds and background.

    ``aabb`` = (xmin, ymin, zmin, xmax, ymax, zmax) is the box the sampler marches
    in, ``near``/``far`` the ray parameter bounds; both are in NDC when ``ndc``.
    ``background`` is what RGBA images are composited on: white, black or random.
    """

    name: str
    format: str
    splits: dict[str, Split]
    aabb: Tensor
    near: float
    far: float
    background: str
    ndc: bool
    notes: list[str] = field(default_factory=list)
    path: Path | None = None
    downscale: int = 1

    def summary(self) -> str:
        """Multi-line description for ``--dry-run`` and logs."""
        lo = ", ".join(f"{v:.3g}" for v in self.aabb[:3].tolist())
        hi = ", ".join(f"{v:.3g}" for v in self.aabb[3:].tolist())
        has_alpha = any(s.channels == 4 for s in self.splits.values())
        lines = [
            f"scene: {self.name} ({self.format}) from {self.path}",
            f"downscale: {self.downscale}",
        ]
        for name, s in self.splits.items():
            kind = "RGBA" if s.channels == 4 else "RGB"
            lines.append(f"  {name}: {len(s)} views, {s.width} x {s.height} {kind}")
        space = "NDC (forward-facing)" if self.ndc else "world"
        lines.append(f"bounds ({space}): aabb ({lo}) to ({hi}), near {self.near:.3g}, far {self.far:.3g}")
        bg = self.background if has_alpha else f"{self.background} (unused: the images have no alpha)"
        lines.append(f"background: {bg}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
