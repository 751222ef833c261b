"""``spiknerf train --viewer``: the web viewer of the models being trained, the teacher, then the student.

The training loop calls a :class:`TrainingViewer` after every step with the
model it trains. That call keeps a reference to the model and returns at once
while no browser is connected; with one, it gives a waiting render its turn
(:class:`~spiknerf.viewer.gate.StepGate`: renders run between steps, never
during one) and asks for a fresh full-resolution frame every few seconds, so
that a still view follows the training. The renders keep training's random
numbers untouched, so a run with ``--viewer`` trains exactly as one without.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torch import nn

from spiknerf.nerf.data import Scene
from spiknerf.viewer import view
from spiknerf.viewer.gate import StepGate

REFRESH_SECONDS = 2.0  # a still view follows training at most this often
REFRESH_SHARE = 0.1  # and spends at most about this share of the time rendering


class TrainingViewer:
    """The viewer of a training run; call it after every step, :meth:`close` it when training ends."""

    def __init__(self, preset: str, scene: Scene, run: Path, host: str = "127.0.0.1", port: int = 8080,
                 paths: str = "camera_paths") -> None:
        view.check_address(host, port)
        view.check_paths_folder(Path(paths), run)
        self.app, models = view.viewer_modules()
        self.models = models.TrainingModels(preset, scene)
        self.gate = StepGate()
        self.server = self.app.start_server(host, port)
        self.viewer = self.app.SpikingViewer(self.server, self.models, Path(paths), gate=self.gate, run=run)
        self._last_refresh = time.monotonic()
        print(f"viewer: {view.url(host, self.server.get_port())}", file=sys.stderr, flush=True)

    def __call__(self, phase: str, step: int, model: nn.Module, sampler: nn.Module) -> None:
        """After a step of ``phase``: the model as it is now."""
        self.models.update(phase, step, model, sampler)
        if not self.viewer.has_clients:
            return
        self.gate.between_steps()
        last = self.viewer.last_frame
        spent = last[2].seconds if last is not None else 0.0
        if time.monotonic() - self._last_refresh > max(REFRESH_SECONDS, spent / REFRESH_SHARE):
            self._last_refresh = time.monotonic()
            self.viewer.refresh()

    def close(self) -> None:
        """Training is over (or failed): renders stop waiting for steps, and the server stops."""
        self.app.stop_server(self.server, self.viewer)
