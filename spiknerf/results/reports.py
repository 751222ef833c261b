"""Rows of the results tables, built from the records the jobs write (plain dicts, no models).

The drivers in ``scripts/`` run the jobs; these functions turn the jobs' JSON
records (``spiknerf bench classify --json``, ``spiknerf bench temporal --json``,
a run's ``metrics.json``) into the rows and summaries that
:mod:`spiknerf.results.tables` writes. Percentages are stored as percent, times
as the unit the column names.
"""

from __future__ import annotations

import statistics
from typing import Any

Record = dict[str, Any]


def classify_row(method: str, label: str, r: Record) -> dict[str, Any]:
    """One method on one data set (a ``spiknerf bench classify`` record)."""
    return {"method": method, "label": label, "accuracy": 100 * r["accuracy"], "accuracy_std": 100 * r["accuracy_std"],
            "accuracy_per_seed": [100 * a for a in r["accuracy_per_seed"]], "train_s": r["train_seconds"],
            "peak_memory_mb": r["peak_memory_mb"], "bits_per_weight": r["bits_per_weight"],
            "sops_per_sample": r["sops_per_sample"]}


def memory_row(method: str, by_T: dict[int, Record]) -> dict[str, Any]:
    """Peak and saved-for-backward training memory of one method at each T (one-epoch records)."""
    peak = {str(t): r["peak_memory_mb"] for t, r in by_T.items()}
    saved = {str(t): r["extra"]["saved_tensor_mb"] for t, r in by_T.items()}
    lo, hi = min(by_T), max(by_T)
    return {"method": method, "peak_mb": peak, "peak_ratio": peak[str(hi)] / peak[str(lo)],
            "saved_mb": saved, "saved_ratio": saved[str(hi)] / saved[str(lo)]}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def peer_row(dataset: str, seeds: list[list[float]]) -> dict[str, Any]:
    """The lif network against its SpikingJelly twin; per seed ``[our accuracy, theirs, our s/epoch, theirs]``."""
    cols = list(zip(*seeds, strict=True))
    row: dict[str, Any] = {"dataset": dataset}
    for key, values, scale in (("ours_accuracy", cols[0], 100), ("spikingjelly_accuracy", cols[1], 100),
                               ("ours_s_per_epoch", cols[2], 1), ("spikingjelly_s_per_epoch", cols[3], 1)):
        row[key], row[key + "_std"] = (scale * v for v in mean_std(list(values)))
    return row


TEMPORAL_METRICS = (  # (task, key, label)
    ("pattern", "nmse", "pattern: NMSE (lower is better)"),
    ("dms", "accuracy", "dms: accuracy, trained delays"),
    ("dms", "accuracy_long_delay", "dms: accuracy, delays twice as long"),
    ("vowels", "accuracy", "vowels: accuracy"),
    ("smnist", "accuracy", "smnist: accuracy"),
)


def _scale(key: str) -> float:
    return 1.0 if key == "nmse" else 100.0


def temporal_rows(results: dict[tuple[str, str], Record], neurons: tuple[str, ...],
                  metrics: tuple[tuple[str, str, str], ...] = TEMPORAL_METRICS) -> list[dict[str, Any]]:
    """One row per (task, metric), one mean ± std per neuron."""
    rows = []
    for task, key, label in metrics:
        if (task, neurons[0]) not in results:
            continue
        row: dict[str, Any] = {"task": task, "metric": key, "label": label}
        for n in neurons:
            r = results[task, n]
            row[n], row[n + "_std"] = _scale(key) * r[key], _scale(key) * r[key + "_std"]
        rows.append(row)
    return rows


def temporal_noise_rows(results: dict[tuple[str, str], Record], tasks: tuple[str, ...],
                        neurons: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        scale = _scale("nmse" if task == "pattern" else "accuracy")
        for level in results[task, neurons[0]]["noise"]:
            row: dict[str, Any] = {"task": task, "level": float(level)}
            for n in neurons:
                cell = results[task, n]["noise"][level]
                row[n], row[n + "_std"] = scale * cell["mean"], scale * cell["std"]
            rows.append(row)
    return rows


def temporal_cost_rows(results: dict[tuple[str, str], Record], tasks: tuple[str, ...],
                       neurons: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        row: dict[str, Any] = {"task": task}
        for n in neurons:
            row[n + "_train_s"] = results[task, n]["train_seconds"]
            row[n + "_memory_mb"] = results[task, n]["peak_memory_mb"]
        row["hetsyn_vs_lif_memory"] = row["hetsyn_memory_mb"] / row["lif_memory_mb"]
        rows.append(row)
    return rows


def temporal_tau_rows(results: dict[tuple[str, str], Record], tasks: tuple[str, ...],
                      initial: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """hetsyn's learned synaptic time constants (mean over seeds of each percentile)."""
    rows = []
    for task in tasks:
        t = results[task, "hetsyn"]["tau_synapse"]
        rows.append({"task": task, "median": t["median"]["mean"], "p10": t["p10"]["mean"], "p90": t["p90"]["mean"],
                     "max": t["max"]["mean"], "initial_low": initial[task][0], "initial_high": initial[task][1]})
    return rows


def spiknerf_row(label: str, b: Record, teacher: Record) -> dict[str, Any]:
    """One model of a Spik-NeRF table from its ``metrics.json`` block; ratios against ``teacher``'s block."""
    return {
        "model": label, "psnr": b["psnr"], "ssim": b["ssim"], "macs_per_sample": b["macs_per_sample"],
        "sops_per_sample": b["sops_per_sample"], "pj_per_sample": b["energy_pj_per_sample"],
        "ratio_per_sample": b["energy_pj_per_sample"] / teacher["energy_pj_per_sample"],
        **{f"ratio_{form}": (b[form]["energy_pj_per_sample"] / teacher["energy_pj_per_sample"] if form in b else None)
           for form in ("paper_fold", "training_form")},
        "samples_per_ray": b["samples_per_ray"], "pj_per_ray": b["energy_pj_per_ray"],
        "ratio_per_ray": b["energy_pj_per_ray"] / teacher["energy_pj_per_ray"], "train_s": b["train_seconds"],
        "ms_per_step": 1000 / b["steps_per_second"], "us_per_sample": 1e6 / b["train_samples_per_second"],
        "steps": b["steps"], **({"firing_rate": b["firing_rate"]} if b.get("firing_rate") else {}),
    }


TEACHER, BINARY, TERNARY, DISTILLED = "ANN (teacher)", "binary SNN, T=2", "ternary SNN, T=2", "ternary SNN + KD, T=2"
SPIKE_ONLY_BINARY = "binary SNN, T=2, spike-only colour"
SPIKE_ONLY_TERNARY = "ternary SNN, T=2, spike-only colour"


def distilled_width_label(color_hidden: int) -> str:
    """The row of a distilled ternary student whose colour layers are ``color_hidden`` wide (``--color-hidden``)."""
    return f"{DISTILLED}, colour width {color_hidden}"


def add_seeds(rows: list[dict[str, Any]], by_seed: dict[int, list[dict[str, Any]]]) -> None:
    """Give each row its PSNR per seed and their mean (rows matched by model)."""
    for row in rows:
        psnrs = {str(seed): next(r["psnr"] for r in seed_rows if r["model"] == row["model"])
                 for seed, seed_rows in by_seed.items()}
        row["psnr_by_seed"], row["psnr_mean"] = psnrs, statistics.fmean(psnrs.values())


def spiknerf_summary(rows: list[dict[str, Any]], wall_seconds: float) -> dict[str, Any]:
    """PSNR differences on the mean over seeds (or the one run), the distilled student's step ratios, and the
    whole default run's wall time; for each narrower distilled student (a row with ``color_hidden``), its PSNR
    difference to the teacher."""
    by = {r["model"]: r for r in rows}

    def psnr(model: str) -> float:
        return by[model].get("psnr_mean", by[model]["psnr"])

    teacher, student = by[TEACHER], by[DISTILLED]
    summary = {"default_run_wall_min": wall_seconds / 60,
               "kd_minus_teacher_db": psnr(DISTILLED) - psnr(TEACHER),
               "ternary_minus_binary_db": psnr(TERNARY) - psnr(BINARY),
               "student_step_ratio": student["ms_per_step"] / teacher["ms_per_step"],
               "student_step_ratio_per_sample": student["us_per_sample"] / teacher["us_per_sample"]}
    if SPIKE_ONLY_BINARY in by and SPIKE_ONLY_TERNARY in by:
        summary["spike_only_ternary_minus_binary_db"] = psnr(SPIKE_ONLY_TERNARY) - psnr(SPIKE_ONLY_BINARY)
    widths = {str(r["color_hidden"]): psnr(r["model"]) - psnr(TEACHER) for r in rows if "color_hidden" in r}
    if widths:
        summary["kd_minus_teacher_db_by_color_hidden"] = widths
    return summary


def default_run_row(scene: str, metrics: Record, wall_seconds: float) -> dict[str, Any]:
    """The default run (teacher, then the distilled student) from its ``metrics.json``."""
    t, s = metrics["teacher"], metrics["student"]
    t_ms, s_ms = 1000 / t["steps_per_second"], 1000 / s["steps_per_second"]
    return {"scene": scene, "teacher_psnr": t["psnr"], "student_psnr": s["psnr"], "student_ssim": s["ssim"],
            "student_minus_teacher_db": s["psnr"] - t["psnr"], "teacher_ms_per_step": t_ms, "student_ms_per_step": s_ms,
            "step_ratio": s_ms / t_ms, "step_ratio_per_sample": t["train_samples_per_second"]
            / s["train_samples_per_second"], "samples_per_ray": s["samples_per_ray"],
            "pj_per_sample": s["energy_pj_per_sample"],
            "ratio_per_sample": s["energy_pj_per_sample"] / t["energy_pj_per_sample"], "wall_min": wall_seconds / 60}
