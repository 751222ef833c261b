"""Frames of a video: evenly spaced, the sharpest of each stretch, as working images.

The video is split into ``count`` equal windows of frames and the sharpest frame of
each is kept, sharpness being the variance of the image's Laplacian (a blurred
frame, from a shaking hand or a quick turn, has weak edges and a low variance).
Frames are decoded one at a time by ffmpeg (imageio-ffmpeg) and only the best frame
of the current window is held, so memory does not grow with the video's length.

A video may come from a stranger: its frame size, as ffmpeg reads it from the
header, is checked against :func:`spiknerf.limits.image_pixel_limit` before a
frame is decoded, and a file ffmpeg cannot read is one ``error:`` line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spiknerf.capture.photos import MIN_VIEWS, WorkingImages, WorkingWriter
from spiknerf.errors import InputError
from spiknerf.nerf.data.confine import shown
from spiknerf.nerf.data.images import check_pixels

SHARPNESS_SIDE = 640  # sharpness is measured on frames subsampled to about this longer side


def sharpness(image: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of ``image`` (uint8 ``[H, W, 3]``) made grey and subsampled."""
    step = max(1, max(image.shape[:2]) // SHARPNESS_SIDE)
    grey = image[::step, ::step].astype(np.float32).mean(-1)
    laplacian = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]) - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def window(index: int, frames: int, count: int) -> int:
    """The window (of ``count`` equal ones over ``frames`` frames) that frame ``index`` falls in."""
    return min(count - 1, index * count // frames)


def _open(video: Path):
    """ffmpeg's frame generator for ``video`` and its header: (generator, meta)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(video), pix_fmt="rgb24")
    try:
        meta = next(reader)
    except Exception as exc:  # ffmpeg's refusal comes as IOError or RuntimeError with its log
        reader.close()
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--video {video}: cannot read video ({shown(reason, quoted=False)})") from None
    return reader, meta


def frame_count(video: Path, meta: dict) -> int:
    """Frames in the video: from its duration and rate when the header gives them, else by counting."""
    fps, duration = meta.get("fps") or 0, meta.get("duration") or 0
    if math.isfinite(fps) and math.isfinite(duration) and fps > 0 and duration > 0:
        return max(1, round(fps * duration))
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.count_frames_and_secs(str(video))[0]
    except Exception:
        raise InputError(f"--video {video}: cannot count its frames") from None


def extract_frames(video: Path, work: Path, count: int, max_size: int) -> WorkingImages:
    """The sharpest frame of each of ``count`` equal windows of ``video``, written as working images."""
    if not video.is_file():
        raise InputError(f"--video {video}: " + ("not a file" if video.exists() else "no such file"))
    reader, meta = _open(video)
    try:
        width, height = meta["size"]
        for w, h in (meta.get("source_size", (width, height)), (width, height)):
            check_pixels(w, h, f"--video {video}")
        frames = frame_count(video, meta)
        count = min(count, frames)
        writer = WorkingWriter(work, max_size)
        best: tuple[float, int, np.ndarray] | None = None  # (sharpness, frame index, frame) of the open window
        try:
            for i, raw in enumerate(tqdm(reader, total=frames, desc="read video", unit="frame")):
                frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
                if best is not None and window(i, frames, count) != window(best[1], frames, count):
                    writer.add(best[2], f"frame {best[1]}")
                    best = None
                score = sharpness(frame)
                if best is None or score > best[0]:
                    best = (score, i, frame)
        except InputError:
            raise
        except Exception as exc:  # a stream that breaks off: keep what was read
            print(f"note: --video {video}: decoding stopped early ({type(exc).__name__}); using the frames read",
                  flush=True)
        if best is not None:
            writer.add(best[2], f"frame {best[1]}")
    finally:
        reader.close()
    if len(writer.names) < MIN_VIEWS:
        raise InputError(f"--video {video}: {len(writer.names)} frame(s) could be read; camera poses need at least "
                         f"{MIN_VIEWS} views")
    return writer.result(None)
