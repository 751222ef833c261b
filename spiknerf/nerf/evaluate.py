"""``spiknerf eval``: render a split, score PSNR and SSIM per view, count operations, write ``metrics.json``.

The student is evaluated in its inference form: a ternary student is
re-parameterized (each spike ``s`` read as ``s - c``, ``W c`` folded into the
bias) so its spike-reading layers need only additions, and
``reparam_max_abs_diff`` records the largest difference between the folded and
the training-form renderings of the same test rays (4096 drawn across the
split), evaluated in float64 (see :func:`reparam_difference`; the float32
figure is ``reparam_max_abs_diff_float32``). Operation counts are taken at the
sample points of the rendered rays: MACs for layers that read analog values,
synaptic operations for spike-driven layers; the hash-grid lookups are not
counted (they are the same in teacher and student).

The offsets ``c`` are each unit's most frequent spike on sample points of the
first training view (:func:`~spiknerf.neurons.calibrate_offsets`), so that the
commonest spike costs nothing. Beside the inference form, two other readings of
the same spikes are reported: ``paper_fold`` (the paper's ``c = 1`` for every
unit: a 0 spike costs a subtraction) and ``training_form`` ({0, 1, 2}: a 0 is
free, a 2 is one shifted addition).
"""

from __future__ import annotations

import copy
import math
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from spiknerf import distributed, threads
from spiknerf.atomic import write_json_atomic
from spiknerf.errors import InputError
from spiknerf.json_input import expect_object, is_number, read_json
from spiknerf.nerf.data import Scene, Split
from spiknerf.nerf.metrics import psnr, ssim
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.render import Image, render_chunks, render_rays
from spiknerf.nerf.run import METRICS, choose_device, eval_background, load_model, open_scene, read_config
from spiknerf.nerf.run_folder import hold_run
from spiknerf.nerf.train_config import TrainConfig
from spiknerf.neurons import E_AC_PJ, E_MAC_PJ, TernaryLIF, calibrate_offsets, count_ops, reparameterize

# sample points used for op counting: enough for stable firing rates, cheap to run
_OPS_SAMPLES = 1 << 14
_CHECK_RAYS = 4096
MAX_METRICS_BYTES = 16 << 20


@dataclass
class EvalConfig:
    """Render a run's test split, print PSNR/SSIM per view and write metrics.json."""

    run: str = field(metadata={"help": "run directory"})
    split: str = field(default="test", metadata={"help": "split to evaluate"})
    model: str = field(default="both", metadata={"choices": ("both", "teacher", "student")})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    e_mac: float = field(default=E_MAC_PJ, metadata={"help": "energy of a multiply-accumulate, pJ"})
    e_ac: float = field(default=E_AC_PJ, metadata={"help": "energy of an accumulate, pJ"})


def render_split(model: nn.Module, sampler: nn.Module, split: Split, background: Tensor, device: torch.device,
                 views: Iterable[int] | None = None, stride: int = 1, progress: str | None = None) -> list[Image]:
    """Views of a split (all of them by default), rendered without gradients; with ``stride``, only every
    ``stride``-th pixel along each axis (:meth:`Split.image_pixels`). In a job the ranks render the views between
    them and rank 0 gets them all; the other ranks get none. ``progress``: the label of a progress bar (views
    done, time left) on stderr."""

    def render(v: int) -> Image:
        o, d, vd = split.view_rays(v, device, stride)
        image = render_chunks(model, sampler, o, d, background.to(device), vd)
        return image if distributed.world() == 1 else image.cpu()

    views = list(range(len(split)) if views is None else views)
    done = distributed.gathered(render, views)
    return list(tqdm(done, total=len(views), desc=progress, unit="view", file=sys.stderr, dynamic_ncols=True,
                     leave=False, disable=progress is None or not distributed.is_first()))


def check_rays(split: Split, n: int = _CHECK_RAYS) -> tuple[Tensor, Tensor, Tensor | None]:
    """``n`` test rays drawn across all views of a split (seeded): origins, directions, view directions."""
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, len(split), (n,), generator=g)
    ys, xs = torch.randint(0, split.height, (n,), generator=g), torch.randint(0, split.width, (n,), generator=g)
    return split.rays(index, ys, xs)


def reparam_difference(model: nn.Module, sampler: nn.Module, split: Split, background: Tensor,
                       device: torch.device, offsets: dict[str, Tensor], wiring_inputs: tuple[Tensor, Tensor],
                       dtype: torch.dtype = torch.float64) -> float:
    """Largest colour difference between the folded and the training form on test rays (``check_rays``).

    In float32 the two forms sum in different orders, and a neuron whose
    membrane lands within rounding of its threshold fires in one and not the
    other; such ties flip a few spikes in either form alone (a different batch
    size does it too). Evaluated in float64 the ties vanish and what remains is
    the difference the re-parameterization itself makes. A few thousand rays
    rather than the whole split: the paper preset renders slowly on a CPU
    (docs/benchmarks.md, "NeRF pipeline"), and the check renders every ray twice.
    """
    model = copy.deepcopy(model).to(dtype)
    folded = reparameterize(model, offsets=offsets, inputs=tuple(t.to(dtype) for t in wiring_inputs))
    o, d, vd = (None if t is None else t.to(device, dtype) for t in check_rays(split))
    bg = background.to(device, dtype)
    forms = tqdm((model, folded), desc=f"reparameterization check ({len(o)} rays, {str(dtype).split('.')[-1]})",
                 unit="form", file=sys.stderr, dynamic_ncols=True, leave=False)
    a, b = (render_chunks(m, sampler, o, d, bg, vd).rgb for m in forms)
    return float((a - b).abs().max())


def score(images: list[Image], split: Split, background: Tensor) -> dict[str, Any]:
    """Mean and per-view PSNR and SSIM."""
    per_view = []
    for v, image in enumerate(images):
        gt = split.image(v, background)
        pred = image.rgb.cpu().reshape(gt.shape).clamp(0, 1)
        per_view.append({"view": split.names[v], "psnr": round(psnr(pred, gt), 4), "ssim": round(ssim(pred, gt), 5)})
    n = max(len(per_view), 1)
    return {
        "psnr": sum(p["psnr"] for p in per_view) / n,
        "ssim": sum(p["ssim"] for p in per_view) / n,
        "samples_per_ray": sum(i.samples_per_ray for i in images) / max(len(images), 1),
        "per_view": per_view,
    }


@torch.no_grad()
def sample_points(model: nn.Module, sampler: nn.Module, split: Split, background: Tensor,
                  device: torch.device, n: int = _OPS_SAMPLES) -> tuple[Tensor, Tensor]:
    """Sample points and view directions where the model's rendering of the first view evaluates it (on an even
    grid of at most ``n`` of its pixels: a photo's every pixel at once would hold its whole march in memory)."""
    o, d, vd = split.view_rays(0, device, split.grid_stride(1, n))
    out = render_rays(model, sampler, o, d, background.to(device), view_dirs=vd, shade=True)
    keep = torch.randperm(len(out.points), generator=torch.Generator().manual_seed(0))[:n]
    return out.points[keep], out.directions[keep]


def layer_of(neuron: str) -> str:
    """The layer a neuron module's name belongs to: a folded ternary layer wraps its neuron
    (``layer.neuron.neuron``), a binary one does not."""
    return re.sub(r"(\.neuron)+$", "", neuron)


def op_report(model: nn.Module, points: Tensor, dirs: Tensor, samples_per_ray: float, e_mac: float,
              e_ac: float) -> dict[str, Any]:
    """MACs, SOPs and energy per sample and per ray, firing rates and which layers stay MACs."""
    ops = count_ops(model, (points, dirs), e_mac=e_mac, e_ac=e_ac)
    report = {
        "macs_per_sample": ops.macs_per_sample,
        "sops_per_sample": ops.sops_per_sample,
        "energy_pj_per_sample": ops.energy_pj_per_sample,
        "macs_per_ray": ops.macs_per_sample * samples_per_ray,
        "sops_per_ray": ops.sops_per_sample * samples_per_ray,
        "energy_pj_per_ray": ops.energy_pj_per_sample * samples_per_ray,
        "mac_layers": sorted(layer.name for layer in ops.layers if layer.kind == "mac"),
    }
    if ops.firing_rate:
        report["firing_rate"] = {layer_of(k): round(v, 5) for k, v in ops.firing_rate.items()}
    return report


def is_ternary(model: nn.Module) -> bool:
    return any(isinstance(m, TernaryLIF) for m in model.modules())


def fold_student(model: nn.Module, sampler: nn.Module, train: Split, background: Tensor,
                 device: torch.device) -> tuple[nn.Module, dict[str, Tensor], tuple[Tensor, Tensor]]:
    """A ternary student's inference form: a folded copy whose offsets are each unit's commonest spike on the
    sample points of the first training view; also the offsets and the points that traced its wiring."""
    calibration = sample_points(model, sampler, train, background, device)
    offsets = calibrate_offsets(model, *calibration)
    wiring_inputs = tuple(t[:64] for t in calibration)  # a few points suffice to trace which layer reads what
    return reparameterize(model, offsets=offsets, inputs=wiring_inputs), offsets, wiring_inputs


def inference_form(model: nn.Module, sampler: nn.Module, scene: Scene) -> nn.Module:
    """The form a model is shown in (viewer, ``render``): a ternary student folded as evaluation folds it,
    anything else as it is."""
    if not is_ternary(model):
        return model
    device = next(model.parameters()).device
    return fold_student(model, sampler, scene.splits["train"], eval_background(scene), device)[0].eval()


def evaluate_model(run: Path, phase: str, config: TrainConfig, scene: Scene, split_name: str,
                   device: torch.device, e_mac: float, e_ac: float) -> dict[str, Any]:
    """Scores, op counts and (for a ternary student) the re-parameterization check of one model."""
    model, sampler, state = load_model(run, phase, config, scene, device)
    split = scene.splits[split_name]
    background = eval_background(scene)
    folds = phase == "student" and is_ternary(model)
    if folds:
        inference, offsets, wiring_inputs = fold_student(model, sampler, scene.splits["train"], background, device)
    else:
        inference = model
    t0 = time.perf_counter()
    images = render_split(inference, sampler, split, background, device, progress=f"evaluating {phase}")
    if not distributed.is_first():  # this rank rendered its share of the views; rank 0 scores them
        return {}
    per_view = (time.perf_counter() - t0) / max(len(split), 1)
    block = score(images, split, background) | {"seconds_per_view": per_view}
    train_seconds = state["train_seconds"]
    block |= {"train_seconds": train_seconds, "steps": state["step"],
              "steps_per_second": state["step"] / train_seconds, "rays_per_second": state["rays"] / train_seconds,
              "train_samples_per_second": state["samples"] / train_seconds}
    points, dirs = sample_points(model, sampler, split, background, device)
    block |= op_report(inference, points, dirs, block["samples_per_ray"], e_mac, e_ac)
    if phase == "student":
        block |= {"neuron": config.student.neuron, "T": config.student.T, "kd": config.kd,
                  "color_skip": config.student.color_skip}
        if PRESETS[config.preset].has_color_branch:
            block["color_hidden"] = config.student.color_hidden
    if folds:
        block["fold_offsets"] = {f"{v:g}": int(sum(int((c == v).sum()) for c in offsets.values()))
                                 for v in (0.0, 1.0, 2.0)}
        for key, form in (("paper_fold", reparameterize(model)), ("training_form", model)):
            other = op_report(form, points, dirs, block["samples_per_ray"], e_mac, e_ac)
            block[key] = {k: other[k] for k in ("sops_per_sample", "energy_pj_per_sample", "sops_per_ray",
                                                "energy_pj_per_ray")}
        for key, dtype in (("reparam_max_abs_diff", torch.float64), ("reparam_max_abs_diff_float32", torch.float32)):
            block[key] = reparam_difference(model, sampler, split, background, device, offsets, wiring_inputs, dtype)
    return block


def read_metrics(path: Path) -> dict[str, Any]:
    """The run's metrics.json if there is one, which evaluation merges into; a file that is not what
    evaluation writes is an InputError naming it (it is not replaced)."""
    if not path.exists():
        return {}
    # psnr is +inf for a perfect rendering, and Python's json writes it as Infinity
    metrics = expect_object(read_json(path, MAX_METRICS_BYTES, finite=False), str(path))
    for phase in ("teacher", "student"):
        block = metrics.get(phase, {})
        if not isinstance(block, dict):
            raise InputError(f"{path}: {phase!r} is not an object; move the file away to evaluate afresh")
        for key in ("energy_pj_per_ray", "energy_pj_per_sample"):
            value = block.get(key, 1.0)
            if not (is_number(value) and math.isfinite(value) and value > 0):
                raise InputError(f"{path}: {phase}.{key} is {value!r:.80}, not a positive number; "
                                 "move the file away to evaluate afresh")
    return metrics


def evaluate_run(run: Path, split: str = "test", phases: tuple[str, ...] = ("teacher", "student"),
                 device: str = "auto", e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ) -> dict[str, Any]:
    """Evaluate the run's trained models and merge the results into ``metrics.json``."""
    run = Path(run)
    if not (math.isfinite(e_mac) and math.isfinite(e_ac) and e_mac > 0 and e_ac > 0):
        raise InputError(f"--e-mac and --e-ac must be > 0 (got {e_mac} and {e_ac})")
    config = read_config(run)
    path = run / METRICS
    metrics = read_metrics(path)
    scene = open_scene(run, config)
    if split not in scene.splits:
        raise InputError(f"--split {split}: the scene has splits {', '.join(scene.splits)}")
    dev = choose_device(device)
    metrics |= {"scene": scene.name, "preset": config.preset, "device": dev.type,
                "downscale": config.downscale, "split": split}
    available = [p for p in phases if (run / "checkpoints").is_dir()
                 and any(f.name.startswith(p + "-") for f in (run / "checkpoints").iterdir())]
    if not available:
        raise InputError(f"{run}: no trained model to evaluate in {run / 'checkpoints'}")
    threads.announce()
    for phase in available:
        if distributed.is_first():
            print(f"evaluating {phase} on {len(scene.splits[split])} {split} views", file=sys.stderr)
        metrics[phase] = evaluate_model(run, phase, config, scene, split, dev, e_mac, e_ac)
    if not distributed.is_first():  # rank 0 writes the metrics
        return metrics
    if "teacher" in metrics and "student" in metrics:
        teacher, student = metrics["teacher"], metrics["student"]
        student["energy_ratio_vs_teacher"] = student["energy_pj_per_ray"] / teacher["energy_pj_per_ray"]
        student["energy_ratio_per_sample"] = student["energy_pj_per_sample"] / teacher["energy_pj_per_sample"]
        for key in ("paper_fold", "training_form"):
            if key in student:
                form = student[key]
                form["energy_ratio_per_sample"] = form["energy_pj_per_sample"] / teacher["energy_pj_per_sample"]
    write_json_atomic(path, metrics)
    return metrics


def format_table(metrics: dict[str, Any]) -> str:
    """Per-view PSNR/SSIM table and the means, one column per model."""
    phases = [p for p in ("teacher", "student") if p in metrics]
    lines = ["view".ljust(24) + "".join(f"{p + ' PSNR':>15}{p + ' SSIM':>15}" for p in phases)]
    views = metrics[phases[0]]["per_view"]
    for i, v in enumerate(views):
        row = str(v["view"])[:23].ljust(24)
        for p in phases:
            pv = metrics[p]["per_view"][i]
            row += f"{pv['psnr']:>15.2f}{pv['ssim']:>15.4f}"
        lines.append(row)
    lines.append("mean".ljust(24) + "".join(f"{metrics[p]['psnr']:>15.2f}{metrics[p]['ssim']:>15.4f}"
                                           for p in phases))
    for p in phases:
        b = metrics[p]
        lines.append(f"{p}: {b['samples_per_ray']:.1f} samples/ray, {b['macs_per_ray']:.0f} MACs/ray, "
                     f"{b['sops_per_ray']:.0f} SOPs/ray, {b['energy_pj_per_ray']:.0f} pJ/ray")
    if "energy_ratio_vs_teacher" in metrics.get("student", {}):
        lines.append(f"student/teacher energy per ray: {metrics['student']['energy_ratio_vs_teacher']:.3f}")
    return "\n".join(lines)


def main(cfg: EvalConfig) -> int:
    phases = ("teacher", "student") if cfg.model == "both" else (cfg.model,)
    with hold_run(Path(cfg.run), "eval") as run:  # metrics.json is read, merged and written by one process
        metrics = evaluate_run(run, cfg.split, phases, cfg.device, cfg.e_mac, cfg.e_ac)
    print(format_table(metrics))
    print(f"wrote {Path(cfg.run) / METRICS}")
    return 0
