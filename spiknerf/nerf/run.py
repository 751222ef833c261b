"""A run directory: its config, the scene it trained on, and its trained models.

Evaluation and rendering open a finished (or interrupted) run through here, so
they rebuild exactly the models that training saved. A run folder may come from
a stranger: its config is held to what ``train`` accepts, its checkpoints to
the models they restore into.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spiknerf.errors import InputError
from spiknerf.json_input import read_json
from spiknerf.nerf.checkpoint import conform, latest_checkpoint, load_checkpoint
from spiknerf.nerf.data import Scene, default_scene_path, load_scene
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.run_folder import RUN_CONFIG, check_run
from spiknerf.nerf.train_config import TrainConfig, config_from_saved

METRICS = "metrics.json"
MAX_CONFIG_BYTES = 1 << 20


def choose_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return torch.device(name)


def default_run_dir(scene_name: str) -> Path:
    """Where a run goes without ``--out``: ``runs/<scene>-<date>-<time>``."""
    return Path("runs") / f"{scene_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def eval_background(scene: Scene) -> Tensor:
    """The constant background of evaluation and rendering (random scenes are shown on white)."""
    return torch.zeros(3) if scene.background == "black" else torch.ones(3)


def ndc_camera(scene: Scene) -> tuple[float, float, int, int] | None:
    """The camera that defines a forward-facing scene's NDC (its first training view's), else ``None``."""
    if not scene.ndc:
        return None
    train = scene.splits["train"]
    fx, fy = train.intrinsics[0, :2].tolist()
    return fx, fy, train.width, train.height


def read_config(run: Path) -> TrainConfig:
    """The ``config.json`` of the run folder ``run``, held to what ``train`` accepts: its keys, the
    types and choices of its options and their ranges (:func:`~spiknerf.nerf.train_config.config_from_saved`)."""
    run = Path(run)
    check_run(run)
    path = run / RUN_CONFIG
    if not path.is_file():
        raise InputError(f"{path} not found; is {run} a run directory?")
    return config_from_saved(read_json(path, MAX_CONFIG_BYTES), str(path))


def open_scene(run: Path, config: TrainConfig, read_only: bool = False) -> Scene:
    """The scene a run trained on, loaded as training loaded it (downscaled images cached in the run folder;
    ``read_only``: in the user's cache folder, so that the run folder is only read)."""
    data = Path(config.data) if config.data else default_scene_path()
    return load_scene(data, downscale=config.downscale, background=config.background,
                      cache_dir=None if read_only else Path(run) / "cache", scene_kind=config.scene_kind)


def load_model(run: Path, phase: str, config: TrainConfig, scene: Scene,
               device: torch.device) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The saved model and sampler of a phase (``teacher`` or ``student``), and the checkpoint's state."""
    ckpt = latest_checkpoint(run, phase)
    if ckpt is None:
        raise InputError(f"{run}: no {phase} checkpoint in {Path(run) / 'checkpoints'}")
    state = load_checkpoint(ckpt)
    preset = PRESETS[config.preset]
    model = preset.teacher(scene) if phase == "teacher" else preset.student(scene, config.student)
    sampler = preset.sampler(scene, device)
    model.load_state_dict(conform(ckpt, state["model"], model.state_dict(), "model"))
    sampler.load_state_dict(conform(ckpt, state["sampler"], sampler.state_dict(), "sampler"))
    return model.to(device).eval(), sampler.to(device), state
