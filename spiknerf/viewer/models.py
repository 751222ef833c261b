"""What the viewer shows: the models of a finished run, or the ones training now.

The student is shown in its inference form: a ternary student folded
(:func:`spiknerf.nerf.evaluate.fold_student`, each unit's offset its commonest
spike) so that its spike-reading layers need only additions, as ``eval``
measures it. A binary student needs no folding.

A run folder is only read: its config and checkpoints; the scene's images are
cached in the user's cache folder, not in the run. While training, the
training loop hands its models over after each step (:meth:`TrainingModels.update`);
a student's folded copy is refreshed at most every :data:`REFOLD_SECONDS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from spiknerf.errors import InputError
from spiknerf.nerf.camera_path import focus_point
from spiknerf.nerf.checkpoint import latest_checkpoint
from spiknerf.nerf.data import Scene
from spiknerf.nerf.evaluate import inference_form, is_ternary
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.run import eval_background, load_model, ndc_camera, open_scene, read_config
from spiknerf.neurons import E_AC_PJ, E_MAC_PJ, count_ops
from spiknerf.viewer.frame import SceneView

PHASES = ("student", "teacher")  # the spiking student first: it is what the viewer is for
REFOLD_SECONDS = 2.0


class Shown(NamedTuple):
    """A model the viewer can render, and the sampler that marches it."""

    model: nn.Module
    sampler: nn.Module


@dataclass(frozen=True)
class StartView:
    """Where a person's camera starts: the first training camera, looking at what the cameras look at."""

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    fov: float  # vertical, radians
    width: int  # the training images' size: the model's full resolution
    height: int


def teacher_energy_per_sample(preset: str, scene: Scene, e_mac: float, e_ac: float) -> float:
    """Energy (pJ) of one sample point through the preset's ANN teacher: its MACs, the same for every input."""
    teacher = PRESETS[preset].teacher(scene)
    points, dirs = torch.zeros(4, 3), torch.nn.functional.normalize(torch.ones(4, 3), dim=-1)
    return count_ops(teacher, (points, dirs), e_mac=e_mac, e_ac=e_ac).energy_pj_per_sample


def scene_view(preset: str, scene: Scene, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ) -> SceneView:
    return SceneView(eval_background(scene), scene.near, scene.far, ndc_camera(scene),
                     teacher_energy_per_sample(preset, scene, e_mac, e_ac), e_mac, e_ac)


def start_view(scene: Scene) -> StartView:
    train = scene.splits["train"]
    c2w = train.c2w
    up = c2w[:, :3, 1].mean(0)
    fy = float(train.intrinsics[0, 1])
    return StartView(c2w[0, :3, 3].numpy().astype(np.float64), focus_point(c2w).numpy().astype(np.float64),
                     (up / up.norm()).numpy().astype(np.float64), 2 * float(np.arctan(train.height / 2 / fy)),
                     train.width, train.height)


@dataclass
class RunModels:
    """The trained models of a run folder, loaded once; :attr:`names` lists the ones it has."""

    models: dict[str, Shown]
    scene: SceneView
    start: StartView
    status: str

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str) -> Shown:
        return self.models[name]


def open_run(run: Path, device: torch.device) -> RunModels:
    """The models of the run folder ``run``, read and never written (InputError if it has none)."""
    run = Path(run)
    config = read_config(run)
    present = [p for p in PHASES if latest_checkpoint(run, p) is not None]
    if not present:
        raise InputError(f"{run}: no trained model in {run / 'checkpoints'}")
    scene = open_scene(run, config, read_only=True)
    models: dict[str, Shown] = {}
    for phase in present:
        model, sampler, _ = load_model(run, phase, config, scene, device)
        models[phase] = Shown(inference_form(model, sampler, scene), sampler)
    status = f"run {run.name}: {config.preset} preset, scene {scene.name}"
    return RunModels(models, scene_view(config.preset, scene), start_view(scene), status)


class TrainingModels:
    """The models of a training run as the loop hands them over; a student is folded at most every
    :data:`REFOLD_SECONDS` (what the viewer shows may trail training by that much)."""

    def __init__(self, preset: str, scene: Scene) -> None:
        self.scene, self._scene = scene_view(preset, scene), scene
        self.start = start_view(scene)
        self._models: dict[str, Shown] = {}
        self._folded: dict[str, tuple[float, int, Shown]] = {}
        self.phase, self.step = "", 0

    @property
    def names(self) -> list[str]:
        return [p for p in PHASES if p in self._models]

    @property
    def status(self) -> str:
        return f"training the {self.phase}, step {self.step}" if self.phase else "training starts"

    def update(self, phase: str, step: int, model: nn.Module, sampler: nn.Module) -> None:
        """The loop's model of ``phase`` after ``step``: cheap, a reference is kept."""
        self.phase, self.step = phase, step
        self._models[phase] = Shown(model, sampler)

    def get(self, name: str) -> Shown:
        model, sampler = self._models[name]
        if not is_ternary(model):
            return Shown(model, sampler)
        stamp, step, folded = self._folded.get(name, (-np.inf, -1, None))
        if folded is None or (step != self.step and time.monotonic() - stamp > REFOLD_SECONDS):
            folded = Shown(inference_form(model, sampler, self._scene), sampler)
            self._folded[name] = (time.monotonic(), self.step, folded)
        return folded

