"""A run directory: its config, the scene it trained on, and its trained models.

Evaluation and rendering open a finished (or interrupted) run through here, so
they rebuild exactly the models that training saved.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spiknerf.errors import InputError
from spiknerf.nerf.checkpoint import latest_checkpoint, load_checkpoint
from spiknerf.nerf.data import Scene, default_scene_path, load_scene
from spiknerf.nerf.presets import build_sampler, build_student, build_teacher

RUN_CONFIG = "config.json"
METRICS = "metrics.json"


def choose_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return torch.device(name)


def resolve_run_dir(out: str | None, scene_name: str) -> Path:
    """``--out``, or a fresh ``runs/<scene>-<date>-<time>``."""
    if out is not None:
        return Path(out)
    return Path("runs") / f"{scene_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def eval_background(scene: Scene) -> Tensor:
    """The constant background of evaluation and rendering (random scenes are shown on white)."""
    return torch.zeros(3) if scene.background == "black" else torch.ones(3)


def read_config(run: Path) -> dict[str, Any]:
    path = Path(run) / RUN_CONFIG
    if not path.is_file():
        raise InputError(f"{path} not found; is {run} a run directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from None


def open_scene(config: dict[str, Any]) -> Scene:
    """The scene a run trained on, loaded as training loaded it."""
    data = Path(config["data"]) if config.get("data") else default_scene_path()
    cache = Path(config["out"]) / "cache" if config.get("out") else None
    return load_scene(data, downscale=config["downscale"], background=config["background"], cache_dir=cache)


def load_model(run: Path, phase: str, config: dict[str, Any], scene: Scene,
               device: torch.device) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The saved model and sampler of a phase (``teacher`` or ``student``), and the checkpoint's state."""
    ckpt = latest_checkpoint(run, phase)
    if ckpt is None:
        raise InputError(f"{run}: no {phase} checkpoint in {Path(run) / 'checkpoints'}")
    state = load_checkpoint(ckpt)
    if phase == "teacher":
        model = build_teacher(config["preset"], scene)
    else:
        model = build_student(config["preset"], scene, config)
    sampler = build_sampler(config["preset"], scene, device)
    try:
        model.load_state_dict(state["model"])
        sampler.load_state_dict(state["sampler"])
    except (KeyError, RuntimeError) as exc:
        raise InputError(f"{ckpt}: does not match the run's config ({type(exc).__name__}: {exc})") from None
    return model.to(device).eval(), sampler.to(device), state
