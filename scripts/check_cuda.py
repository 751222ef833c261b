"""Check the CUDA paths against the CPU, and time them: the neuron core, the fields, the fold.

    python scripts/check_cuda.py [--no-results]

The test suite runs on the CPU only, so it never reaches the CUDA paths: the
neurons' eager kernels (the CPU compiles them), the fields under CUDA, the
folded student on CUDA. On a machine with a CUDA device this script checks:

1. every neuron kind and reset: spikes and input gradients on CUDA against the CPU;
2. teacher and student of both presets, the same weights on both devices: density and colour at the same points
   (float32, as eval runs; training runs under bf16 autocast);
3. the student's folded, addition-only form against its training form, on CUDA (the <= 1e-4 contract);
4. one forward+backward on CUDA: the neuron on [2, 65536, 64], and each field on 8192 samples under bf16 autocast,
   as a training step runs it.

It prints every check, writes the worst case of each kind of check to ``docs/results/cuda_checks.json`` and
the timings to ``cuda_timing.json`` (unless ``--no-results``), regenerates the docs, and exits 1 if a check
fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.student import StudentSettings
from spiknerf.neurons import calibrate_offsets, count_ops, make_neuron, reparameterize
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate

AABB = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])
CUDA = torch.device("cuda")
MAX_SPIKE_MISMATCH = 1e-4  # fraction: compiled CPU and eager CUDA may round a current on the threshold apart
MAX_GRAD_ERROR = 1e-3  # relative (norm of the difference over the norm)
MAX_FOLD_DIFF = 1e-4


def relative_error(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def check_neurons() -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 65536, 64, generator=gen) * 0.8 + 0.4
    grad_out = torch.randn(x.shape, generator=gen)
    for kind in ("binary", "ternary", "signed_ternary"):
        for reset in ("hard", "soft"):
            neuron = make_neuron(kind, reset=reset, decay_input=False)
            results = []
            for device in ("cpu", "cuda"):
                xi = x.to(device, copy=True).requires_grad_()
                s = neuron.to(device)(xi)
                s.backward(grad_out.to(device))
                results.append((s.detach().cpu(), xi.grad.cpu()))
            (s_cpu, g_cpu), (s_cuda, g_cuda) = results
            mismatch = float((s_cpu != s_cuda).float().mean())
            grad_err = relative_error(g_cuda, g_cpu)
            rows.append({"check": f"neuron {kind}, {reset} reset", "spike mismatch": mismatch,
                         "grad rel. error": grad_err,
                         "ok": mismatch <= MAX_SPIKE_MISMATCH and grad_err <= MAX_GRAD_ERROR})
    return rows


def fields() -> dict[str, Callable[[], nn.Module]]:
    """Each preset's teacher and default ternary student, built as ``spiknerf train`` builds them."""
    scene = SimpleNamespace(aabb=AABB)  # the builders read only the scene box
    fast, paper, student = PRESETS["fast"], PRESETS["paper"], StudentSettings()
    return {"fast teacher (NGPField)": lambda: fast.teacher(scene),
            "fast student (SpikingNGPField)": lambda: fast.student(scene, student),
            "paper teacher (NeRFField)": lambda: paper.teacher(scene),
            "paper student (SpikingNeRFField)": lambda: paper.student(scene, student)}


def sample_inputs(n: int, seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(n, 3, generator=gen) * 2 - 1
    dirs = nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    return points, dirs


def lively(model: nn.Module) -> nn.Module:
    """A freshly initialised hash table holds ±1e-4, so fast fields would compare near-constant outputs:
    spread it as training does."""
    if hasattr(model, "encoding") and hasattr(model.encoding, "table"):
        with torch.no_grad():
            model.encoding.table.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    return model


def check_fields() -> list[dict]:
    rows = []
    points, dirs = sample_inputs(8192, seed=2)
    for name, build in fields().items():
        torch.manual_seed(0)
        model = lively(build()).eval()
        with torch.no_grad():
            sigma_cpu, rgb_cpu = model(points, dirs)
            sigma_cuda, rgb_cuda = model.to(CUDA)(points.to(CUDA), dirs.to(CUDA))
        sigma_err, rgb_err = relative_error(sigma_cuda.cpu(), sigma_cpu), relative_error(rgb_cuda.cpu(), rgb_cpu)
        # a spike that flips on a threshold moves one sample's output, so students are held to a looser bound
        bound = 1e-2 if "student" in name else 1e-4
        rows.append({"check": f"{name} CUDA vs CPU", "sigma rel. error": sigma_err, "rgb rel. error": rgb_err,
                     "ok": sigma_err <= bound and rgb_err <= bound})
    return rows


def check_fold() -> list[dict]:
    rows = []
    points, dirs = sample_inputs(8192, seed=3)
    points, dirs = points.to(CUDA), dirs.to(CUDA)
    for name, build in fields().items():
        if "student" not in name:
            continue
        torch.manual_seed(0)
        student = lively(build()).to(CUDA).eval()
        offsets = calibrate_offsets(student, points, dirs)
        folded = reparameterize(student, offsets=offsets, inputs=(points, dirs))
        with torch.no_grad():
            ref, out = student(points, dirs), folded(points, dirs)
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, out, strict=True))
        rates = count_ops(student, (points, dirs)).firing_rate.values()
        rows.append({"check": f"{name} folded vs training form, CUDA", "max abs diff": diff,
                     "mean firing rate": sum(rates) / len(rates), "ok": diff <= MAX_FOLD_DIFF})
    return rows


def cuda_ms(fn: Callable[[], None], repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats * 1000


def time_cuda() -> list[dict]:
    rows = []
    x = torch.randn(2, 65536, 64, device=CUDA, requires_grad=True)
    for kind in ("binary", "ternary"):
        neuron = make_neuron(kind, decay_input=False)
        rows.append({"timing": f"neuron {kind} [2, 65536, 64] forward+backward",
                     "ms": cuda_ms(lambda n=neuron: n(x).sum().backward())})
    points, dirs = (t.to(CUDA) for t in sample_inputs(8192, seed=4))
    for name, build in fields().items():
        model = lively(build()).to(CUDA).train()

        def step(m: nn.Module = model) -> None:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                sigma, rgb = m(points, dirs)
                loss = sigma.float().mean() + rgb.float().mean()
            loss.backward()

        rows.append({"timing": f"{name} forward+backward, 8192 samples, bf16", "ms": cuda_ms(step)})
    return rows


def worst_cases(checks: list[dict]) -> list[dict]:
    """One row per kind of check: its worst value over all the cases checked."""
    neurons = [r for r in checks if r["check"].startswith("neuron")]
    fields_ = [r for r in checks if "CUDA vs CPU" in r["check"] and not r["check"].startswith("neuron")]
    folds = [r for r in checks if "folded" in r["check"]]
    return [
        {"check": "neuron binary / ternary / signed-ternary, hard and soft reset, [2, 65536, 64]: spikes CUDA vs CPU",
         "measure": "share of mismatched spikes", "worst": max(r["spike mismatch"] for r in neurons), "detail": None},
        {"check": "the same: input gradients", "measure": "relative error",
         "worst": max(r["grad rel. error"] for r in neurons), "detail": None},
        {"check": "fields (fast and paper teacher and student), same weights, float32: density and colour",
         "measure": "relative error", "worst": max(max(r["sigma rel. error"], r["rgb rel. error"]) for r in fields_),
         "detail": None},
        {"check": "folded (addition-only) student vs training form on CUDA, fast and paper preset",
         "measure": "max abs diff", "worst": max(r["max abs diff"] for r in folds),
         "detail": "mean firing rate " + " / ".join(f"{r['mean firing rate']:.3f}" for r in folds)},
    ]


def show(rows: list[dict]) -> None:
    for r in rows:
        print("  ".join(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-results", action="store_true", help="print only; write no results file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("error: no CUDA device", file=sys.stderr)
        sys.exit(2)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    checks = check_neurons() + check_fields() + check_fold()
    timings = time_cuda()
    show(checks)
    show(timings)
    failed = [r["check"] for r in checks if not r["ok"]]
    if not args.no_results:
        env = "SPIKNERF_COMPILE=0 " if os.environ.get("SPIKNERF_COMPILE") == "0" else ""
        prov = provenance(f"{env}python scripts/check_cuda.py", device="cuda")
        write_results(Results(table="cuda_checks", rows=worst_cases(checks), summary={"all_passed": not failed},
                              **prov))
        write_results(Results(table="cuda_timing", rows=[{"what": r["timing"], "ms": r["ms"]} for r in timings],
                              **prov))
        regenerate()
    print("FAILED: " + "; ".join(failed) if failed else "all checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
