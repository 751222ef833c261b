"""Images: read and validate, downscale with an area filter, stack compactly as uint8, cache.

Scenes stay uint8 in memory (100 lego views at 800 x 800 RGBA are 256 MB) and are
converted to float per batch. 16-bit images become 8-bit on reading (Pillow keeps
the high byte of 16-bit colour: within one 8-bit step of exact rounding).

Downscaling averages *premultiplied* colour over each output pixel's area (a box
filter weighting every source pixel by its exact, possibly fractional, overlap),
so compositing a downscaled RGBA image on any background gives the average of
the composited full-resolution pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np

from spiknerf.errors import InputError
from spiknerf.nerf.data.cache import cache_key, cached_arrays


class ImageStack(NamedTuple):
    """The images of one split and where they came from."""

    images: np.ndarray  # uint8 [N, h, w, C], C in {3, 4}
    source_size: tuple[int, int]  # (H, W) before downscaling
    note: str | None  # how downscaled images were obtained (cache hit or write); None at downscale 1


def to_uint8(image: np.ndarray, source: str) -> np.ndarray:
    """A validated ``uint8 [H, W, C]`` (C in {3, 4}) from an 8-bit, 16-bit or [0, 1] float image."""
    floating = image.dtype in (np.float16, np.float32, np.float64)
    if image.dtype not in (np.uint8, np.uint16) and not floating:
        raise InputError(f"{source}: unsupported bit depth ({image.dtype}); 8- or 16-bit images are needed")
    if image.ndim not in (2, 3):
        raise InputError(f"{source}: unsupported image shape {tuple(image.shape)}; one RGB or RGBA image is needed")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (3, 4):
        raise InputError(f"{source}: unsupported channel count {channels}; RGB or RGBA images are needed")
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if floating:
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InputError(f"{source}: float image values must lie in [0, 1] (HDR images are not supported)")
        return quantize(image)
    return image


def read_image(path: Path) -> np.ndarray:
    """Read one image file as a validated ``uint8 [H, W, C]``."""
    try:
        image = iio.imread(path)
    except FileNotFoundError:
        raise InputError(f"{path}: image not found") from None
    except Exception as exc:  # imageio raises many types for undecodable files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read image ({reason})") from None
    return to_uint8(np.asarray(image), str(path))


def quantize(image: np.ndarray) -> np.ndarray:
    """Float in [0, 1] to uint8, rounding to nearest."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def area_resize_axis(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Average ``x`` over ``n`` equal intervals along ``axis``, each source pixel weighted by its overlap.

    Output ``i`` covers ``[i s, (i + 1) s)`` with ``s = size / n``; a source pixel
    ``[j, j + 1)`` counts with weight ``|[j, j + 1) ∩ [i s, (i + 1) s)| / s``. An
    interval touches at most ``ceil(s) + 1`` pixels, so the cost is linear in the image.
    """
    size = x.shape[axis]
    step = size / n
    start = np.arange(n) * step
    taps = int(np.ceil(step)) + 1
    idx = np.floor(start).astype(np.int64)[:, None] + np.arange(taps)[None, :]
    overlap = np.minimum(start[:, None] + step, idx + 1) - np.maximum(start[:, None], idx)
    weight = (np.clip(overlap, 0.0, None) / step).astype(np.float32)
    idx = np.minimum(idx, size - 1)  # taps past the edge have zero weight
    x = np.moveaxis(x, axis, 0)
    expand = (n,) + (1,) * (x.ndim - 1)
    out = sum(weight[:, k].reshape(expand) * x[idx[:, k]] for k in range(taps))
    return np.moveaxis(out, 0, axis)


def downscale_float(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-filter a float ``[H, W, C]`` straight-alpha image to ``size = (h, w)``.

    With C = 4 the colour is premultiplied by alpha before filtering and divided
    by the filtered alpha after, so transparent pixels lend no colour to edges.
    """
    x = np.array(image, dtype=np.float32)
    has_alpha = x.shape[2] == 4
    if has_alpha:
        x[..., :3] *= x[..., 3:]
    out = area_resize_axis(area_resize_axis(x, size[0], 0), size[1], 1)
    if has_alpha:
        alpha = out[..., 3:]
        out[..., :3] = np.where(alpha > 0, out[..., :3] / np.maximum(alpha, 1e-12), 0.0)
    return out


def downscale_image(image: np.ndarray, factor: int) -> np.ndarray:
    """A uint8 image shrunk by an integer ``factor`` (each side floor-divided) with the area filter."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return quantize(downscale_float(image.astype(np.float32) / 255.0, (h, w)))


def stack_images(
    names: list[str], read: Callable[[int], np.ndarray], downscale: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Read ``len(names)`` images one at a time into one uint8 array, downscaling each.

    Returns the stack and the (H, W) of the originals. All images must have the
    same size and channel count.
    """
    out = None
    first = None
    for i, name in enumerate(names):
        image = read(i)
        if first is None:
            first = image.shape
            H, W, C = first
            if H // downscale < 1 or W // downscale < 1:
                raise InputError(f"{name}: a {W}x{H} image cannot be downscaled by {downscale}")
            out = np.empty((len(names), H // downscale, W // downscale, C), dtype=np.uint8)
        elif image.shape != first:
            raise InputError(
                f"{name}: image is {image.shape[1]}x{image.shape[0]} with {image.shape[2]} channels, "
                f"but {names[0]} is {first[1]}x{first[0]} with {first[2]}; all images of a split must match"
            )
        out[i] = downscale_image(image, downscale) if downscale > 1 else image
    if out is None:
        raise InputError("no images to load")
    return out, (first[0], first[1])


def load_stack(
    names: list[str],
    read: Callable[[int], np.ndarray],
    sources: list[Path],
    downscale: int,
    cache_dir: Path,
    label: str,
) -> ImageStack:
    """:func:`stack_images`, cached under ``cache_dir`` when ``downscale > 1``.

    ``sources`` are the files the images come from (they key the cache entry);
    ``label`` names the entry for people browsing the cache folder.
    """
    if downscale == 1:
        images, size = stack_images(names, read, 1)
        return ImageStack(images, size, None)
    key = cache_key(sources, {"downscale": downscale, "names": names})
    path = Path(cache_dir) / "images" / f"{label}-x{downscale}-{key[:16]}.npz"

    def build() -> dict[str, np.ndarray]:
        images, size = stack_images(names, read, downscale)
        return {"images": images, "source_size": np.array(size, dtype=np.int64)}

    arrays, hit = cached_arrays(path, build)
    how = "read from cache" if hit else "downscaled and cached in"
    note = f"{label}: {len(names)} images x{downscale} smaller, {how} {path}"
    return ImageStack(arrays["images"], tuple(int(v) for v in arrays["source_size"]), note)


def load_image_files(paths: list[Path], downscale: int, cache_dir: Path, label: str) -> ImageStack:
    """Image files as one uint8 stack (see :func:`load_stack`)."""
    return load_stack([str(p) for p in paths], lambda i: read_image(paths[i]), paths, downscale, cache_dir, label)
