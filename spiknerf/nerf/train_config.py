"""What a run is: the options of ``spiknerf train``, and the ``config.json`` a run saves them in.

:class:`TrainConfig` is one dataclass whose fields are the command's options;
each field names its topic (``group``), so that ``spiknerf train --help`` reads
by topic, and the student's settings are a nested :class:`StudentSettings`
whose fields are options too (``--neuron``, ``--T``, ...).

``config.json`` holds ``{"version": CONFIG_VERSION, <the options>}``, the
student's in an object of their own. :func:`current_layout` is the one place
that knows the layouts older runs saved; :func:`config_from_saved` reads any of
them and holds it to what the command line accepts, so that a resumed run, or a
run folder from someone else, is checked exactly like a fresh command.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from spiknerf import threads
from spiknerf.config import config_from_json
from spiknerf.errors import InputError
from spiknerf.json_input import expect_object
from spiknerf.nerf.camera_path import MAX_FRAMES
from spiknerf.nerf.data.framing import KIND_CHOICES
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.student import StudentSettings

CONFIG_VERSION = 2

# the topics of `spiknerf train --help`, in the order they are listed
DATA, MODELS, STUDENT, DISTILLATION = "data", "models", "student neuron", "distillation"
SCHEDULE, OUTPUT, DEVICE = "schedule and checkpoints", "evaluation and output", "device"
VIEWER = "web viewer"

# pixels rendered for each test PSNR during training: with at least 256 rays a step and evaluations every 500
# steps, a few per cent of the rays the steps between two evaluations train on
EVAL_PIXELS = 1 << 14
_DEFAULT_BATCH = ", ".join(f"{p.name} {p.target_samples}" for p in PRESETS.values())
_DEFAULT_STEPS = ", ".join(f"{p.name} {p.teacher_steps} + {p.student_steps}" for p in PRESETS.values()) + "".join(
    f"; {p.name} on a forward-facing capture {p.forward_steps[0]} + {p.forward_steps[1]}"
    for p in PRESETS.values() if p.forward_steps)


@dataclass
class TrainConfig:
    """Train a teacher NeRF and its distilled spiking student, evaluate both, render a video."""

    data: str | None = field(default=None, metadata={"group": DATA,
                                                      "help": "scene folder (default: the built-in scene)"})
    downscale: int = field(default=1, metadata={"group": DATA, "help": "image downscale factor"})
    background: str = field(default="white", metadata={"group": DATA, "choices": ("white", "black", "random"),
                                                        "help": "what RGBA images are composited on"})
    scene_kind: str = field(default="auto", metadata={
        "group": DATA, "choices": KIND_CHOICES,
        "help": "forward (NDC), object (a box) or unbounded (a box, space beyond it contracted); auto: as the scene "
                "declares, else as its cameras say. The run keeps the kind it trained with"})

    preset: str = field(default="fast", metadata={"group": MODELS, "choices": tuple(PRESETS), "help": "field and "
                        "sampler: fast (hash grid), paper (8 x 256 NeRF MLP, coarse-to-fine) or mlp (4 x 128 NeRF "
                        "MLP on the occupancy grid, every hidden layer of the student spiking)"})
    model: str = field(default="both", metadata={"group": MODELS, "choices": ("both", "teacher", "student"),
                                                  "help": "what to train"})
    teacher: str | None = field(default=None, metadata={"group": MODELS,
                                                         "help": "reuse the teacher of this run directory"})

    student: StudentSettings = field(default_factory=StudentSettings, metadata={"group": STUDENT})

    kd: bool = field(default=True, metadata={"group": DISTILLATION, "flag": "--no-kd",
                                              "help": "turn distillation off"})
    kd_sigma: float = field(default=0.5, metadata={"group": DISTILLATION, "help": "distillation weight on density, "
                                                   "compared as each sample's opacity"})
    kd_color: float = field(default=0.5, metadata={"group": DISTILLATION, "help": "distillation weight on colour"})

    batch: int | None = field(default=None, metadata={"group": SCHEDULE, "help": "samples a training step aims "
                              "at, summed over all processes: its rays follow from the samples per ray (default: the "
                              "preset's, " + _DEFAULT_BATCH + "). Several processes split this global batch, so they "
                              "train as one process does and keep its learning rate; a larger --batch may take a "
                              "larger learning rate (docs/distributed.md)"})
    steps: int | None = field(default=None, metadata={"group": SCHEDULE, "help": "training steps per model "
                                                      f"(default: the preset's teacher + student, {_DEFAULT_STEPS})"})
    seed: int = field(default=0, metadata={"group": SCHEDULE})
    resume: bool = field(default=False, metadata={"group": SCHEDULE,
                                                   "help": "continue the run in --out from its last checkpoint"})
    checkpoint_seconds: float = field(default=30.0, metadata={"group": SCHEDULE,
                                                               "help": "checkpoint interval in training seconds"})
    checkpoint_steps: int = field(default=0, metadata={"group": SCHEDULE,
                                                        "help": "also checkpoint every N steps (0: off)"})
    keep_checkpoints: int = field(default=3, metadata={"group": SCHEDULE, "help": "step checkpoints kept per model"})

    out: str | None = field(default=None, metadata={"group": OUTPUT,
                                                     "help": "run directory (default: runs/<scene>-<time>)"})
    dry_run: bool = field(default=False, metadata={"group": OUTPUT,
                                                    "help": "validate scene and options, print a summary, exit"})
    eval_every: int = field(default=500, metadata={"group": OUTPUT,
                                                    "help": "steps between test PSNR and TensorBoard images"})
    eval_views: int = field(default=3, metadata={"group": OUTPUT,
                                                  "help": "test views used for the PSNR during training"})
    eval_pixels: int = field(default=EVAL_PIXELS, metadata={
        "group": OUTPUT, "help": "at most this many pixels of those views are rendered for it, an even grid over "
                                 "each (0: every pixel); the whole test split is evaluated at the end either way"})
    video_frames: int = field(default=60, metadata={"group": OUTPUT, "help": "frames of the final video (0: none)"})
    fps: int = field(default=24, metadata={"group": OUTPUT})

    device: str = field(default="auto", metadata={"group": DEVICE, "choices": ("auto", "cpu", "cuda")})
    nproc: int = field(default=1, metadata={"group": DEVICE, "help": "train data-parallel in this many processes on "
                       "this machine (gloo on the CPU, one GPU each with NCCL), as torchrun --nproc-per-node does; "
                       "under torchrun leave it out (docs/distributed.md)"})

    viewer: bool = field(default=False, metadata={"group": VIEWER, "help": "serve a web viewer of the models as "
                                                   "they train (docs/viewer.md; needs the viewer extra)"})
    viewer_host: str = field(default="127.0.0.1", metadata={"group": VIEWER, "help": "address the viewer listens "
                                                             "on; 0.0.0.0 lets every machine that reaches this one in"})
    viewer_port: int = field(default=8080, metadata={"group": VIEWER,
                                                      "help": "its port (taken: the next free one; 0: any)"})

    def validate(self) -> None:
        """Refuse option values and combinations no run can use, naming the option."""
        checks = [
            (self.steps is None or self.steps >= 1, f"--steps must be >= 1 (got {self.steps})"),
            (self.batch is None or self.batch >= 1, f"--batch must be >= 1 (got {self.batch})"),
            (self.nproc >= 1, f"--nproc must be >= 1 (got {self.nproc})"),
            (self.downscale >= 1, f"--downscale must be >= 1 (got {self.downscale})"),
            *self.student.checks(),
            (self.kd_sigma >= 0 and self.kd_color >= 0, "--kd-sigma and --kd-color must be >= 0"),
            (self.checkpoint_seconds > 0, f"--checkpoint-seconds must be > 0 (got {self.checkpoint_seconds})"),
            (self.keep_checkpoints >= 1, f"--keep-checkpoints must be >= 1 (got {self.keep_checkpoints})"),
            (self.eval_every >= 1 and self.eval_views >= 1, "--eval-every and --eval-views must be >= 1"),
            (self.eval_pixels >= 0, f"--eval-pixels must be >= 0 (got {self.eval_pixels})"),
            (0 <= self.video_frames <= MAX_FRAMES and self.fps >= 1,
             f"--video-frames must be in 0..{MAX_FRAMES} and --fps >= 1"),
            (not (self.model == "student" and self.teacher is None and self.kd),
             "--model student needs --teacher RUN (or --no-kd)"),
            (self.teacher is None or self.model == "student", "--teacher RUN goes with --model student"),
            *PRESETS[self.preset].checks(self.student),
            (not (self.resume and self.out is None), "--resume needs --out DIR, the run to continue"),
            (0 <= self.viewer_port <= 65535, f"--viewer-port must be in 0..65535 (got {self.viewer_port})"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    def total_steps(self, phase: str, kind: str = "object") -> int:
        """Steps of ``phase`` (teacher or student) on a scene of ``kind``: ``--steps``, else the preset's."""
        return self.steps or PRESETS[self.preset].default_steps(phase, kind)


def config_json(cfg: TrainConfig) -> dict[str, Any]:
    """What ``config.json`` holds: the layout's version, every option, and the threading the run started with
    (a record of this machine, not an option: a resumed run or another machine chooses its own)."""
    return {"version": CONFIG_VERSION} | dataclasses.asdict(cfg) | {"threading": threads.chosen().as_json()}


_STUDENT_KEYS = frozenset(f.name for f in dataclasses.fields(StudentSettings))


def current_layout(values: dict[str, Any], label: str) -> dict[str, Any]:
    """The options of a saved ``config.json`` of any layout, in this version's layout, without the version.

    * version 2 (this one): the student's options in ``"student"``, and ``"threading"``, what the run
      started with (:func:`config_json`), which is no option;
    * no version (runs saved before version 2): every option at the top level. Runs saved before
      ``reset``, ``threshold`` and ``delta_v`` were options trained a hard reset, θ = 0.5 and Δv = 1.
    """
    version = values.get("version")
    if type(version) is int and version == CONFIG_VERSION:
        return {k: v for k, v in values.items() if k not in ("version", "threading")}
    if "version" in values:
        raise InputError(f"{label}: version {version!r:.80} is not one this spiknerf reads ({CONFIG_VERSION})")
    if "student" in values:
        raise InputError(f"{label}: 'student' comes with a 'version', and there is none")
    student = {k: v for k, v in values.items() if k in _STUDENT_KEYS}
    if "reset" not in values:
        student |= {"reset": "hard", "threshold": 0.5, "delta_v": 1.0}
    return {k: v for k, v in values.items() if k not in _STUDENT_KEYS} | {"student": student}


def config_from_saved(values: Any, label: str) -> TrainConfig:
    """The run config a saved ``config.json`` (``values``, of any layout) describes, held to what the command
    line accepts: its keys, the types and choices of its options and their ranges (:meth:`TrainConfig.validate`).
    Anything else is an InputError naming ``label``."""
    values = current_layout(expect_object(values, label), label)
    config = config_from_json(TrainConfig, values, label)
    try:
        config.validate()
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    return config
