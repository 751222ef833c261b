"""A loaded scene: views (images, poses, intrinsics) per split, bounds and background.

Images stay uint8 ``[N, H, W, C]`` on the CPU; :meth:`Split.pixels` converts a
batch to float and composites RGBA onto a background. :meth:`Split.rays` turns
the same pixels into rays with :func:`spiknerf.nerf.rays.camera_rays`, already in
the scene's sampling space (NDC for forward-facing LLFF scenes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from spiknerf.errors import InputError
from spiknerf.nerf.distortion import COEFFICIENTS, inversion_error
from spiknerf.nerf.rays import camera_rays

if TYPE_CHECKING:
    from spiknerf.nerf.data.framing import Hints

BACKGROUNDS: tuple[str, ...] = ("white", "black", "random")
# A scene with a single set of views holds out every HOLDOUT-th one for test
# (views 0, 8, 16, ...), as the original NeRF code does for LLFF.
HOLDOUT = 8
# Lens coefficients beyond this are no real lens's; an undistorted pixel must land within this many pixels
# of where it started once distorted again
MAX_DISTORTION = 100.0
MAX_INVERSION_ERROR = 0.01


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
    returned in normalized device coordinates (forward-facing scenes);
    ``distortion`` float32 ``[N, 5]`` = the lens's (k1, k2, k3, p1, p2), None for
    pinhole photos (:mod:`spiknerf.nerf.distortion`).
    """

    images: Tensor
    c2w: Tensor
    intrinsics: Tensor
    names: list[str]
    ndc: bool = False
    distortion: Tensor | None = None

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
        return camera_rays(self.c2w[index], self.intrinsics[index], xs, ys, self.width, self.height, self.ndc,
                           self._distortion(index))

    def _distortion(self, index: Tensor | int) -> Tensor | None:
        return None if self.distortion is None else self.distortion[index]

    def image_pixels(self, stride: int = 1) -> tuple[Tensor, Tensor]:
        """Row-major ``(ys, xs)`` of every ``stride``-th pixel of one view along each axis (every pixel: ``[H * W]``
        each)."""
        ys, xs = torch.meshgrid(torch.arange(0, self.height, stride), torch.arange(0, self.width, stride),
                                indexing="ij")
        return ys.reshape(-1), xs.reshape(-1)

    def grid_stride(self, views: int, pixels: int) -> int:
        """The stride of the even pixel grid (:meth:`image_pixels`) that keeps ``views`` views within ``pixels``
        pixels (1, every pixel, when ``pixels`` is 0 or enough)."""
        h, w = self.height, self.width
        if pixels <= 0 or views * h * w <= pixels:
            return 1
        stride = math.ceil(math.sqrt(views * h * w / pixels))
        while views * -(-h // stride) * -(-w // stride) > pixels and stride < max(h, w):
            stride += 1
        return stride

    def view_rays(self, index: int, device: torch.device | str = "cpu",
                  stride: int = 1) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`rays` of every pixel of view ``index`` (every ``stride``-th along each axis), row-major, on
        ``device``.

        Every pixel gathers its own copy of the camera, as a training batch does,
        so that evaluation renders exactly the rays that training would draw.
        """
        ys, xs = self.image_pixels(stride)
        o, d, vd = self.rays(torch.full_like(ys, index), ys, xs)
        return o.to(device), d.to(device), None if vd is None else vd.to(device)

    def views(self, start: int, stop: int) -> Split:
        """Views ``start`` to ``stop - 1``, sharing this split's memory."""
        return Split(
            self.images[start:stop], self.c2w[start:stop], self.intrinsics[start:stop], self.names[start:stop],
            self.ndc, None if self.distortion is None else self.distortion[start:stop],
        )


def make_split(
    images: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray, names: list[str], ndc: bool = False,
    distortion: np.ndarray | None = None,
) -> Split:
    """A :class:`Split` from numpy arrays (uint8 images, float poses and intrinsics, the lenses' distortion
    ``[N, 5]`` or None); float32 must hold them. A distortion of zeros everywhere is a pinhole camera (None)."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    intrinsics = torch.as_tensor(intrinsics, dtype=torch.float32).reshape(-1, 4)
    bad = (~c2w.isfinite().flatten(1).all(1) | ~intrinsics.isfinite().all(1)).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{names[i]}: camera pose or intrinsics {intrinsics[i].tolist()} out of float32 range")
    lens = None
    if distortion is not None and np.any(distortion):
        lens = torch.as_tensor(distortion, dtype=torch.float32).reshape(-1, 5)
    return Split(torch.from_numpy(np.ascontiguousarray(images)), c2w, intrinsics, list(names), ndc, lens)


def lens_distortion(coeffs: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int], names: list[str],
                    source: str) -> tuple[np.ndarray | None, str | None]:
    """Validated lens distortion ``[N, 5]`` (k1, k2, k3, p1, p2) of views with ``intrinsics [N, 4]`` and images of
    ``size = (H, W)``, and a note for the log; (None, None) for pinhole cameras.

    Coefficients that cannot be inverted over the image (the map folds over, or
    Newton's method fails on it) are refused rather than turned into wrong rays.
    """
    coeffs = np.asarray(coeffs, dtype=np.float64).reshape(-1, 5)
    if not coeffs.any():
        return None, None
    if not np.isfinite(coeffs).all() or np.abs(coeffs).max() > MAX_DISTORTION:
        raise InputError(f"{source}: lens distortion coefficients must be finite and within ±{MAX_DISTORTION:g}")
    err = inversion_error(torch.from_numpy(coeffs), torch.from_numpy(np.asarray(intrinsics, np.float64)),
                          size[1], size[0])
    bad = (~(err < MAX_INVERSION_ERROR)).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{source}: the lens distortion of {names[i]} ({coeffs[i].tolist()}) folds the image over: "
                         "no ray for some of its pixels")
    used = [k for k, c in zip(COEFFICIENTS, coeffs.T, strict=True) if c.any()]
    return coeffs, f"lens distortion ({', '.join(used)}): rays bent through the lens model"


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
    ``kind`` (:mod:`spiknerf.nerf.data.framing`): ``forward`` (NDC), ``object``
    (the box) or ``unbounded`` (the box, and space beyond it contracted);
    ``hints``: what the files say about the scene's extent, for the framing.
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
    kind: str = "object"
    hints: Hints | None = None

    @property
    def unbounded(self) -> bool:
        """Whether space beyond the box is contracted into it (:mod:`spiknerf.nerf.contraction`)."""
        return self.kind == "unbounded"

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
        space = "NDC" if self.ndc else "world" + (", contracted beyond the box" if self.unbounded else "")
        lines.append(f"kind: {self.kind}")
        lines.append(f"bounds ({space}): aabb ({lo}) to ({hi}), near {self.near:.3g}, far {self.far:.3g}")
        bg = self.background if has_alpha else f"{self.background} (unused: the images have no alpha)"
        lines.append(f"background: {bg}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
