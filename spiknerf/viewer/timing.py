"""How fast the viewer shows a model: frames a second while the camera moves, and the wait for a still frame.

:func:`frame_rates` renders as a browser's render thread does, without the
browser: the camera orbits the scene, and each frame's size is the one
nerfview's renderer picks for a moving camera from the rays per second it has
measured so far (aiming at 30 frames a second, at least 30 pixels high); then
the camera stops and frames at full resolution are timed. Frames of a few sizes
are rendered first, so that compiling the kernels is not timed. The frames go through
:meth:`SpikingViewer.render`, the same code a browser's frames go through, but
not JPEG-encoded and sent (a few milliseconds at these sizes).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import numpy as np
import torch
from nerfview._renderer import Renderer

from spiknerf.nerf.rays import look_at
from spiknerf.viewer.frame import ViewCamera


def orbit_camera(start, azimuth: float, width: int, height: int) -> ViewCamera:
    """The start camera turned by ``azimuth`` (radians) about the up axis through the point it looks at."""
    up = np.asarray(start.up, dtype=np.float64)
    offset = np.asarray(start.position - start.look_at, dtype=np.float64)
    along = up * (offset @ up)
    across = offset - along
    turned = along + np.cos(azimuth) * across + np.sin(azimuth) * np.cross(up, across)
    c2w = look_at(torch.tensor(start.look_at + turned, dtype=torch.float32),
                  torch.tensor(start.look_at, dtype=torch.float32), torch.tensor(up, dtype=torch.float32))
    return ViewCamera(c2w.numpy().astype(np.float64), start.fov, width, height)


def frame_rates(viewer, model: str, aspect: float = 4 / 3, moving_seconds: float = 10.0,
                full_frames: int = 3, warmup: int = 3) -> dict[str, Any]:
    """Frames a second while moving and seconds to a full-resolution frame, for ``model`` in colour."""
    viewer.choose(model=model, output="colour")
    state = viewer.render_tab_state
    sizer = Renderer(viewer=viewer, client=None, lock=threading.Lock())  # its sizing rule only; never started
    sizer._state = "low_move"
    start = viewer.models.start
    sizer._state = "high"
    full_size = sizer._get_img_wh(aspect)
    for k in range(warmup):  # frames of three sizes: the compiled kernels specialise, then go dynamic
        viewer.render(orbit_camera(start, -0.1 * k, full_size[0] - 8 * k, full_size[1] - 6 * k))
    sizer._state = "low_move"
    sizes, times, frame = [], [], 0
    began = time.perf_counter()
    while time.perf_counter() - began < moving_seconds:
        width, height = sizer._get_img_wh(aspect)
        t0 = time.perf_counter()
        viewer.render(orbit_camera(start, 0.05 * frame, width, height))
        seconds = time.perf_counter() - t0
        state.num_view_rays_per_sec = width * height / max(seconds, 1e-9)
        frame += 1
        sizes.append((width, height))
        times.append(seconds)
    full = []
    for k in range(full_frames):
        t0 = time.perf_counter()
        viewer.render(orbit_camera(start, 0.3 * k, *full_size))
        full.append(time.perf_counter() - t0)
    widths, heights = zip(*sizes, strict=True)
    return {"model": model, "moving_fps": len(times) / sum(times), "moving_frames": len(times),
            "moving_width": statistics.median(widths), "moving_height": statistics.median(heights),
            "full_width": full_size[0], "full_height": full_size[1], "full_seconds": statistics.median(full)}
