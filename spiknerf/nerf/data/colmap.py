"""Each photo's camera from a COLMAP model (``sparse/0/cameras.bin`` and ``images.bin``), beside an LLFF capture.

LLFF's ``poses_bounds.npy`` keeps one focal length a row and no principal point
or lens; COLMAP may have estimated a camera per photo (a phone's photos differ
by a few percent in focal length), and its model says so. Only the cameras are
read, not the poses (``poses_bounds.npy`` holds those, in the units its bounds
scale). Camera models: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL and
OPENCV, whose distortion is the radial-tangential one of
:mod:`spiknerf.nerf.distortion`; any other model is reported and left out.

Both files come from strangers: their counts are held to what their sizes can
hold, and every read stays within the bytes read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiknerf.errors import InputError

MAX_BYTES = 256 << 20  # images.bin holds every photo's 2D points: large, but not without bound
MODEL = "sparse/0"
# model id -> (name, number of parameters)
MODELS = {0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5), 4: ("OPENCV", 8),
          5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
          9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12)}
SUPPORTED = {0, 1, 2, 3, 4}


@dataclass(frozen=True)
class Camera:
    """One photo's camera: its image size, ``fx, fy, cx, cy`` and ``(k1, k2, k3, p1, p2)``, in COLMAP's pixels."""

    width: int
    height: int
    intrinsics: tuple[float, float, float, float]
    distortion: tuple[float, float, float, float, float]


class Reader:
    """Little-endian fields out of one file's bytes, each read checked against its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{path}: {size} bytes, more than the {MAX_BYTES} a COLMAP model file may have")
        self.data, self.at = path.read_bytes(), 0

    def take(self, fmt: str) -> tuple:
        n = struct.calcsize("<" + fmt)
        if self.at + n > len(self.data):
            raise InputError(f"{self.path}: truncated at byte {self.at}")
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += n
        return values

    def count(self, least_bytes_each: int) -> int:
        (n,) = self.take("Q")
        if n * least_bytes_each > len(self.data) - self.at:
            raise InputError(f"{self.path}: says {n} entries, more than its size holds")
        return n

    def name(self) -> str:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise InputError(f"{self.path}: an image name runs past the end of the file")
        raw, self.at = self.data[self.at:end], end + 1
        return raw.decode("utf-8", errors="replace")


def camera(model: int, width: int, height: int, params: tuple[float, ...]) -> Camera:
    """A supported model's parameters as intrinsics and radial-tangential coefficients."""
    if model == 0:
        f, cx, cy = params
        return Camera(width, height, (f, f, cx, cy), (0.0,) * 5)
    if model == 1:
        return Camera(width, height, tuple(params), (0.0,) * 5)
    if model in (2, 3):
        f, cx, cy, *k = params
        return Camera(width, height, (f, f, cx, cy), (k[0], k[1] if len(k) > 1 else 0.0, 0.0, 0.0, 0.0))
    fx, fy, cx, cy, k1, k2, p1, p2 = params
    return Camera(width, height, (fx, fy, cx, cy), (k1, k2, 0.0, p1, p2))


def read_cameras(path: Path) -> dict[int, tuple[int, int, int, tuple[float, ...]]]:
    """``cameras.bin``: camera id -> (model id, width, height, parameters)."""
    r = Reader(path)
    out = {}
    for _ in range(r.count(24)):
        cid, model, width, height = r.take("iiQQ")
        if model not in MODELS:
            raise InputError(f"{path}: camera {cid} has an unknown model {model}")
        out[cid] = (model, width, height, r.take("d" * MODELS[model][1]))
    return out


def read_image_cameras(path: Path) -> dict[str, int]:
    """``images.bin``: image name -> camera id (poses and 2D points skipped)."""
    r = Reader(path)
    out = {}
    for _ in range(r.count(73)):
        fields = r.take("idddddddi")
        name = r.name()
        (points,) = r.take("Q")
        if points * 24 > len(r.data) - r.at:
            raise InputError(f"{path}: image {name!r} says {points} points, more than the file holds")
        r.at += points * 24
        out[name] = fields[-1]
    return out


def photo_cameras(cameras_bin: Path, images_bin: Path, names: list[str]) -> tuple[list[Camera] | None, str]:
    """The camera of each photo ``names`` (matched by file stem: photos are often converted, ``a.jpg`` to
    ``a.png``) from a COLMAP model's two files, and a note for the log; None (with the reason) when a photo is
    missing from it or its camera model is not one of those supported."""
    cameras = read_cameras(cameras_bin)
    by_stem = {Path(name).stem: cid for name, cid in read_image_cameras(images_bin).items()}
    missing = [n for n in names if Path(n).stem not in by_stem or by_stem[Path(n).stem] not in cameras]
    if missing:
        return None, f"{MODEL} has no camera for {missing[0]} ({len(missing)} photos): its cameras not used"
    used = {cameras[by_stem[Path(n).stem]][0] for n in names}
    other = sorted(MODELS[m][0] for m in used - SUPPORTED)
    if other:
        return None, f"{MODEL}: camera model {', '.join(other)} not supported: its cameras not used"
    out = [camera(*cameras[by_stem[Path(n).stem]]) for n in names]
    distinct = len({c.intrinsics for c in out})
    kinds = ", ".join(sorted(MODELS[m][0] for m in used))
    return out, f"each photo's camera read from {MODEL} ({kinds}; {distinct} distinct intrinsics)"


def intrinsics_for(cameras: list[Camera], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics ``[N, 4]`` for images of ``size = (h, w)`` (each camera's scaled from its own image size) and
    the distortion coefficients ``[N, 5]`` (unchanged by scaling: they act on normalized coordinates)."""
    h, w = size
    intr = np.array([c.intrinsics for c in cameras], dtype=np.float64)
    scale = np.array([[w / c.width, h / c.height, w / c.width, h / c.height] for c in cameras])
    return intr * scale, np.array([c.distortion for c in cameras], dtype=np.float64)
