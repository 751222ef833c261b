"""Images: read and validate, downscale with an area filter, stack compactly as uint8, cache.

Scenes stay uint8 in memory (100 lego views at 800 x 800 RGBA are 256 MB) and are
converted to float per batch. 16-bit images become 8-bit on reading (Pillow keeps
the high byte of 16-bit colour: within one 8-bit step of exact rounding).

Image files may come from strangers, so a file's header is checked before its
pixels are decoded: a format of :data:`FORMATS`, one frame, at most
:func:`spiknerf.limits.image_pixel_limit` pixels, RGB or RGBA (palette images
are expanded as imageio does; CMYK and other colour models are refused rather
than misread as RGBA). A whole split's uint8 stack is checked against the
memory budget from the first image's header, before any image is decoded.

Downscaling averages *premultiplied* colour over each output pixel's area (a box
filter weighting every source pixel by its exact, possibly fractional, overlap),
so compositing a downscaled RGBA image on any background gives the average of
the composited full-resolution pixels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from spiknerf.errors import InputError
from spiknerf.limits import Budget, image_pixel_limit
from spiknerf.nerf.data.cache import cache_key, cached_arrays

# Pillow reads only these (its other decoders are never tried on a scene's files)
FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
# a camera JPEG carrying previews or a gain map beside the photo opens as MPO; frame 0 is the photo
SEVERAL_FRAMES_OK: tuple[str, ...] = ("MPO",)


class ImageStack(NamedTuple):
    """The images of one split and where they came from."""

    images: np.ndarray  # uint8 [N, h, w, C], C in {3, 4}
    source_size: tuple[int, int]  # (H, W) before downscaling
    note: str | None  # how downscaled images were obtained (cache hit or write); None at downscale 1


def check_layout(dtype: np.dtype, shape: tuple[int, ...], source: str) -> None:
    """Refuse what is not one 8-bit, 16-bit or float RGB or RGBA image of ``shape`` ``[H, W, C]``."""
    floating = dtype in (np.float16, np.float32, np.float64)
    if dtype not in (np.uint8, np.uint16) and not floating:
        raise InputError(f"{source}: unsupported bit depth ({dtype}); 8- or 16-bit images are needed")
    if len(shape) not in (2, 3):
        raise InputError(f"{source}: unsupported image shape {tuple(shape)}; one RGB or RGBA image is needed")
    channels = 1 if len(shape) == 2 else shape[2]
    if channels not in (3, 4):
        raise InputError(f"{source}: unsupported channel count {channels}; RGB or RGBA images are needed")


def check_pixels(width: int, height: int, source: str) -> None:
    """Refuse an image of more pixels than :func:`spiknerf.limits.image_pixel_limit`."""
    limit = image_pixel_limit()
    if width * height > limit:
        raise InputError(
            f"{source}: image is {width}x{height} ({width * height / 1e6:.1f} megapixels), more than the limit of "
            f"{limit / 1e6:.1f} megapixels per image (set SPIKNERF_MAX_IMAGE_PIXELS to raise it)"
        )


def to_uint8(image: np.ndarray, source: str) -> np.ndarray:
    """A validated ``uint8 [H, W, C]`` (C in {3, 4}) from an 8-bit, 16-bit or [0, 1] float image."""
    check_layout(image.dtype, image.shape, source)
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if image.dtype != np.uint8:
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InputError(f"{source}: float image values must lie in [0, 1] (HDR images are not supported)")
        return quantize(image)
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def decoded_mode(image: Image.Image) -> str:
    """The Pillow mode ``image`` is decoded to, as imageio reads it (palettes expanded, 16-bit PNG grey kept)."""
    if image.mode == "P":
        return image.palette.mode
    if image.format == "PNG" and image.mode == "I":
        return "I;16"
    return image.mode


def image_layout(image: Image.Image, path: Path) -> tuple[int, int, int]:
    """(H, W, C) of an opened image, refused unless it is one RGB or RGBA image within the pixel limit."""
    width, height = image.size
    check_pixels(width, height, str(path))
    frames = getattr(image, "n_frames", 1)
    if frames != 1 and image.format not in SEVERAL_FRAMES_OK:
        raise InputError(f"{path}: a {image.format} of {frames} frames (an animation or several pages); "
                         "one image is needed")
    mode = decoded_mode(image)
    try:
        sample = np.asarray(Image.new(mode, (1, 1)))
    except (ValueError, TypeError, KeyError):
        raise InputError(f"{path}: unsupported pixel format {mode}") from None
    shape = (height, width) + sample.shape[2:]
    check_layout(sample.dtype, shape, str(path))
    if mode not in ("RGB", "RGBA"):
        raise InputError(f"{path}: colour model {mode} is not supported; RGB or RGBA images are needed")
    return shape


@contextmanager
def open_image(path: Path) -> Iterator[tuple[Image.Image, tuple[int, int, int]]]:
    """An image file opened lazily (header only) and checked by :func:`image_layout`, with its (H, W, C).

    Pillow's warnings (corrupt EXIF, oversized TIFF tags, its own pixel limit,
    which ours replaces) are silenced while the file is open: it either loads or
    is refused, and a person's terminal gets no extra lines.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = Image.open(path, formats=FORMATS)
        except FileNotFoundError:
            raise InputError(f"{path}: image not found") from None
        except Image.UnidentifiedImageError:
            raise InputError(f"{path}: cannot read image (not a {', '.join(FORMATS)} file)") from None
        except Image.DecompressionBombError as exc:  # beyond twice Pillow's own pixel limit
            raise InputError(f"{path}: image is too large to open ({_reason(exc)}); the limit is "
                             f"{image_pixel_limit() / 1e6:.1f} megapixels per image") from None
        except Exception as exc:  # Pillow raises many types for broken headers
            raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
        with image:
            try:
                layout = image_layout(image, path)
            except InputError:
                raise
            except Exception as exc:  # e.g. counting the frames of a broken TIFF
                raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
            yield image, layout


def image_shape(path: Path) -> tuple[int, int, int]:
    """(H, W, C) of an image file, from its header alone."""
    with open_image(path) as (_, layout):
        return layout


def read_image(path: Path) -> np.ndarray:
    """Read one image file as a validated ``uint8 [H, W, C]``."""
    with open_image(path) as (image, layout):
        mode = decoded_mode(image)
        try:
            pixels = np.asarray(image if mode == image.mode else image.convert(mode))
        except Exception as exc:  # Pillow raises many types for undecodable data
            raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
    if pixels.shape != layout:
        raise InputError(f"{path}: decoded to {pixels.shape}, not the {layout} its header declares")
    return to_uint8(pixels, str(path))


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
    names: list[str], read: Callable[[int], np.ndarray], shape: tuple[int, int, int], downscale: int
) -> np.ndarray:
    """Read ``len(names)`` images of ``shape`` ``(H, W, C)`` one at a time into one uint8 array, downscaling each."""
    H, W, C = shape
    out = np.empty((len(names), H // downscale, W // downscale, C), dtype=np.uint8)
    for i, name in enumerate(names):
        image = read(i)
        if image.shape != shape:
            raise InputError(
                f"{name}: image is {image.shape[1]}x{image.shape[0]} with {image.shape[2]} channels, "
                f"but {names[0]} is {W}x{H} with {C}; all images of a split must match"
            )
        out[i] = downscale_image(image, downscale) if downscale > 1 else image
    return out


def load_stack(
    names: list[str],
    read: Callable[[int], np.ndarray],
    shape: tuple[int, int, int],
    sources: list[Path],
    downscale: int,
    cache_dir: Path,
    label: str,
    budget: Budget,
) -> ImageStack:
    """:func:`stack_images`, cached under ``cache_dir`` when ``downscale > 1``.

    ``shape`` is the ``(H, W, C)`` the first image declares (from its header):
    the whole stack is charged to ``budget`` before any image is decoded, with
    one decoded image (and its float copy when downscaling) on top.
    ``sources`` are the files the images come from (they key the cache entry);
    ``label`` names the entry for people browsing the cache folder.
    """
    if not names:
        raise InputError("no images to load")
    H, W, C = shape
    if H // downscale < 1 or W // downscale < 1:
        raise InputError(f"{names[0]}: a {W}x{H} image cannot be downscaled by {downscale}")
    size = (len(names), H // downscale, W // downscale, C)
    working = H * W * C * (1 if downscale == 1 else 5)
    budget.take(math.prod(size), f"{label}: {len(names)} images of {size[2]}x{size[1]}x{C}", working)
    if downscale == 1:
        return ImageStack(stack_images(names, read, shape, 1), (H, W), None)
    key = cache_key(sources, {"downscale": downscale, "names": names})
    path = Path(cache_dir) / "images" / f"{label}-x{downscale}-{key[:16]}.npz"

    def build() -> dict[str, np.ndarray]:
        # source_size is no longer read back, but versions that shared this cache folder read it
        images = stack_images(names, read, shape, downscale)
        return {"images": images, "source_size": np.array((H, W), dtype=np.int64)}

    arrays, hit = cached_arrays(path, build, {"images": (size, np.dtype(np.uint8))})
    how = "read from cache" if hit else "downscaled and cached in"
    note = f"{label}: {len(names)} images x{downscale} smaller, {how} {path}"
    return ImageStack(arrays["images"], (H, W), note)


def load_image_files(paths: list[Path], downscale: int, cache_dir: Path, label: str, budget: Budget) -> ImageStack:
    """Image files as one uint8 stack (see :func:`load_stack`); the first file's header gives the shape."""
    shape = image_shape(paths[0]) if paths else (0, 0, 0)
    return load_stack([str(p) for p in paths], lambda i: read_image(paths[i]), shape, paths, downscale, cache_dir,
                      label, budget)
