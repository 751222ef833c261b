"""The web viewer: a viser server and nerfview's render loop, with panels for what a spiking NeRF spends.

nerfview renders in a thread per connected browser: small frames while the
camera moves (sized from the measured rays per second for about 30 frames a
second, at least 30 pixels high), then one at full resolution once it stops
(its longer side as :meth:`SpikingViewer.set_resolution` sets it, by default the training
images'). Nothing renders while no browser is connected.

Panels: the model (the student in its folded, addition-only form, or the
teacher); the output (colour, depth, spikes, firing rate, energy:
:mod:`spiknerf.viewer.frame`); this frame's figures (MACs, synaptic operations
and energy per ray against the teacher's, a plot of them over recent frames,
and the firing rate of each spiking layer); and a camera path (keyframes from
the browser's camera, saved as nerfstudio's ``camera_path.json`` for
``spiknerf render --camera-path``).

The server serves viser's own page and nothing else from disk; it listens on
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import threading
import traceback
from collections import deque
from contextlib import nullcontext
from pathlib import Path

import nerfview
import numpy as np
import torch
import viser
import viser.uplot as uplot

from spiknerf.errors import InputError
from spiknerf.viewer.frame import OUTPUTS, FrameStats, ViewCamera, render_frame
from spiknerf.viewer.gate import StepGate
from spiknerf.viewer.keyframes import Keyframe, camera_path_json, save_camera_path
from spiknerf.viewer.models import PHASES

HISTORY = 120  # frames in the plot of recent frames
FAILED = (96, 0, 0)  # the colour of a frame whose rendering failed


class SpikingViewer(nerfview.Viewer):
    """nerfview's viewer with spiknerf's panels, showing ``models`` (a :class:`~spiknerf.viewer.models.RunModels`
    or :class:`~spiknerf.viewer.models.TrainingModels`).

    ``paths_dir``: where saved camera paths go; ``gate``: renders take turns with training steps
    (:class:`~spiknerf.viewer.gate.StepGate`); ``run``: the run folder named in the render command a saved
    path suggests.
    """

    def __init__(self, server: viser.ViserServer, models, paths_dir: Path, gate: StepGate | None = None,
                 run: Path | None = None) -> None:
        self.models, self.paths_dir, self.gate, self.run = models, Path(paths_dir), gate, run
        self.model_name, self.output = PHASES[0], OUTPUTS[0]
        self.keyframes: list[Keyframe] = []
        self._frustums: list = []
        self.last_frame: tuple[ViewCamera, np.ndarray, FrameStats] | None = None
        self.frames_rendered = 0
        self._history: deque[tuple[float, float, float, float]] = deque(maxlen=HISTORY)
        self._failures = 0
        self._stats_lock = threading.Lock()
        start = models.start
        server.initial_camera.position, server.initial_camera.look_at = start.position, start.look_at
        server.initial_camera.up, server.initial_camera.fov = start.up, start.fov
        server.scene.set_up_direction(start.up)
        super().__init__(server, self._render, output_dir=self.paths_dir, mode="rendering")
        server.gui.set_panel_label("spiknerf")

    # --- what nerfview calls -------------------------------------------------------------------------------

    def _init_rendering_tab(self) -> None:
        start = self.models.start
        self.render_tab_state = nerfview.RenderTabState(viewer_res=max(start.width, start.height))
        self._rendering_tab_handles = {}
        self._rendering_folder = None

    def _populate_rendering_tab(self) -> None:
        gui = self.server.gui
        with gui.add_folder("Model"):
            self._status = gui.add_markdown(self.models.status)
            self._model_buttons = gui.add_button_group("Model", PHASES, hint="the student is shown folded: "
                                                       "its spike-reading layers only add")
            self._model_buttons.on_click(lambda event: self.choose(model=event.target.value))
        with gui.add_folder("Output"):
            self._output_buttons = gui.add_button_group("Show", OUTPUTS)
            self._output_buttons.on_click(lambda event: self.choose(output=event.target.value))
            self._legend = gui.add_markdown("")
            self._resolution = gui.add_slider("Full resolution", min=16, max=2048, step=1,
                                              initial_value=self.render_tab_state.viewer_res,
                                              hint="pixels on the longer side of a frame once the camera stops")
            self._resolution.on_update(lambda _: self._set_resolution(int(self._resolution.value)))
        with gui.add_folder("This frame"):
            self._numbers = gui.add_markdown("")
            self._ops_plot = gui.add_uplot(
                (np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)),
                (uplot.Series(label="frame"), uplot.Series(label="SOPs / ray", stroke="orange", scale="ops"),
                 uplot.Series(label="MACs / ray", stroke="steelblue", scale="ops"),
                 uplot.Series(label="pJ / ray", stroke="crimson", scale="pj")),
                title="operations and energy per ray, recent frames", scales={"x": {"time": False}},
                axes=(uplot.Axis(), uplot.Axis(scale="ops"), uplot.Axis(scale="pj", side=1)), aspect=1.6)
            self._rate_plot = gui.add_uplot(
                (np.zeros(0), np.zeros(0)), (uplot.Series(label="layer"), uplot.Series(label="firing rate",
                                                                                      stroke="orange")),
                title="firing rate per spiking layer", scales={"x": {"time": False}, "y": {"range": (0.0, 1.0)}},
                aspect=1.6)
            self._rates = gui.add_markdown("")
        with gui.add_folder("Camera path"):
            add = gui.add_button("Add keyframe", hint="the camera as you see it now")
            clear = gui.add_button("Clear keyframes")
            start = self.models.start
            self._video_size = gui.add_vector2("Video size", initial_value=(start.width, start.height), min=(1, 1),
                                               max=(8192, 8192), step=1)
            self._seconds = gui.add_number("Seconds", initial_value=4.0, min=0.1, max=3600.0, step=0.1)
            self._fps = gui.add_number("Frames a second", initial_value=30, min=1, max=240, step=1)
            self._path_name = gui.add_text("Name", initial_value="path")
            save = gui.add_button("Save camera path")
            self._path_status = gui.add_markdown("no keyframes yet")
            add.on_click(self._add_keyframe_of)
            clear.on_click(lambda _: self.clear_keyframes())
            save.on_click(lambda _: self._save_from_gui())

    def _render(self, camera_state: nerfview.CameraState, tab_state: nerfview.RenderTabState) -> np.ndarray:
        """nerfview's render function: a frame of the chosen model and output, never an exception (nerfview ends
        the process on one)."""
        # nerfview can interrupt a render by raising from a trace function at any line; here a line may be
        # inside a lock of the training gate or of viser, so rendering is never interrupted (and not traced)
        sys.settrace(None)
        sys._getframe().f_trace = None
        width, height = int(tab_state.viewer_width), int(tab_state.viewer_height)
        camera = ViewCamera.from_opencv(camera_state.c2w, camera_state.fov, width, height)
        try:
            image, stats = self.render(camera)
        except Exception:  # a failed frame is shown dark red and reported, and the viewer goes on
            self._failures += 1
            if self._failures <= 3:
                print(f"viewer: rendering failed\n{traceback.format_exc()}", file=sys.stderr)
            return np.full((height, width, 3), FAILED, dtype=np.uint8)
        self._show(stats)
        return image

    # --- the viewer's own API ----------------------------------------------------------------------------------

    def render(self, camera: ViewCamera) -> tuple[np.ndarray, FrameStats]:
        """The frame a browser with ``camera`` gets now (in its turn between training steps, if training)."""
        with self.gate.turn() if self.gate is not None else nullcontext(), torch.random.fork_rng(devices=[]):
            name = self.shown_model()
            model, sampler = self.models.get(name)
            image, stats = render_frame(model, sampler, self.models.scene, camera, self.output, name)
        with self._stats_lock:
            self.last_frame = (camera, image, stats)
            self.frames_rendered += 1
        return image, stats

    def shown_model(self) -> str:
        """The chosen model if there is one, else the first the models have."""
        names = self.models.names
        if not names:
            raise RuntimeError("no model to show yet")
        return self.model_name if self.model_name in names else names[0]

    def choose(self, model: str | None = None, output: str | None = None) -> None:
        """Show another model (``student`` / ``teacher``) or output (one of :data:`OUTPUTS`); every browser
        renders again."""
        if model is not None:
            if model not in PHASES:
                raise ValueError(f"model must be one of {', '.join(PHASES)} (got {model!r})")
            self.model_name = model
        if output is not None:
            if output not in OUTPUTS:
                raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (got {output!r})")
            self.output = output
        self.rerender(None)

    def refresh(self) -> None:
        """Render every browser's view again at full resolution (the model changed: training)."""
        for client_id, client in self.server.get_clients().items():
            renderer = self._renderers.get(client_id)
            if renderer is not None:
                renderer.submit(nerfview._renderer.RenderTask("update", self.get_camera_state(client)))

    def close(self) -> None:
        """Stop rendering: every browser's render thread ends (a render under way finishes first)."""
        if self.gate is not None:
            self.gate.close()
        renderers = list(self._renderers.values())
        for renderer in renderers:
            renderer.running = False
        for renderer in renderers:
            renderer.join(timeout=60)

    @property
    def has_clients(self) -> bool:
        return bool(self._renderers)

    def add_keyframe(self, camera: ViewCamera) -> Keyframe:
        """Record ``camera`` as the path's next keyframe, and show it in the scene as a small frustum."""
        keyframe = Keyframe(np.array(camera.c2w, dtype=np.float64), math.degrees(camera.fov))
        self.keyframes.append(keyframe)
        opencv = keyframe.c2w @ np.diag([1.0, -1.0, -1.0, 1.0])
        start = self.models.start
        self._frustums.append(self.server.scene.add_camera_frustum(
            f"/keyframes/{len(self.keyframes) - 1}", fov=camera.fov, aspect=camera.width / camera.height,
            scale=0.05 * float(np.linalg.norm(start.position - start.look_at)),
            wxyz=viser.transforms.SO3.from_matrix(opencv[:3, :3]).wxyz, position=keyframe.c2w[:3, 3],
            color=(255, 160, 40)))
        self._path_status.content = f"{len(self.keyframes)} keyframe(s)"
        return keyframe

    def clear_keyframes(self) -> None:
        self.keyframes.clear()
        for frustum in self._frustums:
            frustum.remove()
        self._frustums.clear()
        self._path_status.content = "no keyframes yet"

    def save_camera_path(self, name: str, width: int, height: int, seconds: float, fps: float) -> Path:
        """Save the path through the keyframes as ``paths_dir/<name>.json`` (nerfstudio's format)."""
        if not self.keyframes:
            raise InputError("add a keyframe first: the path goes through its keyframes")
        data = camera_path_json(self.keyframes, width, height, fps, seconds)
        return save_camera_path(self.paths_dir, name, data)

    # --- panels --------------------------------------------------------------------------------------------------

    def set_resolution(self, pixels: int) -> None:
        """Render still frames ``pixels`` wide on their longer side (as the **Full resolution** slider does)."""
        self._resolution.value = pixels
        self._set_resolution(pixels)

    def _set_resolution(self, pixels: int) -> None:
        self.render_tab_state.viewer_res = pixels
        self.rerender(None)

    def _add_keyframe_of(self, event: viser.GuiEvent) -> None:
        client = event.client
        if client is None:
            return
        state = self.get_camera_state(client)
        width, height = (int(v) for v in self._video_size.value)
        self.add_keyframe(ViewCamera.from_opencv(state.c2w, state.fov, width, height))

    def _save_from_gui(self) -> None:
        width, height = (int(v) for v in self._video_size.value)
        try:
            path = self.save_camera_path(self._path_name.value.strip(), width, height, float(self._seconds.value),
                                         float(self._fps.value))
        except InputError as exc:
            self._path_status.content = f"not saved: {exc}"
            return
        run = self.run if self.run is not None else "RUN"
        self._path_status.content = (f"saved {path}; render it with\n\n"
                                     f"`spiknerf render --run {run} --camera-path {path}`")

    def _show(self, stats: FrameStats) -> None:
        """This frame's figures in the panels."""
        self._status.content = self.models.status
        rays = max(stats.rays, 1)
        legend = {"colour": "the rendered colour", "depth": f"depth, white at {stats.top:.3g}",
                  "spikes": f"spikes along each pixel's ray; brightest: {stats.top:.4g}",
                  "firing rate": f"spikes per neuron and time step along each ray; brightest: {stats.top:.3g}",
                  "energy": f"energy per sample point ÷ the teacher's; brightest: {stats.top:.3g}"}
        self._legend.content = f"**{stats.model}**, {stats.output}: {legend[stats.output]}"
        ratio = "" if math.isnan(stats.energy_ratio) else f" ({stats.energy_ratio:.3f} × the teacher's)"
        self._numbers.content = (
            f"{stats.width} × {stats.height} in {stats.seconds * 1000:.0f} ms  \n"
            f"{stats.samples / rays:.1f} samples, {stats.macs / rays:.0f} MACs, {stats.sops / rays:.0f} SOPs "
            f"per ray  \nenergy {stats.energy_pj / rays:.0f} pJ per ray{ratio}, {stats.energy_pj / 1e3:.1f} nJ "
            f"the frame")
        self._history.append((float(self.frames_rendered), stats.sops / rays, stats.macs / rays,
                              stats.energy_pj / rays))
        self._ops_plot.data = tuple(np.array(column, dtype=np.float64) for column in zip(*self._history,
                                                                                          strict=True))
        rates = list(stats.firing_rate.items())
        self._rate_plot.data = (np.arange(len(rates), dtype=np.float64),
                                np.array([r for _, r in rates], dtype=np.float64))
        self._rates.content = "  \n".join(f"{i}: `{name}` {rate:.3f}" for i, (name, rate) in enumerate(rates)) \
            or "no spiking layers (an ANN)"


def start_server(host: str, port: int) -> viser.ViserServer:
    """A viser server on ``host:port`` (port 0: any free one; a taken one: the next free). viser prints a box
    with its address to stdout; the commands print their own line instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        return viser.ViserServer(host=host, port=port, verbose=False)


def stop_server(server: viser.ViserServer, viewer: SpikingViewer | None = None) -> None:
    """Stop the viewer's render threads, then the server (quietly)."""
    if viewer is not None:
        viewer.close()
    with contextlib.redirect_stdout(io.StringIO()):
        server.stop()
