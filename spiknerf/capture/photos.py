"""Photos as working images: checked like scene images, turned upright, shrunk, written as PNG.

Photos may come from strangers. Each file's header is checked before its pixels
are decoded (:func:`spiknerf.nerf.data.images.open_image`: format, one frame, the
pixel limit, RGB or RGBA), and pycolmap never reads a stranger's file: it reads
only the PNG copies written here. A copy is the photo as a viewer shows it (EXIF
orientation applied), RGBA composited on white, shrunk with the area filter so
that its longer side is at most ``max_size``; copies are named ``frame_00001.png``
and so on, in the photos' natural order (``2.jpg`` before ``10.jpg``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np
from PIL import ImageOps
from tqdm import tqdm

from spiknerf.errors import InputError
from spiknerf.nerf.data.confine import SceneFolder, shown
from spiknerf.nerf.data.images import downscale_float, open_image, quantize

PHOTO_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
MIN_VIEWS = 3  # two views give a pose but nothing to hold out; fewer give nothing
EXIF_IFD, FOCAL_35MM = 0x8769, 0xA405
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


class WorkingImages(NamedTuple):
    """The copies pycolmap reads: names in capture order, their size and a focal length prior."""

    names: list[str]  # file names inside the working folder
    sources: list[str]  # what each came from (a photo's file name, a video's frame number)
    size: tuple[int, int]  # (H, W) of every copy
    focal_prior: float | None  # pixels of the copies, from EXIF; None when the photos do not say


def natural_key(name: str) -> list[object]:
    """Sort key putting ``2.jpg`` before ``10.jpg``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_photos(folder: Path) -> list[Path]:
    """The photo files directly inside ``folder``, in natural order; at least :data:`MIN_VIEWS` of them."""
    if not folder.is_dir():
        raise InputError(f"--images {folder} is not a folder" + ("" if folder.exists() else " (it does not exist)"))
    inside = SceneFolder(folder)
    names = sorted((p.name for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES), key=natural_key)
    # a symbolic link leading out of the folder is refused, as in a scene folder
    photos = [p for p in (inside.existing_file(n, f"{folder}: photo") for n in names) if p is not None]
    if not photos:
        raise InputError(f"--images {folder} holds no photos ({', '.join(s[1:] for s in PHOTO_SUFFIXES)} files)")
    if len(photos) < MIN_VIEWS:
        raise InputError(f"--images {folder} holds {len(photos)} photo(s); camera poses need at least {MIN_VIEWS} "
                         "overlapping views of the scene")
    return photos


def focal_35mm(image) -> float | None:
    """The 35 mm equivalent focal length a camera wrote in the EXIF, in mm; None when absent or nonsense."""
    try:
        value = float(image.getexif().get_ifd(EXIF_IFD).get(FOCAL_35MM, 0))
    except Exception:  # a broken EXIF block: no prior, as if there were no EXIF
        return None
    return value if 1.0 <= value <= 2000.0 else None


def read_photo(path: Path) -> tuple[np.ndarray, float | None]:
    """A photo as uint8 RGB ``[H, W, 3]`` the way a viewer shows it, and its 35 mm focal length (or None)."""
    with open_image(path) as (image, _):
        focal = focal_35mm(image)
        try:
            upright = ImageOps.exif_transpose(image)
            rgba = np.asarray(upright.convert("RGBA"))
        except Exception as exc:  # Pillow raises many types for undecodable data
            raise InputError(f"{path}: cannot read image ({shown(str(exc), quoted=False)})") from None
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)  # on white, as Blender scenes load
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8), focal


def fitted_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(h, w) with the longer side at most ``max_size``, the aspect ratio kept."""
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(image: np.ndarray, max_size: int) -> np.ndarray:
    """``image`` with its longer side at most ``max_size`` (area filter); unchanged when it already fits."""
    size = fitted_size(image.shape[0], image.shape[1], max_size)
    if size == image.shape[:2]:
        return image
    return quantize(downscale_float(image.astype(np.float32) / 255.0, size))


# zlib level of the PNGs process writes: the lowest writes several times faster than Pillow's default, for files a
# little larger; process writes every image three times (working copy, two shrunk copies)
PNG_LEVEL = 1


def frame_name(index: int) -> str:
    """The working name of the ``index``-th image (from 0)."""
    return f"frame_{index + 1:05d}.png"


class WorkingWriter:
    """Writes images as the working copies ``frame_00001.png``, ... of a capture, one at a time.

    All copies must share one size: one camera is estimated for the whole capture.
    """

    def __init__(self, folder: Path, max_size: int) -> None:
        self.folder, self.max_size = folder, max_size
        self.names: list[str] = []
        self.sources: list[str] = []
        self.size: tuple[int, int] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, image: np.ndarray, source: str) -> None:
        """Shrink uint8 RGB ``image`` (from ``source``, named in messages) and write it as the next copy."""
        image = shrink(image, self.max_size)
        if self.size is None:
            self.size = image.shape[:2]
        elif image.shape[:2] != self.size:
            raise InputError(f"{source} is {image.shape[1]}x{image.shape[0]} after shrinking, but {self.sources[0]} "
                             f"is {self.size[1]}x{self.size[0]}; all photos of a capture need one size and "
                             "orientation (one camera is estimated for them all)")
        name = frame_name(len(self.names))
        iio.imwrite(self.folder / name, image, compress_level=PNG_LEVEL)
        self.names.append(name)
        self.sources.append(source)

    def result(self, focal_prior: float | None) -> WorkingImages:
        assert self.size is not None, "no image was written"
        return WorkingImages(self.names, self.sources, self.size, focal_prior)


def prepare_photos(folder: Path, work: Path, max_size: int) -> WorkingImages:
    """Checked, upright, shrunk PNG copies of the photos in ``folder``, written into ``work``."""
    photos = list_photos(folder)
    writer = WorkingWriter(work, max_size)
    focals = []
    for path in tqdm(photos, desc="read photos", unit="photo"):
        image, focal = read_photo(path)
        writer.add(image, path.name)
        focals += [focal] if focal is not None else []
    h, w = writer.size
    # the 35 mm equivalent refers to the full-frame diagonal; scale it to this image's diagonal in pixels
    prior = float(np.median(focals)) * math.hypot(h, w) / FULL_FRAME_DIAGONAL_MM if focals else None
    return writer.result(prior)
