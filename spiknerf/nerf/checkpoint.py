"""Checkpoints of a run: ``checkpoints/<phase>-<step>.pt``, written atomically, the last K kept.

A phase's finished model is ``checkpoints/<phase>-final.pt`` and is never pruned.
Because every file appears by rename, a run killed at any moment leaves its
previous checkpoint intact and loses at most the steps since it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from spiknerf.atomic import write_atomic
from spiknerf.errors import InputError

_NAME = re.compile(r"^(?P<phase>[a-z]+)-(?P<step>\d+|final)\.pt$")


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def _entries(run: Path, phase: str) -> list[tuple[int, Path]]:
    """(step, path) of a phase's checkpoints, oldest first; final sorts last."""
    out = []
    folder = checkpoint_dir(run)
    if folder.is_dir():
        for p in folder.iterdir():
            m = _NAME.match(p.name)
            if m and m["phase"] == phase:
                out.append((1 << 62 if m["step"] == "final" else int(m["step"]), p))
    return sorted(out)


def save_checkpoint(run: Path, phase: str, step: int, state: dict[str, Any], keep: int = 3,
                    final: bool = False) -> Path:
    """Write ``state`` atomically; keep the newest ``keep`` step checkpoints of the phase."""
    path = checkpoint_dir(run) / (f"{phase}-final.pt" if final else f"{phase}-{step:07d}.pt")
    write_atomic(path, lambda tmp: torch.save(state, tmp))
    steps = [p for s, p in _entries(run, phase) if not p.name.endswith("-final.pt")]
    for old in steps[: max(0, len(steps) - keep)]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(run: Path, phase: str) -> Path | None:
    """The final checkpoint of a phase if it exists, else its newest step checkpoint."""
    entries = _entries(run, phase)
    return entries[-1][1] if entries else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU; an unreadable one is an InputError naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file surfaces as many exception types
        raise InputError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
