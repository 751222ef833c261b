"""The scene folder ``process`` writes: the posed images and a ``transforms.json`` the loader reads.

Layout (nerfstudio's, so other tools read it too)::

    transforms.json      cameras (OpenGL camera-to-world) and one camera model, the lens as estimated
    images/              the registered images, pixels as posed (not resampled)
    images_2/, images_4/ the same, shrunk 2 and 4 times (for tools that read them; spiknerf
                         shrinks images/ itself with --downscale)
    colmap/sparse/0/     pycolmap's model as estimated (with lens distortion; working image names)

The lens is written as OpenCV's model (``fl_x, fl_y, cx, cy, k1, k2, p1, p2``,
nerfstudio's fields): the loader bends each pixel's ray through it, so the images
keep every pixel the camera was posed with. Undistorting them to a pinhole
instead would resample (blur) every image and crop its border, which costs
quality and time.

``transforms.json`` carries instant-ngp's ``scale`` / ``offset`` (a cube around the
sparse points' box, for readers that know nothing else), the ``spiknerf`` block of the
scene-framing contract (``scene_kind``, ``aabb``: the box marched uncontracted, for an
unbounded scene the cube around the cameras), and a ``capture`` block of what
the reconstruction was (registered images, reprojection error, points, the camera
as estimated). Each frame records the file it came from as ``source``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from spiknerf.atomic import write_json_atomic
from spiknerf.capture.normalize import Framing, padded, robust_box
from spiknerf.capture.photos import PNG_LEVEL
from spiknerf.capture.sfm import Posed, Registration
from spiknerf.nerf.data.images import downscale_image
from spiknerf.nerf.data.ngp import FILENAME

DOWNSCALES = (2, 4)
MODEL_DIR = Path("colmap") / "sparse" / "0"


def ngp_bounds(aabb: np.ndarray) -> dict[str, Any]:
    """instant-ngp's ``scale``, ``offset`` and ``aabb_scale`` giving the cube around ``aabb``."""
    centre, side = (aabb[:3] + aabb[3:]) / 2, float((aabb[3:] - aabb[:3]).max())
    return {"scale": 1.0 / side, "offset": (0.5 - centre / side).tolist(), "aabb_scale": 1}


# COLMAP's parameters of each lens model CAMERA_MODELS offers, by the names transforms.json gives them
LENS_PARAMS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fl_x", "fl_y", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2"),
}


def lens(camera: Any) -> dict[str, float]:
    """The camera as ``transforms.json`` fields: ``fl_x, fl_y, cx, cy`` and OpenCV's ``k1, k2, p1, p2``."""
    values = dict(zip(LENS_PARAMS[camera.model_name], (float(v) for v in camera.params), strict=True))
    if "f" in values:
        values["fl_x"] = values["fl_y"] = values.pop("f")
    return {k: values.get(k, 0.0) for k in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2")}


def write_images(folder: Path, working: Path, posed: Posed) -> None:
    """The posed working images into ``folder/images`` as they are, and shrunk copies."""
    for sub in ("images", *(f"images_{k}" for k in DOWNSCALES)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name in tqdm(posed.names, desc="write images", unit="image"):
        shutil.copyfile(working / name, folder / "images" / name)
        image = iio.imread(working / name)
        for k in DOWNSCALES:
            iio.imwrite(folder / f"images_{k}" / name, downscale_image(image, k), compress_level=PNG_LEVEL)


def transforms(posed: Posed, framing: Framing, sources: dict[str, str], registration: Registration,
               source: str) -> dict[str, Any]:
    """The content of ``transforms.json``."""
    camera = posed.camera
    frames = [{"file_path": f"images/{name}", "transform_matrix": c2w.tolist(), "source": sources[name]}
              for name, c2w in zip(posed.names, framing.c2w, strict=True)]
    return {
        "camera_model": "OPENCV", **lens(camera), "w": int(camera.width), "h": int(camera.height),
        **ngp_bounds(padded(robust_box(framing.points))),
        "spiknerf": {"scene_kind": framing.scene_kind, "aabb": framing.aabb.tolist()},
        "capture": {
            "source": source, "registered": registration.registered, "total": registration.total,
            "mean_reprojection_error_px": registration.mean_reprojection_error, "points": registration.points,
            "unregistered": [sources[n] for n in registration.unregistered],
            "estimated_camera": {"model": camera.model_name, "width": int(camera.width),
                                 "height": int(camera.height), "params": [float(v) for v in camera.params]},
            "world_from_colmap": framing.world_from_colmap.tolist(),
        },
        "frames": frames,
    }


def write_scene_folder(folder: Path, working: Path, posed: Posed, framing: Framing, sources: dict[str, str],
                       registration: Registration, source: str) -> None:
    """Fill ``folder`` (new, owned by this run) with the scene; ``transforms.json`` is written last, atomically."""
    write_images(folder, working, posed)
    model_dir = folder / MODEL_DIR
    os.makedirs(model_dir, exist_ok=True)
    registration.reconstruction.write(model_dir)
    write_json_atomic(folder / FILENAME, transforms(posed, framing, sources, registration, source))
