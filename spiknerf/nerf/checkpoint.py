"""Checkpoints of a run: ``checkpoints/<phase>-<step>.safetensors``, written atomically, the last K kept.

A phase's finished model is ``checkpoints/<phase>-final.safetensors`` and is never pruned.
Because every file appears by rename, a run killed at any moment leaves its
previous checkpoint intact and loses at most the steps since it.

A checkpoint is data, never a program. It is a safetensors file: a JSON header
naming each tensor's dtype, shape and byte range, then the raw bytes. The
tensors are the model's and the sampler's state, Adam's moments
(``optimizer/<param>/<name>``) and the two random-number generator states; the
rest of the training state (step, counters, the optimizer's parameter groups,
the learning-rate schedule) is JSON in the header's metadata, under
``spiknerf``. Reading one parses that header and copies bytes (a pickle, which
``torch.load`` of the ``.pt`` files of earlier versions reads, can run any code).
The file's size is bounded before it is opened, its layout is checked as it is
read (:func:`load_checkpoint`), and what it restores is checked against the
model, optimizer and schedule it restores into (:func:`conform`): each tensor's
name, shape and dtype, each JSON value's type, nothing more and nothing less.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
from torch import Tensor

from spiknerf.atomic import write_atomic
from spiknerf.errors import InputError
from spiknerf.json_input import expect_object, is_number, parse_json

SUFFIX = ".safetensors"
FORMAT = "spiknerf-checkpoint"
VERSION = 1
# far above any preset's checkpoint (model, sampler and Adam's two moments), far below a machine's memory
MAX_BYTES = 1 << 30
PHASES = ("teacher", "student")
_NAME = re.compile(r"^(?P<phase>[a-z]+)-(?P<step>\d+|final)\.safetensors$")
_OLD_NAME = re.compile(r"^(?P<phase>[a-z]+)-(?P<step>\d+|final)\.pt$")
_OPTIMIZER = re.compile(r"^optimizer/(?P<param>\d{1,6})/(?P<name>[a-z_]{1,32})$")
# the scalars of a phase's state, with their JSON types
SCALARS: dict[str, type] = {"step": int, "train_seconds": float, "rays": int, "samples": int,
                            "samples_per_ray": float, "done": bool}
_TENSOR_PARTS = ("model", "sampler")
_RNG = ("generator", "torch_rng")


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def _entries(run: Path, phase: str, pattern: re.Pattern = _NAME) -> list[tuple[int, Path]]:
    """(step, path) of a phase's checkpoints, oldest first; final sorts last."""
    out = []
    folder = checkpoint_dir(run)
    if folder.is_dir():
        for p in folder.iterdir():
            m = pattern.match(p.name)
            if m and m["phase"] == phase:
                out.append((1 << 62 if m["step"] == "final" else int(m["step"]), p))
    return sorted(out)


def save_checkpoint(run: Path, phase: str, step: int, state: dict[str, Any], keep: int = 3,
                    final: bool = False) -> Path:
    """Write ``state`` atomically; keep the newest ``keep`` step checkpoints of the phase."""
    path = checkpoint_dir(run) / (f"{phase}-final{SUFFIX}" if final else f"{phase}-{step:07d}{SUFFIX}")
    data = safetensors.torch.save(*_encode(state))
    write_atomic(path, lambda tmp: _write_file(tmp, data))
    steps = [p for s, p in _entries(run, phase) if not p.name.endswith(f"-final{SUFFIX}")]
    for old in steps[: max(0, len(steps) - keep)]:
        old.unlink(missing_ok=True)
    return path


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def latest_checkpoint(run: Path, phase: str) -> Path | None:
    """The final checkpoint of a phase if it exists, else its newest step checkpoint.

    A run that has only checkpoints of earlier versions (pickled ``.pt`` files) is an InputError: they are not read.
    """
    entries = _entries(run, phase)
    if entries:
        return entries[-1][1]
    old = _entries(run, phase, _OLD_NAME)
    if old:
        raise InputError(f"{old[-1][1]} is a checkpoint of an earlier spiknerf (a pickle, which can run code when "
                         f"loaded); it is not read: train the run again")
    return None


def _encode(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and the metadata of a phase's state (as ``Phase.state()`` gives it)."""
    tensors: dict[str, Tensor] = {}
    for part in _TENSOR_PARTS:
        tensors |= {f"{part}/{k}": v for k, v in state[part].items()}
    for param, moments in state["optimizer"]["state"].items():
        tensors |= {f"optimizer/{param}/{k}": v for k, v in moments.items()}
    tensors |= {k: state[k] for k in _RNG}
    seen: set[int] = set()
    for k, v in tensors.items():
        v = v.detach().to("cpu").contiguous()
        if v.untyped_storage().data_ptr() in seen:  # safetensors refuses tensors that share memory
            v = v.clone()
        seen.add(v.untyped_storage().data_ptr())
        tensors[k] = v
    meta = {"format": FORMAT, "version": VERSION, "phase": state["phase"], **{k: state[k] for k in SCALARS},
            "param_groups": state["optimizer"]["param_groups"], "scheduler": state["scheduler"]}
    return tensors, {"spiknerf": json.dumps(meta, allow_nan=False)}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's state, in the layout ``Phase.state()`` gives, with tensors on the CPU.

    Anything but a checkpoint spiknerf wrote (another format, a truncated file, foreign or missing
    entries, values of the wrong type) is an InputError naming the file.
    """
    path = Path(path)
    m = _NAME.match(path.name)
    if not m or m["phase"] not in PHASES:
        raise InputError(f"{path}: not a checkpoint name (<teacher|student>-<step|final>{SUFFIX})")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"checkpoint {path} is not a regular file")
    if info.st_size > MAX_BYTES:
        raise InputError(f"checkpoint {path} has {info.st_size} bytes, more than a checkpoint may have ({MAX_BYTES})")
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  safe_open is not a mapping
    except Exception as exc:  # the library reports a malformed file in several exception types
        raise InputError(f"cannot read checkpoint {path}: not a safetensors file{_pickle_hint(path)} "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return _decode(path, m["phase"], None if m["step"] == "final" else int(m["step"]), tensors, metadata)


def _pickle_hint(path: Path) -> str:
    """What a file that is not safetensors looks like, when it looks like torch.save's output."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return ""
    # torch.save writes a zip archive of pickles; older torch and plain pickle start with the PROTO opcode
    return " but a pickle (torch.save's format), which is not read: it can run code" if head in (
        b"PK", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") else ""


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"checkpoint {path}: {what}; not a checkpoint spiknerf wrote")


def _decode(path: Path, phase: str, step: int | None, tensors: dict[str, Tensor],
            metadata: dict[str, str]) -> dict[str, Any]:
    """The state held by a checkpoint's tensors and metadata, its layout checked."""
    if set(metadata) != {"spiknerf"}:
        raise _bad(path, f"its metadata has the keys {sorted(metadata)!r:.200}, not 'spiknerf'")
    meta = expect_object(parse_json(metadata["spiknerf"], f"checkpoint {path} (metadata)"), f"checkpoint {path}")
    expected = {"format", "version", "phase", "param_groups", "scheduler", *SCALARS}
    if set(meta) != expected:
        odd = sorted(set(meta) ^ expected)
        raise _bad(path, f"its metadata has a foreign or missing key {odd[0]!r:.80}")
    if meta["format"] != FORMAT or meta["version"] != VERSION:
        raise _bad(path, f"format {meta['format']!r:.80} version {meta['version']!r:.20}, not {FORMAT} {VERSION}")
    if meta["phase"] != phase:
        raise _bad(path, f"it holds the phase {meta['phase']!r:.80}, its name says {phase}")
    state: dict[str, Any] = {"phase": phase}
    for key, tp in SCALARS.items():
        value = meta[key]
        ok = isinstance(value, bool) if tp is bool else (
            is_number(value) and (tp is float or isinstance(value, int)) and math.isfinite(value) and value >= 0)
        if not ok:
            raise _bad(path, f"{key} is {value!r:.80}, not a {'bool' if tp is bool else 'number >= 0'}")
        state[key] = float(value) if tp is float else value
    if state["step"] < 1 or state["train_seconds"] <= 0 or state["samples_per_ray"] <= 0:
        raise _bad(path, "it records no training (step, train_seconds and samples_per_ray must be > 0)")
    if step is not None and state["step"] != step:
        raise _bad(path, f"it holds step {state['step']}, its name says {step}")
    if not isinstance(meta["param_groups"], list) or not all(isinstance(g, dict) for g in meta["param_groups"]):
        raise _bad(path, "param_groups is not a list of objects")
    state["scheduler"] = expect_object(meta["scheduler"], f"checkpoint {path}: scheduler")
    state |= {part: {} for part in _TENSOR_PARTS}
    moments: dict[int, dict[str, Tensor]] = {}
    for name, tensor in tensors.items():
        part, _, key = name.partition("/")
        if part in _TENSOR_PARTS and key:
            state[part][key] = tensor
        elif (m := _OPTIMIZER.match(name)) is not None:
            moments.setdefault(int(m["param"]), {})[m["name"]] = tensor
        elif name in _RNG:
            state[name] = tensor
        else:
            raise _bad(path, f"it holds a foreign tensor {name!r:.80}")
    for name in _RNG:
        if name not in state:
            raise _bad(path, f"it lacks the tensor {name!r}")
    state["optimizer"] = {"state": moments, "param_groups": meta["param_groups"]}
    return state


def conform(path: Path, saved: Any, live: Any, where: str = "") -> Any:
    """``saved`` (from a checkpoint) checked against ``live``, the value it is about to replace.

    Tensors must have live's shape and dtype; objects live's keys (an object keyed by
    integers, Adam's moments per parameter, may hold a subset: a parameter that never had a
    gradient has none); lists live's length; scalars live's type, numbers finite. Returns
    ``saved`` with live's container types (JSON has no tuples). A mismatch is an InputError
    naming the file and the entry.
    """
    def bad(what: str) -> InputError:
        return InputError(f"checkpoint {path}: {where or 'its state'} {what}; it does not fit this run")

    if isinstance(live, Tensor):
        if not isinstance(saved, Tensor):
            raise bad("is not a tensor")
        if saved.shape != live.shape or saved.dtype != live.dtype:
            raise bad(f"is {saved.dtype} {tuple(saved.shape)}, expected {live.dtype} {tuple(live.shape)}")
        return saved
    if isinstance(live, dict):
        if not isinstance(saved, dict):
            raise bad("is not an object")
        subset = bool(live) and all(isinstance(k, int) for k in live)
        if set(saved) - set(live) or (not subset and set(live) - set(saved)):
            odd = sorted(map(str, set(saved) ^ set(live)))
            raise bad(f"has a foreign or missing key {odd[0]!r:.80}")
        return {k: conform(path, saved[k], live[k], f"{where}/{k}".lstrip("/")) for k in live if k in saved}
    if isinstance(live, list | tuple):
        if not isinstance(saved, list | tuple) or len(saved) != len(live):
            raise bad(f"is not a list of {len(live)}")
        items = enumerate(zip(saved, live, strict=True))
        return type(live)(conform(path, s, v, f"{where}[{i}]") for i, (s, v) in items)
    if live is None or isinstance(live, bool | str):
        if type(saved) is not type(live):
            raise bad(f"is {saved!r:.80}, expected a {type(live).__name__}")
        return saved
    if is_number(live):
        if not is_number(saved) or not math.isfinite(saved) or (isinstance(live, int) and not isinstance(saved, int)):
            raise bad(f"is {saved!r:.80}, expected a finite {type(live).__name__}")
        return type(live)(saved)
    raise bad(f"has a value of type {type(live).__name__} that a checkpoint cannot restore")
