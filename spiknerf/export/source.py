"""What an export reads and where it writes: a run's trained model, and a checked output path.

An export only reads the run. Its output goes outside the run, or inside it
while the run is held (as ``render`` does), always written atomically under a
name of its own; a bad ``--out`` is refused before any long work.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from spiknerf.errors import InputError
from spiknerf.nerf.data import Scene
from spiknerf.nerf.run import choose_device, load_model, open_scene, read_config
from spiknerf.nerf.run_folder import check_run, hold_run
from spiknerf.nerf.train_config import TrainConfig

MODELS = ("student", "teacher")


@dataclass
class Source:
    """A run opened for export: its config, scene, one trained model and its sampler, on ``device``."""

    run: Path
    config: TrainConfig
    scene: Scene
    model: nn.Module
    sampler: nn.Module
    device: torch.device


def open_run(run: str | Path, model: str, device: str = "auto", world_space: bool = True) -> Source:
    """Load ``model`` (``student`` or ``teacher``) of the run folder ``run``.

    ``world_space``: refuse forward-facing scenes, whose fields live in normalized
    device coordinates, where meshes, points and depths would not be in scene units.
    """
    run = Path(run)
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)} (got {model!r})")
    config = read_config(run)
    scene = open_scene(run, config)
    if world_space and scene.ndc:
        raise InputError(f"{run}: a forward-facing scene (its field lives in normalized device coordinates); "
                         f"this export needs a scene in world space")
    dev = choose_device(device)
    field, sampler, _ = load_model(run, model, config, scene, dev)
    return Source(run, config, scene, field, sampler, dev)


def output_file(out: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """``--out`` as a file path with one of ``suffixes``; refused if it is a folder, has another suffix, or its
    folder cannot be written."""
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"--out {path}: a {what} is written as {' or '.join(suffixes)}; "
                         f"name the file with one of these extensions")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder; name the {what} file in it, e.g. {path / ('out' + suffixes[0])}")
    check_writable(path.parent)
    return path


def output_folder(out: str | Path) -> Path:
    """``--out`` as a folder, which may exist (files of the same names in it are replaced) or be made."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} is a file; depth maps go into a folder")
    check_writable(path)
    return path


def check_writable(folder: Path) -> None:
    """Make ``folder`` if it is missing and create (then remove) a file in it: a place that cannot take the
    output is found out before the long work, not after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None


@contextmanager
def held_if_inside(run: str | Path, target: Path) -> Iterator[None]:
    """Hold the run folder while writing ``target`` if it lies inside it (one writer at a time), else nothing."""
    run = Path(run)
    check_run(run)
    inside = target.resolve().is_relative_to(run.resolve())
    with hold_run(run, "export") if inside else nullcontext():
        yield
