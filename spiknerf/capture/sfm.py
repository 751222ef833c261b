"""Camera poses with pycolmap: SIFT features, matching, incremental mapping.

pycolmap (COLMAP's Python bindings, a CPU wheel) does all of structure from
motion; this module chooses its options and shows progress:

* one camera for the whole capture (a phone, one zoom): its focal length starts
  from the photos' EXIF when they carry a 35 mm equivalent, else COLMAP's guess
  (1.2 x the longer side), and is refined by bundle adjustment;
* features are extracted and pairs matched in chunks, so that a bar shows progress;
* pairs: every pair (``exhaustive``, for unordered photos), or each frame with its
  next ``overlap`` frames, frames 2, 4, 8, ... ahead, and the first and last
  ``overlap`` frames with each other, which closes a walk around an object
  (``sequential``, for video: linear in the number of frames);
* the mapper keeps the largest model; a model needs only :data:`MIN_MODEL_SIZE`
  images (COLMAP's default of 10 would refuse small captures).

pycolmap's own log lines are silenced; :class:`Registration` says what a person
needs to judge the result.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from spiknerf.errors import InputError

MATCHINGS: tuple[str, ...] = ("auto", "exhaustive", "sequential")
CAMERA_MODELS: tuple[str, ...] = ("SIMPLE_RADIAL", "RADIAL", "OPENCV", "SIMPLE_PINHOLE", "PINHOLE")
MIN_MODEL_SIZE = 3
DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's focal length guess, times the longer side, when nothing is known
PROGRESS_CHUNKS = 20  # calls into pycolmap per stage, each a step of its bar
# work per call at least: each call starts its workers anew (and matching loads the features again), which for a
# small capture costs as much as the work itself; and COLMAP spreads images, not parts of one, over its threads
MIN_IMAGES_PER_CALL = 8
MIN_PAIRS_PER_CALL = 200


def load_pycolmap() -> Any:
    """The pycolmap module, its log lines silenced; an InputError saying how to install it when missing."""
    # zlib first: pycolmap's library exports zlib symbols of its own, and Python's zlib
    # (Pillow's PNG codec) loaded after it can bind to them and corrupt the heap.
    import zlib  # noqa: F401

    try:
        import pycolmap
    except ImportError:
        raise InputError("spiknerf process needs pycolmap: pip install 'spiknerf[capture]'") from None
    pycolmap.logging.minloglevel = 3  # fatal only: our summary and error lines say how the reconstruction went
    return pycolmap


@dataclass
class SfmOptions:
    """What the structure-from-motion stages are asked to do."""

    matching: str = "exhaustive"  # exhaustive or sequential
    camera_model: str = "SIMPLE_RADIAL"
    overlap: int = 10  # sequential: frames matched ahead of each frame
    threads: int = -1  # pycolmap's threads (-1: all cores)
    seed: int = 0


class Registration(NamedTuple):
    """What the mapper made of a capture."""

    reconstruction: Any  # pycolmap.Reconstruction, its cameras distorted as estimated
    registered: int  # images with a pose
    total: int  # images given
    mean_reprojection_error: float  # pixels
    points: int  # 3D points
    unregistered: list[str]  # names of the images left without a pose


def image_pairs(names: list[str], matching: str, overlap: int) -> list[tuple[str, str]]:
    """The image pairs to match: all of them, or sequential neighbours with jumps and a loop closure."""
    n = len(names)
    if matching == "exhaustive":
        return list(itertools.combinations(names, 2))
    pairs: set[tuple[int, int]] = set()
    for i in range(n):
        ahead = set(range(i + 1, i + overlap + 1)) | {i + 2**k for k in range(overlap)}
        pairs |= {(i, j) for j in ahead if j < n}
    ends = list(range(min(overlap, n)))
    pairs |= {(i, j) for i in ends for j in range(max(n - overlap, 0), n) if i < j}
    return [(names[i], names[j]) for i, j in sorted(pairs)]


def _chunks(items: list, count: int, least: int = 1) -> list[list]:
    """``items`` in about ``count`` runs of at least ``least`` each."""
    size = max(least, -(-len(items) // count))
    return [items[i: i + size] for i in range(0, len(items), size)]


def extract_features(pycolmap: Any, database: Path, image_dir: Path, names: list[str], size: tuple[int, int],
                     focal_prior: float | None, options: SfmOptions) -> None:
    """SIFT features of every image into ``database``, all images sharing one camera."""
    h, w = size
    camera = pycolmap.Camera.create_from_model_name(1, options.camera_model,
                                                    focal_prior or DEFAULT_FOCAL_FACTOR * max(h, w), w, h)
    camera.has_prior_focal_length = focal_prior is not None
    db = pycolmap.Database.open(database)
    try:
        camera_id = db.write_camera(camera)
    finally:
        db.close()
    reader = pycolmap.ImageReaderOptions()
    reader.existing_camera_id = camera_id
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = options.threads
    with tqdm(total=len(names), desc="features", unit="image") as bar:
        for chunk in _chunks(names, PROGRESS_CHUNKS, MIN_IMAGES_PER_CALL):
            pycolmap.extract_features(database, image_dir, image_names=chunk, reader_options=reader,
                                      extraction_options=extraction, device=pycolmap.Device.cpu)
            bar.update(len(chunk))


def match_features(pycolmap: Any, database: Path, work: Path, names: list[str], options: SfmOptions) -> None:
    """Match and geometrically verify the pairs of :func:`image_pairs`."""
    pairs = image_pairs(names, options.matching, options.overlap)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = options.threads
    pairing = pycolmap.ImportedPairingOptions()
    pairing.match_list_path = work / "pairs.txt"
    with tqdm(total=len(pairs), desc=f"match ({options.matching})", unit="pair") as bar:
        for chunk in _chunks(pairs, PROGRESS_CHUNKS, MIN_PAIRS_PER_CALL):
            pairing.match_list_path.write_text("".join(f"{a} {b}\n" for a, b in chunk))
            pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=pairing,
                                       device=pycolmap.Device.cpu)
            bar.update(len(chunk))


def map_cameras(pycolmap: Any, database: Path, image_dir: Path, sparse_dir: Path, names: list[str],
                options: SfmOptions) -> Registration:
    """Incremental mapping; the largest model found (an InputError when none could be made)."""
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = options.threads
    mapping.random_seed = options.seed
    mapping.min_model_size = MIN_MODEL_SIZE
    mapping.extract_colors = False
    sparse_dir.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(names), desc="map cameras", unit="image") as bar:
        def registered() -> None:  # each image registered, in whichever model is being grown
            bar.update(1 if bar.n < bar.total else 0)

        models = pycolmap.incremental_mapping(database, image_dir, sparse_dir, mapping, next_image_callback=registered)
        best = max((r.num_reg_images() for r in models.values()), default=0)
        bar.n = best  # the bar ends at what the kept model holds
        bar.refresh()
    if not models:
        raise InputError(f"no camera poses could be estimated from the {len(names)} images: too few features matched "
                         "between them (photos need texture and overlap, about two thirds from one to the next)")
    model = max(models.values(), key=lambda r: r.num_reg_images())
    posed = {image.name for image in model.images.values() if image.has_pose}
    return Registration(model, len(posed), len(names), float(model.compute_mean_reprojection_error()),
                        model.num_points3D(), [n for n in names if n not in posed])


def reconstruct(image_dir: Path, work: Path, names: list[str], size: tuple[int, int], focal_prior: float | None,
                options: SfmOptions) -> Registration:
    """Features, matches and the largest model of the images ``names`` in ``image_dir``; scratch files in ``work``."""
    pycolmap = load_pycolmap()
    pycolmap.set_random_seed(options.seed)
    database = work / "database.db"
    if database.exists():
        os.unlink(database)
    extract_features(pycolmap, database, image_dir, names, size, focal_prior, options)
    match_features(pycolmap, database, work, names, options)
    return map_cameras(pycolmap, database, image_dir, work / "sparse", names, options)


class Posed(NamedTuple):
    """The registered images of a model: names, world-to-camera matrices (OpenCV axes) and the camera."""

    names: list[str]
    cam_from_world: np.ndarray  # float64 [N, 3, 4]
    camera: Any  # pycolmap.Camera as estimated (with its distortion)
    points: np.ndarray  # float64 [M, 3] sparse points


def posed_images(registration: Registration, order: list[str]) -> Posed:
    """The model's posed images in capture ``order``, with its points."""
    model = registration.reconstruction
    by_name = {image.name: image for image in model.images.values() if image.has_pose}
    names = [n for n in order if n in by_name]
    matrices = np.stack([by_name[n].cam_from_world().matrix() for n in names]).astype(np.float64)
    cameras = {by_name[n].camera_id for n in names}
    if len(cameras) != 1:  # extract_features writes a single camera
        raise AssertionError(f"expected one camera, the model has {len(cameras)}")
    points = np.array([p.xyz for p in model.points3D.values()], dtype=np.float64).reshape(-1, 3)
    return Posed(names, matrices, model.cameras[cameras.pop()], points)
