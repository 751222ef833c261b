"""A hostile user of train, eval and render: checkpoints, run folders, configs, camera paths, option values.

Every case must end with exit code 2 and exactly one ``error:`` line on stderr,
no traceback, no file changed anywhere under the test's folder (unless the case
says what may change), and no code from a checkpoint run. Runs are forged with
the package's own writers (a run folder claimed as ``train`` claims it, a
checkpoint of a freshly built model) rather than trained, so that the file stays
fast; the pipeline tests train real ones.

``HOSTILE`` counts the hostile inputs tried (printed at the end with ``-s``).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import eager_kernels, orbit_c2w, write_tiny_blender_scene
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiknerf.cli import COMMANDS, option_fields
from spiknerf.cli import main as cli
from spiknerf.errors import InputError
from spiknerf.nerf import checkpoint as checkpoint_module
from spiknerf.nerf.camera_path import MAX_SIDE, from_json
from spiknerf.nerf.checkpoint import MAX_BYTES, load_checkpoint, save_checkpoint
from spiknerf.nerf.data import load_scene
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.run import read_config
from spiknerf.nerf.run_folder import LOCK, MARKER, RUN_CONFIG, check_new_run, hold_run
from spiknerf.nerf.step import Phase
from spiknerf.nerf.student import StudentSettings
from spiknerf.nerf.train import trim_history
from spiknerf.nerf.train_config import TrainConfig, config_json

HOSTILE: Counter[str] = Counter()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@pytest.fixture(autouse=True)
def _eager_kernels(monkeypatch):
    eager_kernels(monkeypatch)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_tiny_blender_scene(tmp_path_factory.mktemp("scene") / "tiny")


def forge_run(path: Path, scene: Path, preset: str = "mlp", step: int = 1, steps: int = 2) -> Path:
    """A teacher run at ``step`` of ``steps``, made as train makes one, but with an untrained model."""
    cfg = TrainConfig(data=str(scene), out=str(path), preset=preset, model="teacher", steps=steps, device="cpu",
                      video_frames=0, eval_every=5, eval_views=1)
    loaded = load_scene(scene)
    with hold_run(path, "train", create=True):
        (path / RUN_CONFIG).write_text(json.dumps(config_json(cfg)))
        torch.manual_seed(0)
        model, sampler = PRESETS[preset].teacher(loaded), PRESETS[preset].sampler(loaded, torch.device("cpu"))
        phase = Phase("teacher", model, sampler, PRESETS[preset], steps, 0)
        phase.step, phase.train_seconds = step, 1.0
        save_checkpoint(path, "teacher", step, phase.state(), final=step == steps)
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, scene) -> Path:
    return forge_run(tmp_path_factory.mktemp("pristine") / "run", scene)


@pytest.fixture
def run(pristine, tmp_path) -> Path:
    """A fresh copy of a forged run (step 1 of 2) under this test's folder."""
    out = tmp_path / "run"
    out.mkdir()
    for p in pristine.rglob("*"):
        target = out / p.relative_to(pristine)
        target.mkdir(exist_ok=True) if p.is_dir() else target.write_bytes(p.read_bytes())
    return out


def checkpoint_of(run: Path) -> Path:
    return run / "checkpoints" / "teacher-0000001.safetensors"


def tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` and a digest of its content (links by their target, big files by size and
    time). TensorBoard's folder is left out: a resume opens a new event file there before it reads a checkpoint."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if "tb" in p.relative_to(folder).parts:
            continue
        if p.is_symlink():
            out[str(p)] = "-> " + os.readlink(p)
        elif p.is_file() and p.stat().st_size > 1 << 24:
            out[str(p)] = f"{p.stat().st_size} bytes at {p.stat().st_mtime_ns}"
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir" if p.is_dir() else "special"
    return out


def refused(args: list[str], capsys, where: Path, *words: str, kind: str) -> str:
    """Run the CLI in-process: exit 2, one ``error:`` line holding ``words``, no traceback, ``where`` unchanged."""
    HOSTILE[kind] += 1
    before = tree(where)
    capsys.readouterr()
    code = cli(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert tree(where) == before
    return errors[0]


# --------------------------------------------------------------------------------------------- checkpoints

class RunsAShell:
    """Unpickling this runs ``touch MARKER``: what the old torch.load(weights_only=False) did with a stranger's file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_pickle(path: Path, marker: Path) -> None:
    """A file torch.save makes of a state that holds the payload (torch.save pickles it by ``__reduce__``)."""
    torch.save({"model": RunsAShell(marker), "phase": "teacher"}, path)


def test_the_malicious_pickle_is_real(tmp_path):
    """The file the next test plants does run its command when unpickled as before."""
    marker = tmp_path / "ran"
    write_pickle(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


COMMANDS_THAT_LOAD = {
    "eval": lambda run, scene, tmp: ["eval", "--run", str(run), "--device", "cpu"],
    "render": lambda run, scene, tmp: ["render", "--run", str(run), "--model", "teacher", "--device", "cpu"],
    "render-out": lambda run, scene, tmp: ["render", "--run", str(run), "--model", "teacher", "--out",
                                           str(tmp / "v.mp4")],
    "resume": lambda run, scene, tmp: ["train", "--out", str(run), "--resume"],
    "teacher": lambda run, scene, tmp: ["train", "--data", str(scene), "--out", str(tmp / "student"), "--preset",
                                        "mlp", "--model", "student", "--teacher", str(run), "--device", "cpu"],
}


@pytest.mark.parametrize("name", ["teacher-0000001.safetensors", "teacher-final.pt"])
@pytest.mark.parametrize("command", sorted(COMMANDS_THAT_LOAD))
def test_a_pickle_in_a_checkpoints_place_never_runs(run, scene, tmp_path, capsys, command, name):
    marker = tmp_path / "ran"
    for old in (run / "checkpoints").iterdir():
        old.unlink()
    write_pickle(run / "checkpoints" / name, marker)
    args = COMMANDS_THAT_LOAD[command](run, scene, tmp_path)
    # the student run of --teacher is new, and claimed before the teacher is read: it stays, empty of any run
    where = run if command == "teacher" else tmp_path
    line = refused(args, capsys, where, name, kind="pickle checkpoint")
    assert "earlier spiknerf" in line if name.endswith(".pt") else "not a safetensors file" in line
    assert not marker.exists()
    if command == "teacher":
        assert not (tmp_path / "student" / RUN_CONFIG).exists()


def _rewrite(path: Path, tensors=None, metadata=None) -> None:
    """Rewrite a checkpoint with changed tensors and/or metadata (a dict, JSON-encoded, or raw strings)."""
    old_tensors = safetensors.torch.load_file(path)
    with safetensors.safe_open(path, "pt") as f:
        old_meta = f.metadata()
    meta = old_meta if metadata is None else metadata
    safetensors.torch.save_file(old_tensors if tensors is None else tensors(old_tensors), path, meta)


def _meta(path: Path) -> dict:
    with safetensors.safe_open(path, "pt") as f:
        return json.loads(f.metadata()["spiknerf"])


def _with_meta(**changes):
    def change(path: Path) -> dict[str, str]:
        return {"spiknerf": json.dumps(_meta(path) | changes)}
    return change


BAD_FILES = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "random bytes": lambda p: p.write_bytes(os.urandom(4096)),
    "huge header length": lambda p: p.write_bytes((1 << 60).to_bytes(8, "little") + b"{}"),
    "header not JSON": lambda p: p.write_bytes((8).to_bytes(8, "little") + b"not json"),
    "a torch zip": lambda p: torch.save({"model": {}}, p),
    "over the size bound": lambda p: os.truncate(p, MAX_BYTES + 1),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
    "a fifo": lambda p: (p.unlink(), os.mkfifo(p)),
    "foreign tensor": lambda p: _rewrite(p, tensors=lambda t: t | {"extra/x": torch.zeros(2)}),
    "missing rng": lambda p: _rewrite(p, tensors=lambda t: {k: v for k, v in t.items() if k != "torch_rng"}),
    "wrong shape": lambda p: _rewrite(p, tensors=lambda t: t | {min(k for k in t if k.startswith("model/")):
                                                                 torch.zeros(3, 3)}),
    "wrong dtype": lambda p: _rewrite(p, tensors=lambda t: t | {k: v.double() for k, v in t.items()
                                                                 if k.startswith("model/")}),
    "missing model tensor": lambda p: _rewrite(p, tensors=lambda t: {k: v for k, v in t.items()
                                                                       if not k.endswith("bias")}),
    "no metadata": lambda p: _rewrite(p, metadata={}),
    "foreign metadata": lambda p: _rewrite(p, metadata={"spiknerf": "{}", "format": "pt"}),
    "metadata not JSON": lambda p: _rewrite(p, metadata={"spiknerf": "{"}),
    "metadata NaN": lambda p: _rewrite(p, metadata=_with_meta(train_seconds=float("nan"))(p)),
    "metadata wrong phase": lambda p: _rewrite(p, metadata=_with_meta(phase="student")(p)),
    "metadata wrong step": lambda p: _rewrite(p, metadata=_with_meta(step=7)(p)),
    "metadata step as text": lambda p: _rewrite(p, metadata=_with_meta(step="1")(p)),
    "metadata zero seconds": lambda p: _rewrite(p, metadata=_with_meta(train_seconds=0)(p)),
    "metadata foreign key": lambda p: _rewrite(p, metadata=_with_meta(command="rm -rf /")(p)),
    "metadata other version": lambda p: _rewrite(p, metadata=_with_meta(version=2)(p)),
    "metadata deep": lambda p: _rewrite(p, metadata={"spiknerf": "[" * 100000 + "]" * 100000}),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_checkpoint_that_is_not_what_train_writes_is_one_error_naming_it(run, tmp_path, capsys, case):
    path = checkpoint_of(run)
    BAD_FILES[case](path)
    refused(["eval", "--run", str(run), "--device", "cpu"], capsys, tmp_path, str(path), kind="bad checkpoint file")


def _resume_with(run: Path, change) -> None:
    path = checkpoint_of(run)
    _rewrite(path, **change(path))


BAD_STATES = {  # a well-formed file whose state does not fit the run it resumes
    "lr as text": lambda p: {"metadata": _with_meta(param_groups=[
        g | {"lr": "fast"} for g in _meta(p)["param_groups"]])(p)},
    "three betas": lambda p: {"metadata": _with_meta(param_groups=[
        g | {"betas": [0.9, 0.99, 0.999]} for g in _meta(p)["param_groups"]])(p)},
    "foreign parameter ids": lambda p: {"metadata": _with_meta(param_groups=[
        g | {"params": [0] * len(g["params"])} for g in _meta(p)["param_groups"]])(p)},
    "capturable on the CPU": lambda p: {"metadata": _with_meta(param_groups=[
        g | {"capturable": True} for g in _meta(p)["param_groups"]])(p)},
    "another base rate": lambda p: {"metadata": _with_meta(scheduler=_meta(p)["scheduler"] | {
        "base_lrs": [2 * lr for lr in _meta(p)["scheduler"]["base_lrs"]]})(p)},
    "an extra group key": lambda p: {"metadata": _with_meta(param_groups=[
        g | {"hook": "os.system"} for g in _meta(p)["param_groups"]])(p)},
    "scheduler key": lambda p: {"metadata": _with_meta(scheduler=_meta(p)["scheduler"] | {"lr_lambdas": ["x", 1]})(p)},
    "moment of a wrong shape": lambda p: {"tensors": lambda t: t | {
        "optimizer/0/step": torch.zeros(()), "optimizer/0/exp_avg": torch.zeros(5),
        "optimizer/0/exp_avg_sq": torch.zeros(5)}},
    "moment of no parameter": lambda p: {"tensors": lambda t: t | {"optimizer/999/exp_avg": torch.zeros(5)}},
    "short generator state": lambda p: {"tensors": lambda t: t | {"generator": torch.zeros(7, dtype=torch.uint8)}},
    "float rng state": lambda p: {"tensors": lambda t: t | {"torch_rng": t["torch_rng"].float()}},
}


@pytest.mark.parametrize("case", sorted(BAD_STATES))
def test_a_resumed_state_is_checked_against_what_it_restores(run, tmp_path, capsys, case):
    _resume_with(run, BAD_STATES[case])
    refused(["train", "--out", str(run), "--resume"], capsys, tmp_path, str(checkpoint_of(run)),
            kind="checkpoint state that does not fit")


@FAST
@given(changes=st.dictionaries(st.sampled_from(["format", "version", "phase", "step", "train_seconds", "rays",
                                                "samples", "samples_per_ray", "done", "param_groups",
                                                "scheduler", "extra"]), JSON, min_size=1, max_size=3))
def test_any_checkpoint_metadata_is_read_or_refused_never_crashes(pristine, tmp_path_factory, changes):
    HOSTILE["hypothesis checkpoint metadata"] += 1
    path = tmp_path_factory.mktemp("meta") / "teacher-0000001.safetensors"
    path.write_bytes(checkpoint_of(pristine).read_bytes())
    _rewrite(path, metadata=_with_meta(**changes)(path))
    try:
        state = load_checkpoint(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert state["step"] == 1 and state["train_seconds"] > 0 and isinstance(state["done"], bool)
    assert all(math.isfinite(state[k]) for k in ("train_seconds", "samples_per_ray"))


@FAST
@given(text=st.text(max_size=200))
def test_any_checkpoint_metadata_text_is_read_or_refused(pristine, tmp_path_factory, text):
    HOSTILE["hypothesis checkpoint metadata"] += 1
    path = tmp_path_factory.mktemp("meta") / "teacher-0000001.safetensors"
    path.write_bytes(checkpoint_of(pristine).read_bytes())
    _rewrite(path, metadata={"spiknerf": text})
    with pytest.raises(InputError, match="checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_round_trips_bit_for_bit(pristine):
    """Everything resume restores comes back exactly: tensors, counters, groups, schedule, random states."""
    loaded = load_scene(json.loads((pristine / RUN_CONFIG).read_text())["data"])
    torch.manual_seed(3)
    mlp = PRESETS["mlp"]
    phase = Phase("teacher", mlp.teacher(loaded), mlp.sampler(loaded, torch.device("cpu")), mlp, 5, 0)
    for p in phase.model.parameters():  # moments for every parameter
        p.grad = torch.randn_like(p)
    phase.optimizer.step()
    phase.scheduler.step()
    phase.step, phase.train_seconds, phase.samples_per_ray = 1, 0.1 + 0.2, 1 / 3
    torch.rand(3, generator=phase.generator)
    saved = phase.state()
    path = save_checkpoint(pristine.parent / "rt", "teacher", 1, saved)
    state = load_checkpoint(path)
    fresh = Phase("teacher", mlp.teacher(loaded), mlp.sampler(loaded, torch.device("cpu")), mlp, 5, 0)
    fresh.load(path, state)
    again = fresh.state()
    for part in ("model", "sampler"):
        assert all(torch.equal(saved[part][k], again[part][k]) for k in saved[part])
    for i, moments in saved["optimizer"]["state"].items():
        assert all(torch.equal(v, again["optimizer"]["state"][i][k]) for k, v in moments.items())
    assert again["optimizer"]["param_groups"] == saved["optimizer"]["param_groups"]
    assert again["scheduler"] == saved["scheduler"]
    assert torch.equal(again["generator"], saved["generator"]) and torch.equal(again["torch_rng"], saved["torch_rng"])
    assert (again["train_seconds"], again["samples_per_ray"]) == (saved["train_seconds"], saved["samples_per_ray"])


def test_a_full_disk_during_a_checkpoint_keeps_the_last_one_and_leaves_no_temporary(run, tmp_path, capsys,
                                                                                    monkeypatch):
    good = checkpoint_of(run).read_bytes()

    def half_then_full(path: Path, data: bytes) -> None:
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module, "_write_file", half_then_full)
    HOSTILE["full disk"] += 1
    capsys.readouterr()
    assert cli(["train", "--out", str(run), "--resume"]) == 2  # trains step 2, then cannot write its checkpoint
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "teacher-" in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["teacher-0000001.safetensors"]
    assert checkpoint_of(run).read_bytes() == good
    assert not [p for p in run.rglob("*.tmp*")]


def test_a_writer_killed_mid_checkpoint_leaves_a_temporary_the_next_holder_removes(run, tmp_path, capsys):
    """SIGKILL while the bytes are being written: the previous checkpoint stands, the temporary goes at next start."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from spiknerf.nerf import checkpoint
        def die(path, data):
            path.write_bytes(data[:1000])
            os.kill(os.getpid(), signal.SIGKILL)
        checkpoint._write_file = die
        state = checkpoint.load_checkpoint(Path({str(checkpoint_of(run))!r}))
        state["step"] = 2
        checkpoint.save_checkpoint(Path({str(run)!r}), "teacher", 2, state)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = [p for p in (run / "checkpoints").iterdir() if ".tmp" in p.name]
    assert len(left) == 1
    HOSTILE["killed writer"] += 1
    assert cli(["eval", "--run", str(run), "--split", "nosuch"]) == 2  # takes the lock, then refuses the split
    assert "removed" in capsys.readouterr().err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["teacher-0000001.safetensors"]


# --------------------------------------------------------------------------------------------- run folders

def test_train_refuses_a_folder_of_someone_elses_files_and_changes_nothing(scene, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "renders").mkdir(parents=True)
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "metrics.json").write_text('{"my": "results"}')
    (out / "history.jsonl").write_text("my diary\n")
    (out / "renders" / "holiday.mp4").write_bytes(b"my video")
    refused(["train", "--data", str(scene), "--out", str(out)], capsys, tmp_path, "did not write",
            kind="foreign --out folder")
    assert not (out / MARKER).exists() and not (out / LOCK).exists()


def readonly_folder(tmp_path: Path) -> Path:
    """A folder nothing can be created in, as this user (root ignores permissions: /sys refuses it too)."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o555)
        return folder
    probe = Path("/sys/spiknerf-probe")
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys")
    probe.rmdir()
    pytest.skip("no read-only folder available")


@pytest.mark.parametrize("case", ["a file", "under a file", "read-only parent", "dot-dot into a file"])
def test_train_refuses_an_out_it_cannot_make_a_run_of_before_any_work(scene, tmp_path, capsys, case):
    (tmp_path / "file").write_text("keep me")
    out = {"a file": tmp_path / "file", "under a file": tmp_path / "file" / "run",
           "read-only parent": readonly_folder(tmp_path) / "run",
           "dot-dot into a file": tmp_path / "x" / ".." / "file"}[case]
    refused(["train", "--data", str(scene), "--out", str(out)], capsys, tmp_path, str(out.resolve()),
            kind="unusable --out")


def test_a_marked_run_is_continued_only_with_resume(run, scene, tmp_path, capsys):
    refused(["train", "--data", str(scene), "--out", str(run)], capsys, tmp_path, "--resume", kind="run reused")


def test_a_folder_whose_run_failed_to_start_can_be_used_again(scene, tmp_path, capsys):
    out = tmp_path / "new"
    refused(["train", "--data", str(tmp_path / "typo"), "--out", str(out)], capsys, tmp_path / "typo", "typo",
            kind="missing scene")
    assert (out / MARKER).exists() and not (out / RUN_CONFIG).exists()  # claimed, but it holds no run
    check_new_run(out)  # so the same command, with the scene fixed, may take it


def test_a_resume_drops_the_history_after_its_checkpoint_and_lines_a_kill_tore(tmp_path):
    history = tmp_path / "history.jsonl"
    lines = [{"phase": "teacher", "step": s, "test_psnr": 20.0} for s in (5, 10)] + [
        {"phase": "student", "step": 5, "test_psnr": 19.0}]
    history.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"phase": "teacher", "st')
    trim_history(history, "teacher", 6)
    assert [json.loads(line)["step"] for line in history.read_text().splitlines()] == [5, 5]


@pytest.fixture
def holder(run):
    """Another process holding the run's lock, as a train does for its whole run."""
    script = ("import sys, time; from pathlib import Path; from spiknerf.nerf.run_folder import hold_run\n"
              f"with hold_run(Path({str(run)!r}), 'train'):\n    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("command", ["resume", "eval", "render", "fresh train"])
def test_a_held_run_refuses_a_second_writer_naming_the_holder(run, scene, tmp_path, capsys, holder, command):
    args = {"resume": ["train", "--out", str(run), "--resume"], "eval": ["eval", "--run", str(run)],
            "render": ["render", "--run", str(run), "--model", "teacher"],
            "fresh train": ["train", "--data", str(scene), "--out", str(tmp_path / "new")]}[command]
    if command == "fresh train":  # a new folder another train has just claimed
        (tmp_path / "new").mkdir()
        os.rename(run / LOCK, tmp_path / "new" / LOCK)  # (the holder's open lock file moves with it)
        run = tmp_path / "new"
    refused(args, capsys, tmp_path, f"pid {holder.pid}", "spiknerf train", kind="second writer")


def test_the_lock_goes_with_its_holder_however_it_ends(run, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with hold_run(run, "eval"):
        pass


@pytest.mark.parametrize("link", ["checkpoints", "metrics.json", "cache"])
def test_a_run_folder_with_a_symbolic_link_is_refused(run, tmp_path, capsys, link):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.json").write_text("{}")
    if link == "checkpoints":
        for p in (run / "checkpoints").iterdir():
            (elsewhere / p.name).write_bytes(p.read_bytes())
        for p in (run / "checkpoints").iterdir():
            p.unlink()
        (run / "checkpoints").rmdir()
    (run / link).symlink_to(elsewhere / "precious.json" if link == "metrics.json" else elsewhere)
    refused(["eval", "--run", str(run)], capsys, tmp_path, "symbolic link", kind="link in run folder")


@pytest.mark.parametrize("what", ["no marker", "not a folder", "absent"])
def test_eval_and_render_open_only_run_folders(run, tmp_path, capsys, what):
    if what == "no marker":
        (run / MARKER).unlink()
    target = tmp_path / "file" if what == "not a folder" else run if what == "no marker" else tmp_path / "none"
    (tmp_path / "file").write_text("x")
    for args in (["eval", "--run", str(target)], ["render", "--run", str(target), "--out", str(tmp_path / "v.mp4")]):
        refused(args, capsys, tmp_path, str(target), kind="not a run folder")


# --------------------------------------------------------------------------------------------- config.json

BAD_CONFIGS = {  # merged into the saved config; "student" into its student
    "not an object": [1, 2],
    "unknown key": {"preset": "mlp", "hook": "x"},
    "wrong type": {"student": {"T": "2"}},
    "bool for int": {"student": {"T": True}},
    "float for int": {"steps": 2.5},
    "bad choice": {"preset": "huge"},
    "out of range": {"student": {"T": 0}},
    "huge T": {"student": {"T": 10**9}},
    "text threshold": {"student": {"threshold": "0.3"}},
    "unknown version": {"version": 99},
    "student not an object": {"student": "ternary"},
}


def changed(saved: dict, change: dict) -> dict:
    """``saved`` with the keys of ``change``, and the keys of its ``student`` in the saved student."""
    return saved | change | ({"student": saved["student"] | change["student"]}
                             if isinstance(change.get("student"), dict) else {})


@pytest.mark.parametrize("command", ["eval", "resume", "render"])
@pytest.mark.parametrize("case", [*sorted(BAD_CONFIGS), "NaN", "too large", "too deep", "not JSON", "a folder"])
def test_a_bad_run_config_is_one_error_naming_it(run, tmp_path, capsys, case, command):
    path = run / RUN_CONFIG
    saved = json.loads(path.read_text())
    if case in BAD_CONFIGS:
        bad = BAD_CONFIGS[case]
        path.write_text(json.dumps(bad if isinstance(bad, list) else changed(saved, bad)))
    elif case == "NaN":
        path.write_text(json.dumps(changed(saved, {"student": {"threshold": float("nan")}})))
    elif case == "too large":
        path.write_text(json.dumps(saved | {"data": "x" * (2 << 20)}))
    elif case == "too deep":
        path.write_text("[" * 100000 + "]" * 100000)
    elif case == "not JSON":
        path.write_text("{'preset': 'mlp'}")
    else:
        path.unlink()
        path.mkdir()
    args = {"eval": ["eval", "--run", str(run)], "resume": ["train", "--out", str(run), "--resume"],
            "render": ["render", "--run", str(run), "--out", str(tmp_path / "v.mp4")]}[command]
    refused(args, capsys, tmp_path, str(path), kind="bad config.json")


@FAST
@given(values=JSON)
def test_any_json_is_a_valid_run_config_or_refused(pristine, tmp_path_factory, values):
    HOSTILE["hypothesis config.json"] += 1
    _config_read_or_refused(pristine, tmp_path_factory, values)


@FAST
@given(key=st.sampled_from([f.name for f in dataclasses.fields(TrainConfig)] + ["extra", "version"]
                           + [f"student.{f.name}" for f in dataclasses.fields(StudentSettings)]), value=JSON)
def test_any_changed_config_value_is_checked(pristine, tmp_path_factory, key, value):
    HOSTILE["hypothesis config.json"] += 1
    saved = json.loads((pristine / RUN_CONFIG).read_text())
    name = key.removeprefix("student.")
    change = {"student": {name: value}} if name != key else {key: value}
    _config_read_or_refused(pristine, tmp_path_factory, changed(saved, change))


def _config_read_or_refused(pristine: Path, tmp_path_factory, values) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    (folder / MARKER).write_text("{}")
    (folder / RUN_CONFIG).write_text(json.dumps(values))
    try:
        config = read_config(folder)
    except InputError as exc:
        assert RUN_CONFIG in str(exc)
        return
    config.validate()  # what was accepted is a config train itself accepts
    values = dataclasses.asdict(config)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in [*values.values(), *values["student"].values()])


BAD_METRICS = {"a list": [], "a block of text": {"teacher": "fast"}, "energy as text": {
    "teacher": {"energy_pj_per_ray": "1", "energy_pj_per_sample": 1.0}}, "zero energy": {
    "teacher": {"energy_pj_per_ray": 0, "energy_pj_per_sample": 1.0}}}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_eval_refuses_a_metrics_file_it_did_not_write_and_keeps_it(run, tmp_path, capsys, case):
    (run / "metrics.json").write_text(json.dumps(BAD_METRICS[case]))
    refused(["eval", "--run", str(run), "--model", "student"], capsys, tmp_path, "metrics.json",
            kind="bad metrics.json")


# --------------------------------------------------------------------------------------------- render

@pytest.fixture
def no_rendering(monkeypatch):
    """Fail the test if a single ray is rendered: these refusals must come before the long work."""
    import spiknerf.nerf.render_video as render_video

    def rendered(*args, **kwargs):
        raise AssertionError("rendered before refusing")

    monkeypatch.setattr(render_video, "render_chunks", rendered)


@pytest.mark.parametrize("case", ["a folder", "no suffix", "avi", "read-only folder", "under a file", "mp4 folder"])
def test_render_refuses_an_output_it_cannot_write_before_rendering(run, tmp_path, capsys, no_rendering, case):
    (tmp_path / "file").write_text("x")
    (tmp_path / "clip.mp4").mkdir()
    out = {"a folder": tmp_path, "no suffix": tmp_path / "video", "avi": tmp_path / "video.avi",
           "read-only folder": readonly_folder(tmp_path) / "v.mp4", "under a file": tmp_path / "file" / "v.mp4",
           "mp4 folder": tmp_path / "clip.mp4"}[case]
    refused(["render", "--run", str(run), "--model", "teacher", "--frames", "2", "--out", str(out)], capsys,
            tmp_path, str(out), kind="unwritable render --out")


def _cameras(frames: object) -> str:
    return json.dumps(frames)


GOOD_CAMERA = {"c2w": orbit_c2w(1)[0].tolist(), "width": 8, "height": 6}
BAD_CAMERAS = {
    "not JSON": "[{",
    "empty": _cameras([]),
    "text width": _cameras([GOOD_CAMERA | {"width": "wide"}]),
    "zero width": _cameras([GOOD_CAMERA | {"width": 0}]),
    "negative height": _cameras([GOOD_CAMERA | {"height": -4}]),
    "huge frame": _cameras([GOOD_CAMERA | {"width": MAX_SIDE * 4, "height": MAX_SIDE * 4}]),
    "fractional width": _cameras([GOOD_CAMERA | {"width": 7.5}]),
    "zero focal": _cameras([GOOD_CAMERA | {"fx": 0}]),
    "text focal": _cameras([GOOD_CAMERA | {"fy": "f"}]),
    "matrix of text": _cameras([GOOD_CAMERA | {"c2w": [["a"] * 4] * 4}]),
    "ragged matrix": _cameras([GOOD_CAMERA | {"c2w": [[1, 0, 0, 0], [0, 1, 0]]}]),
    "3x3 matrix": _cameras([GOOD_CAMERA | {"c2w": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}]),
    "NaN in matrix": '[{"c2w": [[NaN, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]',
    "two sizes": _cameras([GOOD_CAMERA, GOOD_CAMERA | {"width": 10}]),
    "a camera of text": _cameras(["camera"]),
    "too deep": "[" * 100000 + "]" * 100000,
}


@pytest.mark.parametrize("case", sorted(BAD_CAMERAS))
def test_a_bad_camera_path_is_one_error_naming_it_before_rendering(run, tmp_path, capsys, no_rendering, case):
    path = tmp_path / "cams.json"
    path.write_text(BAD_CAMERAS[case])
    refused(["render", "--run", str(run), "--model", "teacher", "--path", str(path), "--out",
             str(tmp_path / "v.mp4")], capsys, tmp_path, str(path), kind="bad camera path")


@pytest.mark.parametrize("args", [["--frames", "0"], ["--frames", "100000000"], ["--fps", "0"], ["--path", "wiggle"],
                                  ["--path", "/nonexistent/cams.json"], ["--frames", "two"]])
def test_bad_render_options_are_refused_before_rendering(run, tmp_path, capsys, no_rendering, args):
    refused(["render", "--run", str(run), "--model", "teacher", "--out", str(tmp_path / "v.mp4"), *args], capsys,
            tmp_path, kind="bad render option")


@FAST
@given(data=JSON)
def test_any_camera_json_gives_cameras_or_an_error(tmp_path_factory, data):
    HOSTILE["hypothesis camera path"] += 1
    _cameras_or_error(tmp_path_factory, data)


@FAST
@given(changes=st.dictionaries(st.sampled_from(["c2w", "width", "height", "fx", "fy", "cx", "cy"]), JSON,
                               max_size=3))
def test_any_changed_camera_is_checked(tmp_path_factory, changes):
    HOSTILE["hypothesis camera path"] += 1
    _cameras_or_error(tmp_path_factory, {"frames": [GOOD_CAMERA | changes]})


def _cameras_or_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("cams") / "cams.json"
    path.write_text(json.dumps(data))
    try:
        cams = from_json(path, torch.tensor([20.0, 20.0, 8.0, 6.0]), 16, 12)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert 1 <= cams.width <= MAX_SIDE and 1 <= cams.height <= MAX_SIDE
    assert torch.isfinite(cams.c2w).all() and torch.isfinite(cams.intrinsics).all()
    assert (cams.intrinsics[:, :2] > 0).all()


# --------------------------------------------------------------------------------------------- option values

FLOAT_OPTIONS = [(path, f.name) for path, (module, cls) in COMMANDS.items()
                 for f, tp, _ in option_fields(getattr(__import__(module, fromlist=[cls]), cls)) if tp is float]


def test_the_float_options_are_found():
    assert {("eval", "e_mac"), ("train", "threshold")} <= {(p[0], n) for p, n in FLOAT_OPTIONS}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize(("command", "name"), FLOAT_OPTIONS)
def test_non_finite_float_options_are_refused_everywhere(tmp_path, capsys, command, name, value):
    option = "--" + name.replace("_", "-")
    refused([*command, option, value], capsys, tmp_path, option, kind="non-finite option")


@pytest.mark.parametrize("args", [["--e-mac", "0"], ["--e-ac", "-1"]])
def test_eval_refuses_energies_that_are_not_positive(run, tmp_path, capsys, args):
    refused(["eval", "--run", str(run), *args], capsys, tmp_path, args[0], kind="bad eval option")


def test_zz_report_the_count():
    """Runs last in the file: how many hostile inputs the tests above tried."""
    total = sum(HOSTILE.values())
    print(f"\nhostile inputs tried: {total} ({', '.join(f'{k}: {v}' for k, v in sorted(HOSTILE.items()))})")
