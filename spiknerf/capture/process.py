"""``spiknerf process``: photos or a video in, a posed scene folder out, ready for ``spiknerf train --data``.

Stages: working images (checked photos, or the sharpest frames of a video),
features, matching, incremental mapping (pycolmap), framing, and the scene folder
(images as posed, the lens model beside them). The result is judged by what it prints: images registered of the
total, mean reprojection error, 3D points. Fewer than ``--min-registered`` of the
images registered (or fewer than three) is refused with one ``error:`` line.

``--out`` must be new or an empty folder: the scene is built in a hidden folder
beside it (``.NAME.XXXXXXXX.tmp``) and renamed onto it at the end, so the folder
appears complete or not at all, and nothing of a person's is ever replaced.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from spiknerf.capture.normalize import frame_scene
from spiknerf.capture.photos import MIN_VIEWS, WorkingImages, prepare_photos
from spiknerf.capture.scene_folder import write_scene_folder
from spiknerf.capture.sfm import CAMERA_MODELS, MATCHINGS, Registration, SfmOptions, posed_images, reconstruct
from spiknerf.capture.video import extract_frames
from spiknerf.errors import InputError

MIN_SIDE = 32  # pixels; SIFT finds nothing useful below
MANY_PHOTOS = 300  # exhaustive matching grows with the square of the photos


@dataclass
class ProcessConfig:
    """Estimate camera poses for photos or a video and write a scene folder."""

    out: str = field(metadata={"help": "scene folder to create (new or empty)"})
    images: str | None = field(default=None, metadata={"help": "folder of photos of the scene"})
    video: str | None = field(default=None, metadata={"help": "video file of the scene"})
    frames: int = field(default=100, metadata={"help": "video: frames kept, the sharpest of each of this many "
                                                       "equal stretches"})
    max_size: int = field(default=1024, metadata={"help": "longer side in pixels of the images posed and written "
                                                          "(larger photos are shrunk)"})
    matching: str = field(default="auto", metadata={"choices": MATCHINGS, "help": "image pairs matched: auto "
                          "(sequential for a video, exhaustive for photos), exhaustive, or sequential"})
    camera_model: str = field(default="SIMPLE_RADIAL", metadata={"choices": CAMERA_MODELS,
                              "help": "lens model estimated (written with the images; training bends rays through it)"})
    min_registered: float = field(default=0.5, metadata={"help": "refuse the result when fewer than this fraction "
                                                                 "of the images get a pose"})
    threads: int = field(default=-1, metadata={"help": "threads for pycolmap (-1: all cores)"})
    seed: int = 0

    def validate(self) -> None:
        if (self.images is None) == (self.video is None):
            raise InputError("give one of --images DIR or --video FILE")
        checks = [
            (self.frames >= MIN_VIEWS, f"--frames must be >= {MIN_VIEWS} (got {self.frames})"),
            (self.max_size >= MIN_SIDE, f"--max-size must be >= {MIN_SIDE} (got {self.max_size})"),
            (0 < self.min_registered <= 1, f"--min-registered must be in (0, 1] (got {self.min_registered})"),
            (self.threads == -1 or self.threads >= 1, f"--threads must be -1 or >= 1 (got {self.threads})"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)


def check_out(out: Path) -> None:
    """``out`` can take a new scene: absent or an empty folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    if any(out.iterdir()):
        raise InputError(f"--out {out} is not empty; process writes only into a new or empty folder")


def needed(total: int, fraction: float) -> int:
    """Registered images needed of ``total``: ``fraction`` of them, and at least :data:`MIN_VIEWS`."""
    return max(MIN_VIEWS, math.ceil(fraction * total - 1e-9))


def summary(registration: Registration, sources: dict[str, str]) -> list[str]:
    """Lines that let a person judge the reconstruction; images are named by what they came from."""
    r = registration
    lines = [f"registered {r.registered} of {r.total} images, mean reprojection error "
             f"{r.mean_reprojection_error:.2f} px, {r.points} 3D points"]
    if r.unregistered:
        shown = ", ".join(sources[n] for n in r.unregistered[:5]) + (", ..." if len(r.unregistered) > 5 else "")
        lines.append(f"without a pose: {shown}")
    return lines


def working_images(cfg: ProcessConfig, folder: Path) -> WorkingImages:
    if cfg.images is not None:
        return prepare_photos(Path(cfg.images).expanduser(), folder, cfg.max_size)
    return extract_frames(Path(cfg.video).expanduser(), folder, cfg.frames, cfg.max_size)


def build(cfg: ProcessConfig, scene: Path) -> None:
    """Fill the new folder ``scene`` from the capture; scratch files go in ``scene/work`` and are removed."""
    work = scene / "work"
    working = working_images(cfg, work / "images")
    sources = dict(zip(working.names, working.sources, strict=True))
    matching = cfg.matching if cfg.matching != "auto" else ("sequential" if cfg.video else "exhaustive")
    if matching == "exhaustive" and len(working.names) > MANY_PHOTOS:
        print(f"note: matching all {len(working.names)} photos with each other takes long; photos taken in order "
              "walking around can use --matching sequential", flush=True)
    options = SfmOptions(matching=matching, camera_model=cfg.camera_model, threads=cfg.threads, seed=cfg.seed)
    registration = reconstruct(work / "images", work, working.names, working.size, working.focal_prior, options)
    for line in summary(registration, sources):
        print(line, flush=True)
    need = needed(registration.total, cfg.min_registered)
    if registration.registered < need:
        raise InputError(
            f"only {registration.registered} of {registration.total} images got a camera pose ({need} needed): "
            "the views overlap too little or show too little texture; take more photos, closer together "
            "(or lower --min-registered)")
    posed = posed_images(registration, working.names)
    framing = frame_scene(posed.cam_from_world, posed.points)
    source = f"--images {cfg.images}" if cfg.images is not None else f"--video {cfg.video}"
    write_scene_folder(scene, work / "images", posed, framing, sources, registration, source)
    shutil.rmtree(work)
    print(f"scene kind: {framing.scene_kind}; box {', '.join(f'{v:.2f}' for v in framing.aabb)}", flush=True)


def main(cfg: ProcessConfig) -> int:
    cfg.validate()
    out = Path(cfg.out).expanduser().absolute()
    check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror or exc}") from None
    try:
        build(cfg, tmp)
        try:
            os.rename(tmp, out)  # replaces an empty folder; fails if anything appeared there meanwhile
        except OSError as exc:
            raise InputError(f"cannot move the scene into --out {out}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out}\nnext: spiknerf train --data {out}")
    return 0
