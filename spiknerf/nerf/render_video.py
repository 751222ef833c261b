"""``spiknerf render``: an H.264 mp4 of novel views along a camera path, optionally with depth beside colour.

Frames stream into the video as they are rendered, so memory does not grow with
their number, and the video's temporary file exists before the first frame is
rendered: an output that cannot be written fails before the long work.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spiknerf import distributed, threads
from spiknerf.atomic import atomic_path
from spiknerf.errors import InputError
from spiknerf.nerf.camera_path import PATHS, CameraPath, check_path_name, from_nerfstudio, make_path
from spiknerf.nerf.evaluate import inference_form
from spiknerf.nerf.rays import frame_rays
from spiknerf.nerf.render import render_chunks
from spiknerf.nerf.run import choose_device, eval_background, load_model, ndc_camera, open_scene, read_config
from spiknerf.nerf.run_folder import hold_run

VIDEO_RAYS = 1 << 20  # rays of the final video of a training run in all: 60 frames of the built-in scene fit whole


@dataclass
class RenderConfig:
    """Render a video of novel views from a trained run."""

    run: str = field(metadata={"help": "run directory"})
    model: str = field(default="student", metadata={"choices": ("student", "teacher")})
    path: str = field(default="orbit", metadata={"help": f"{' | '.join(PATHS)} | FILE.json of cameras"})
    camera_path: str | None = field(default=None, metadata={
        "help": "a nerfstudio camera_path.json (as its viewer or `spiknerf view` saves it); replaces --path"})
    frames: int = field(default=120, metadata={"help": "frames on an orbit or spiral"})
    fps: int | None = field(default=None, metadata={"help": "frames a second (default: the camera path's, else 30)"})
    out: str | None = field(default=None, metadata={"help": "output .mp4 (default: RUN/renders/<model>-<path>.mp4)"})
    depth: bool = field(default=False, metadata={"help": "show depth beside colour"})
    fold: bool = field(default=True, metadata={"help": "render a ternary student in its addition-only form"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even width and height: H.264 in yuv420p needs them."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def render_path(model: nn.Module, sampler: nn.Module, path: CameraPath,
                ndc_camera: tuple[float, float, int, int] | None, background: torch.Tensor, near: float, far: float,
                device: torch.device, depth: bool) -> Iterator[np.ndarray]:
    """uint8 frames ``[H, W(x2), 3]`` along the path, rendered as they are asked for; ``ndc_camera``: a
    forward-facing scene's training camera (:func:`~spiknerf.nerf.rays.frame_rays`), else ``None``. In a job the
    ranks render the frames between them and rank 0 gets them all, in order; the other ranks get none."""
    cameras = list(zip(path.c2w, path.intrinsics, strict=True))
    frame = partial(render_frame, model, sampler, path, ndc_camera=ndc_camera, background=background, near=near,
                    far=far, device=device, depth=depth)
    yield from tqdm(distributed.gathered(frame, cameras), total=len(cameras), desc="render", file=sys.stderr,
                    dynamic_ncols=True, disable=not distributed.is_first())


def render_frame(model: nn.Module, sampler: nn.Module, path: CameraPath, camera: tuple[torch.Tensor, torch.Tensor],
                 ndc_camera: tuple[float, float, int, int] | None, background: torch.Tensor, near: float, far: float,
                 device: torch.device, depth: bool) -> np.ndarray:
    """One frame of :func:`render_path` from its ``camera`` (camera-to-world, intrinsics)."""
    c2w, intr = camera
    o, d, vd = frame_rays(c2w, intr, path.width, path.height, ndc_camera)
    image = render_chunks(model, sampler, o.to(device), d.to(device), background.to(device),
                          None if vd is None else vd.to(device))
    rgb = image.rgb.reshape(path.height, path.width, 3).clamp(0, 1).cpu()
    if depth:
        dep = ((image.depth.cpu() - near) / (far - near)).clamp(0, 1) * image.opacity.cpu()
        rgb = torch.cat([rgb, dep.reshape(path.height, path.width, 1).expand(-1, -1, 3)], dim=1)
    return _even((rgb.numpy() * 255 + 0.5).astype(np.uint8))


def write_mp4(out: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """H.264 mp4 via imageio-ffmpeg, written atomically; ``frames`` are drawn once its temporary file exists."""
    with atomic_path(out) as tmp:
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, quality=8)
        try:
            for f in frames:
                writer.append_data(f)
        finally:
            writer.close()


def video_target(run: Path, model: str, path: str, out: str | None, camera_path: str | None = None) -> Path:
    """Where the video goes: ``--out``, else ``RUN/renders/<model>-<path or camera path's name>.mp4``; refused
    unless it names an mp4 file (a folder or another suffix would be found out only after rendering)."""
    name = Path(camera_path).stem if camera_path else Path(path).stem if path.endswith(".json") else path
    target = Path(out) if out else Path(run) / "renders" / f"{model}-{name}.mp4"
    if target.suffix.lower() != ".mp4":
        raise InputError(f"--out {target}: the video is an mp4; name it FILE.mp4")
    if target.is_dir():
        raise InputError(f"--out {target} is a folder; name the video file in it, e.g. {target / 'video.mp4'}")
    return target


def render_video(run: Path, model: str = "student", path: str = "orbit", frames: int = 120, fps: int | None = None,
                 out: str | None = None, depth: bool = False, fold: bool = True, device: str = "auto",
                 camera_path: str | None = None, max_rays: int | None = None) -> Path:
    """Render ``run``'s model along a camera path (``path``, or the nerfstudio file ``camera_path``) into an mp4;
    returns its path. ``max_rays``: frames downscaled so that the whole video renders at most that many rays."""
    run = Path(run)
    if fps is not None and fps < 1:
        raise InputError(f"--fps must be >= 1 (got {fps})")
    if camera_path is None:
        check_path_name(path, frames)
    else:
        nerfstudio = from_nerfstudio(Path(camera_path))  # a bad file is refused before any model loads
    target = video_target(run, model, path, out, camera_path)
    config = read_config(run)
    scene = open_scene(run, config)
    dev = choose_device(device)
    field_model, sampler, _ = load_model(run, model, config, scene, dev)
    if fold:
        field_model = inference_form(field_model, sampler, scene)
    train = scene.splits["train"]
    threads.announce()
    cams = nerfstudio if camera_path is not None else make_path(path, train.c2w, train.intrinsics[0], train.width,
                                                                 train.height, frames)
    if max_rays is not None:
        cams = cams.within(max_rays)
    frames = render_path(field_model, sampler, cams, ndc_camera(scene), eval_background(scene), scene.near, scene.far,
                         dev, depth)
    if distributed.is_first():
        write_mp4(target, frames, fps or cams.fps or 30)
    else:  # in a job: this rank renders its share of the frames, rank 0 writes them
        deque(frames, maxlen=0)
    return target


def main(cfg: RenderConfig) -> int:
    run = Path(cfg.run)
    target = video_target(run, cfg.model, cfg.path, cfg.out, cfg.camera_path)
    inside = target.resolve().is_relative_to(run.resolve())
    with hold_run(run, "render") if inside else nullcontext(run):  # a video inside the run is written by its holder
        render_video(run, cfg.model, cfg.path, cfg.frames, cfg.fps, cfg.out, cfg.depth, cfg.fold, cfg.device,
                     cfg.camera_path)
    print(f"wrote {target}")
    return 0
