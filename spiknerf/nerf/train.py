"""``spiknerf train``: the ANN teacher, then the distilled spiking student, then evaluation and a video.

With no arguments it trains on the built-in scene on the CPU. A run directory
holds ``config.json``, ``checkpoints/``, ``tb/`` (TensorBoard), ``history.jsonl``
(test PSNR against training seconds), ``metrics.json`` and ``renders/``.

A phase (one model) trains in a loop of small parts, each with one job:
:func:`~spiknerf.nerf.step.train_step` (one optimisation step, in
:mod:`spiknerf.nerf.step` with the phase's state), :meth:`Phase.advance` (its
counters), :class:`ProgressLog` (progress bar and TensorBoard scalars),
:func:`evaluate_on_test_views` and :func:`append_history` (the periodic test
PSNR) and :class:`Checkpointer` (when to save). :func:`train_phase` strings
them together; :func:`run_phase` builds, resumes and trains one model, and
:func:`train_run` the whole run.

Under ``torchrun`` (or with ``--nproc N``) the same loop runs in every process
of the job, data-parallel (:mod:`spiknerf.distributed`): each renders its share
of one global batch, DDP averages the gradients, the occupancy grid stays the
same everywhere, and rank 0 alone writes the run folder (docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from spiknerf import distributed, threads
from spiknerf.atomic import write_atomic, write_json_atomic
from spiknerf.errors import InputError
from spiknerf.nerf.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from spiknerf.nerf.data import Scene, default_scene_path, load_scene
from spiknerf.nerf.estimate import announce_estimate
from spiknerf.nerf.evaluate import evaluate_run, format_table, render_split
from spiknerf.nerf.metrics import psnr
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.render import Image
from spiknerf.nerf.render_video import VIDEO_RAYS, render_video
from spiknerf.nerf.run import choose_device, default_run_dir, eval_background, read_config
from spiknerf.nerf.run_folder import RUN_CONFIG, check_new_run, hold_run
from spiknerf.nerf.step import (
    Distillation,
    Phase,
    StepResult,
    Teacher,
    build_phase,
    load_teacher,
    phase_batcher,
    step_autocast,
    train_step,
)
from spiknerf.nerf.train_config import TrainConfig, config_json
from spiknerf.neurons import count_ops

if TYPE_CHECKING:
    from spiknerf.viewer.training import TrainingViewer

HISTORY = "history.jsonl"
MAX_HISTORY_BYTES = 64 << 20
SCALARS_EVERY = 25  # steps between TensorBoard scalars
SPIKE_STATS_SAMPLES = 4096  # sample points of the last batch that firing statistics are counted on
# a phase's time estimate is printed from the mean of the ESTIMATE_STEPS steps that follow its first
# ESTIMATE_AFTER (which compile the kernels and warm the caches)
ESTIMATE_AFTER, ESTIMATE_STEPS = 3, 10

# what sees the model after each step (the web viewer): (phase, step, model, sampler)
Watcher = Callable[[str, int, nn.Module, nn.Module], None]


class ProgressLog:
    """How a phase's training shows: a progress bar (rays/s, loss, train PSNR) on stderr, and TensorBoard
    scalars every ``SCALARS_EVERY`` steps and at the last; nothing without a ``writer`` (ranks other than 0)."""

    def __init__(self, phase: Phase, writer: SummaryWriter | None) -> None:
        self.writer = writer
        self.bar = tqdm(total=phase.steps, initial=phase.step, desc=phase.name, dynamic_ncols=True, file=sys.stderr,
                        disable=writer is None)
        self.seconds: list[float] = []  # of this process's steps, for the time estimate

    def estimate(self, phase: Phase) -> None:
        """Once, early: the phase's remaining time, measured on its own steps on this machine."""
        per_step = sum(self.seconds[ESTIMATE_AFTER:]) / ESTIMATE_STEPS
        left = per_step * (phase.steps - phase.step)
        self.bar.write(f"{phase.name}: about {left / 60:.1f} min of training left ({phase.steps - phase.step} steps "
                       f"at {1000 * per_step:.0f} ms, the mean of steps {phase.step - ESTIMATE_STEPS + 1} to "
                       f"{phase.step})")

    def step(self, phase: Phase, result: StepResult) -> None:
        if self.writer is None:
            return
        rays_per_second = result.rays / result.seconds
        self.seconds.append(result.seconds)
        if len(self.seconds) == ESTIMATE_AFTER + ESTIMATE_STEPS and not phase.done:
            self.estimate(phase)
        self.bar.update(1)
        self.bar.set_postfix(rays_s=f"{rays_per_second:.0f}", loss=f"{result.loss:.4f}",
                             psnr=f"{result.train_psnr:.2f}")
        if phase.step % SCALARS_EVERY == 0 or phase.done:
            scalars = {"loss": result.loss, "train_psnr": result.train_psnr,
                       "lr": phase.optimizer.param_groups[0]["lr"], "samples_per_ray": result.samples_per_ray,
                       "occupancy": phase.sampler.occupied_fraction, "rays_per_second": rays_per_second}
            for name, value in scalars.items():
                self.writer.add_scalar(f"{phase.name}/{name}", value, phase.step)

    def note(self, text: str) -> None:
        if self.writer is not None:
            self.bar.write(text)

    def evaluated(self, phase: Phase, test_psnr: float) -> None:
        self.note(f"{phase.name} step {phase.step}: test PSNR {test_psnr:.2f} dB "
                  f"({phase.train_seconds:.0f} s of training)")

    def close(self) -> None:
        self.bar.close()


def log_images(writer: SummaryWriter, tag: str, step: int, gt: Tensor, image: Image, scene: Scene) -> None:
    """TensorBoard image: ground truth | prediction | depth, side by side."""
    h, w = gt.shape[:2]
    depth = image.depth.cpu().reshape(h, w)
    depth = ((depth - scene.near) / (scene.far - scene.near)).clamp(0, 1)[..., None].expand(h, w, 3)
    panel = torch.cat([gt, image.rgb.cpu().reshape(h, w, 3).clamp(0, 1), depth], dim=1)
    writer.add_image(tag, panel, step, dataformats="HWC")


def log_spiking_stats(writer: SummaryWriter, tag: str, step: int, model: nn.Module, points: Tensor,
                      dirs: Tensor) -> None:
    """Firing rates (scalar per layer, histogram per unit) and synaptic operations per sample."""
    if len(points) == 0:
        return
    ops = count_ops(model, (points, dirs))
    for layer, rate in ops.firing_rate.items():
        writer.add_scalar(f"{tag}/firing_rate/{layer}", rate, step)
        writer.add_histogram(f"{tag}/unit_firing_rate/{layer}", ops.unit_firing_rate[layer], step)
    writer.add_scalar(f"{tag}/sops_per_sample", ops.sops_per_sample, step)
    writer.add_scalar(f"{tag}/macs_per_sample", ops.macs_per_sample, step)


def evaluate_on_test_views(phase: Phase, scene: Scene, n_views: int, stride: int, writer: SummaryWriter | None,
                           device: torch.device, last: StepResult) -> float | None:
    """Mean PSNR of ``phase``'s model on every ``stride``-th pixel of the first ``n_views`` test views (a cheap
    check during training; ``eval`` scores every pixel of every view). TensorBoard gets the PSNR, the first
    view's images and, for a student, its firing rates at the sample points of the ``last`` batch.
    In a job the ranks render the views between them; rank 0 scores them, the others return None."""
    test = scene.splits["test"]
    views = range(min(n_views, len(test)))
    background = eval_background(scene)
    phase.model.eval()
    images = render_split(phase.model, phase.sampler, test, background, device, views, stride)
    if writer is None:
        return None
    truths = [test.image(v, background.cpu())[::stride, ::stride] for v in views]
    test_psnr = sum(psnr(image.rgb.cpu().reshape(gt.shape), gt) for image, gt in zip(images, truths, strict=True))
    test_psnr /= len(truths)
    log_images(writer, f"{phase.name}/test_view", phase.step, truths[0], images[0], scene)
    writer.add_scalar(f"{phase.name}/test_psnr", test_psnr, phase.step)
    if phase.name == "student":
        n = SPIKE_STATS_SAMPLES
        log_spiking_stats(writer, phase.name, phase.step, phase.model, last.points[:n], last.directions[:n])
    return test_psnr


def append_history(path: Path, phase: Phase, test_psnr: float, stride: int, eval_seconds: float) -> None:
    """One line of ``history.jsonl``: a test PSNR against the phase's steps, rays and training seconds, the stride
    of the pixel grid it was measured on and the seconds spent evaluating so far in this process."""
    with path.open("a") as f:
        f.write(json.dumps({"phase": phase.name, "step": phase.step, "rays": phase.rays,
                            "train_seconds": round(phase.train_seconds, 3), "test_psnr": round(test_psnr, 4),
                            "eval_stride": stride, "eval_seconds": round(eval_seconds, 3)}) + "\n")


class Checkpointer:
    """Saves a phase's step checkpoints every ``--checkpoint-seconds`` of wall time (and every
    ``--checkpoint-steps`` steps if set), and its final one; in a job only rank 0 does (every rank holds the
    same state)."""

    def __init__(self, run: Path, cfg: TrainConfig) -> None:
        self.run, self.keep = run, cfg.keep_checkpoints
        self.seconds, self.steps = cfg.checkpoint_seconds, cfg.checkpoint_steps
        self.last = time.perf_counter()
        self.writes = distributed.is_first()

    def after_step(self, phase: Phase) -> None:
        due = time.perf_counter() - self.last >= self.seconds
        if due or (self.steps and phase.step % self.steps == 0):
            self.save(phase)

    def save(self, phase: Phase, final: bool = False) -> None:
        if not self.writes:
            return
        save_checkpoint(self.run, phase.name, phase.step, phase.state(), keep=self.keep, final=final)
        self.last = time.perf_counter()


def train_phase(phase: Phase, scene: Scene, cfg: TrainConfig, run: Path, writer: SummaryWriter | None,
                device: torch.device, teacher: nn.Module | None = None, watch: Watcher | None = None) -> None:
    """Train one model to ``phase.steps`` steps, distilled from ``teacher`` if given: each step is logged; every
    ``--eval-every`` steps and at the last the model is scored on test views; checkpoints follow their clock;
    ``watch`` (the web viewer) sees the model after each step. Without a ``writer`` (ranks other than 0 of a job)
    this process trains and renders its share of the test views, and writes nothing."""
    field = distributed.wrap(phase.model)
    batcher = phase_batcher(phase, scene, device)
    kd = None if teacher is None else Distillation(teacher, cfg.kd_sigma, cfg.kd_color)
    amp = step_autocast(device)
    checkpoints = Checkpointer(run, cfg)
    log = ProgressLog(phase, writer)
    test = scene.splits["test"]
    n_views = min(cfg.eval_views, len(test))
    stride = test.grid_stride(n_views, cfg.eval_pixels)
    grid = f"one pixel in {stride} x {stride} of " if stride > 1 else ""
    log.note(f"{phase.name}: test PSNR during training on {grid}{n_views} test view(s); "
             "every pixel of the test split at the end")
    eval_seconds = 0.0
    while not phase.done:
        result = train_step(phase, field, batcher, kd, amp, cfg.batch)
        phase.advance(result)
        log.step(phase, result)
        if phase.step % cfg.eval_every == 0 or phase.done:
            t0 = time.perf_counter()
            test_psnr = evaluate_on_test_views(phase, scene, n_views, stride, writer, device, result)
            eval_seconds += time.perf_counter() - t0
            if test_psnr is not None:
                append_history(run / HISTORY, phase, test_psnr, stride, eval_seconds)
                log.evaluated(phase, test_psnr)
        checkpoints.after_step(phase)
        if watch is not None:
            watch(phase.name, phase.step, phase.model, phase.sampler)
    log.close()
    if distributed.world() > 1:
        distributed.check_identical(f"{phase.name}: the occupancy grid", phase.sampler.state_dict().values())
        distributed.check_identical(f"{phase.name}: the weights", phase.model.state_dict().values())
        log.note(f"{phase.name}: occupancy grid and weights identical on all {distributed.world()} processes")
    if eval_seconds and writer is not None:
        share = eval_seconds / max(eval_seconds + phase.train_seconds, 1e-9)
        print(f"{phase.name}: evaluation during training took {eval_seconds:.1f} s, {100 * share:.1f} % of "
              "training and evaluation together", file=sys.stderr)
    checkpoints.save(phase, final=True)


def run_phase(name: str, build: Callable[[], nn.Module], scene: Scene, cfg: TrainConfig, run: Path,
              writer: SummaryWriter | None, device: torch.device, teacher: Teacher | None = None,
              watch: Watcher | None = None) -> Phase:
    """Build (``build()``, after seeding, so that ``--seed`` fixes the initial weights), resume if asked (or skip
    when already finished), and train one model. Every process of a job seeds alike: they build the same model
    and draw from the same streams (:class:`Batcher`).

    A distilled student marches its rays as its teacher does (``train_phase``) and
    starts from its teacher's learned encoding (the hash table of the fast
    preset), so that it learns the spiking MLP on features that already describe
    the scene.
    """
    phase = build_phase(name, build, scene, cfg, device, teacher)
    ckpt = latest_checkpoint(run, name) if cfg.resume else None
    if ckpt is not None:
        phase.load(ckpt, load_checkpoint(ckpt))
        if writer is not None:
            trim_history(run / HISTORY, name, phase.step)
            print(f"{name}: resumed from {ckpt.name} at step {phase.step}", file=sys.stderr)
    train_phase(phase, scene, cfg, run, writer, device, None if teacher is None else teacher.model, watch)
    return phase


def trim_history(path: Path, phase: str, step: int) -> None:
    """Drop the history's lines of ``phase`` after ``step``, the checkpoint a run resumes from (those steps run
    again), and any line a killed run left torn."""
    if not path.is_file():
        return
    if path.stat().st_size > MAX_HISTORY_BYTES:
        raise InputError(f"{path}: more than the {MAX_HISTORY_BYTES} bytes a history may have")
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict) and not (entry.get("phase") == phase and isinstance(entry.get("step"), int)
                                            and entry["step"] > step):
            kept.append(line + "\n")
    write_atomic(path, lambda tmp: tmp.write_text("".join(kept)))


def resumed_config(cfg: TrainConfig) -> TrainConfig:
    """The saved config of the run in ``--out``, held to what the command line accepts: a resumed run continues
    exactly as it started."""
    return dataclasses.replace(read_config(Path(cfg.out)), resume=True, out=cfg.out, dry_run=False,
                               viewer=cfg.viewer, viewer_host=cfg.viewer_host, viewer_port=cfg.viewer_port,
                               nproc=cfg.nproc)


def main(cfg: TrainConfig) -> int:
    """Validate everything that can be validated cheaply, claim and lock the run folder, then train.

    Without ``--out`` the run folder is named after the scene, so the scene loads first. In a job rank 0 claims
    the folder (and fills its image cache) before the other ranks load the scene: a failure there stops them all.
    """
    cfg.validate()
    distributed.check_nproc(cfg.nproc)
    with distributed.session(cuda=choose_device(cfg.device).type == "cuda"):
        if cfg.resume:
            cfg = distributed.first_then_others(partial(resumed_config, cfg))
        data = Path(cfg.data) if cfg.data else default_scene_path()
        if cfg.dry_run:
            if distributed.is_first():
                dry_run(cfg, data)
            return 0
        with ExitStack() as held:
            claimed: list[Scene] = []
            run = distributed.first_decides(lambda: claim_run(cfg, data, held, claimed))
            scene = claimed[0] if claimed else load_scene(
                data, downscale=cfg.downscale, background=cfg.background,
                cache_dir=None if cfg.out is None else run / "cache", scene_kind=cfg.scene_kind)
            return train_run(cfg, scene, run)


def dry_run(cfg: TrainConfig, data: Path) -> None:
    """``--dry-run``: check the scene and the run folder, print what would train."""
    if cfg.out is not None:
        check_new_run(Path(cfg.out))
    scene = load_scene(data, downscale=cfg.downscale, background=cfg.background, scene_kind=cfg.scene_kind)
    print(scene.summary())
    print(f"preset: {cfg.preset}, model: {cfg.model}, steps: teacher {cfg.total_steps('teacher', scene.kind)}, "
          f"student {cfg.total_steps('student', scene.kind)}, "
          f"student: {cfg.student.neuron} T={cfg.student.T} kd={cfg.kd}, device: {choose_device(cfg.device)}")


def claim_run(cfg: TrainConfig, data: Path, held: ExitStack, scenes: list[Scene]) -> Path:
    """Hold the run folder (``--out``, else one named after the scene) until ``held`` closes, load the scene into
    ``scenes`` (downscaled images cached in the run folder) and return the folder."""
    if cfg.out is None:
        scene = load_scene(data, downscale=cfg.downscale, background=cfg.background, scene_kind=cfg.scene_kind)
        run = held.enter_context(hold_run(default_run_dir(scene.name), "train", create=True))
    else:
        run = held.enter_context(hold_run(Path(cfg.out), "train", create=not cfg.resume))
        scene = load_scene(data, downscale=cfg.downscale, background=cfg.background, cache_dir=run / "cache",
                           scene_kind=cfg.scene_kind)
    scenes.append(scene)
    return run


def train_run(cfg: TrainConfig, scene: Scene, run: Path) -> int:
    """Train, evaluate and render in the run folder ``run``, which this process holds.

    A new run's ``config.json`` is written once everything it names has loaded (the
    scene, a ``--teacher``, the viewer's server): until then the folder holds no run,
    and the same command may try it again.
    """
    device = choose_device(cfg.device)
    first = distributed.is_first()  # in a job rank 0 writes; every rank trains, evaluates and renders its share
    teacher = None
    if cfg.model == "student" and cfg.teacher is not None:
        teacher = distributed.first_then_others(partial(load_teacher, Path(cfg.teacher), scene, cfg, device))
    viewer = training_viewer(cfg, scene, run) if cfg.viewer and first else None
    try:
        if not cfg.resume and first:
            resolved = {key: str(Path(getattr(cfg, key)).resolve()) if getattr(cfg, key) else None
                        for key in ("data", "teacher")}
            # the kind the scene was framed as, not "auto": eval and render frame it the same way
            saved = dataclasses.replace(cfg, out=str(run), scene_kind=scene.kind, **resolved)
            write_json_atomic(run / RUN_CONFIG, config_json(saved))
        if first:
            for note in scene.notes:
                print(f"note: {note}", file=sys.stderr)
            threads.announce()
            if not cfg.resume and distributed.world() == 1:  # in a job the trial steps would wait for the others
                announce_estimate(cfg, scene, device, teacher)
            print(f"run directory: {run}" + (f" ({distributed.world()} processes)" if distributed.world() > 1
                                            else ""), file=sys.stderr)
        train_models(cfg, scene, run, device, teacher, viewer)
    finally:
        if viewer is not None:
            viewer.close()
    distributed.barrier()  # rank 0's final checkpoints are on disk before any rank evaluates them
    metrics = evaluate_run(run, device=cfg.device)
    if first:
        print(format_table(metrics))
    if cfg.video_frames:
        shown = "student" if cfg.model != "teacher" else "teacher"
        # a preview: photos' frames are downscaled to VIDEO_RAYS in all (spiknerf render renders full size);
        # forward-facing captures spiral in front of their cameras, where an orbit would leave what they saw
        video = render_video(run, model=shown, path="spiral" if scene.ndc else "orbit", frames=cfg.video_frames,
                             fps=cfg.fps, max_rays=VIDEO_RAYS)
        if first:
            print(f"video: {video}", file=sys.stderr)
    spent = threads.seconds_by_threads()
    if first and len(spent) > 1:  # the machine was busy for a while: say how the run shared it
        print("threads: " + ", ".join(f"{n} for {s:.0f} s" for n, s in sorted(spent.items(), reverse=True)),
              file=sys.stderr)
    return 0


def train_models(cfg: TrainConfig, scene: Scene, run: Path, device: torch.device, teacher: Teacher | None,
                 watch: Watcher | None) -> None:
    """Train the teacher, then the student, as ``--model`` asks."""
    preset = PRESETS[cfg.preset]
    with SummaryWriter(str(run / "tb")) if distributed.is_first() else nullcontext() as writer:
        if cfg.model in ("both", "teacher"):
            trained = run_phase("teacher", partial(preset.teacher, scene), scene, cfg, run, writer, device,
                                watch=watch)
            teacher = Teacher(trained.model.eval(), trained.sampler)
        if cfg.model in ("both", "student"):
            if teacher is not None:
                teacher.model.requires_grad_(False)
            build = partial(preset.student, scene, cfg.student)
            run_phase("student", build, scene, cfg, run, writer, device, teacher if cfg.kd else None, watch)


def training_viewer(cfg: TrainConfig, scene: Scene, run: Path) -> TrainingViewer:
    """The web viewer of ``--viewer`` (:class:`spiknerf.viewer.training.TrainingViewer`), serving from now on.
    Imported here only: the viewer is built on this package and needs the viewer extra."""
    from spiknerf.viewer.training import TrainingViewer

    return TrainingViewer(cfg.preset, scene, run, host=cfg.viewer_host, port=cfg.viewer_port)
