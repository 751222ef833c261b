"""How each results table is written in the docs: its columns and the lines derived from its rows.

One :class:`~spiknerf.results.render.TableSpec` per file in ``docs/results/``
(``TABLES``), and the README's headline rows (``HEADLINE``). Derived lines
(ratios, speed-ups) are computed here from the numbers in the file, never typed.
"""

from __future__ import annotations

from spiknerf.results.render import Column, Headline, Row, TableSpec, number
from spiknerf.results.store import Results

TEMPORAL_NEURONS = ("lif", "alif", "hetneuron", "hetsyn")


def _temporal_fmt(row: Row) -> str:
    return ".4f" if row.get("metric") == "nmse" or row.get("task") == "pattern" else ".1f"


def _per_neuron(first: Column) -> list[Column]:
    def cell(n: str):
        return lambda row: number(row.get(n), _temporal_fmt(row), row.get(n + "_std"))

    return [first, *(Column(n, n, cell(n)) for n in TEMPORAL_NEURONS)]


def _cost_cell(n: str):
    return lambda row: f"{number(row[n + '_train_s'], '.0f')} s, {number(row[n + '_memory_mb'], '.2f')} MB"


def _tau_range(row: Row) -> str:
    return f"[{number(row['initial_low'], '.1f')}, {number(row['initial_high'], '.0f')}]"


CLASSIFY_COLUMNS = [
    Column("label", "method"),
    Column("accuracy", "accuracy %", ".2f", std="accuracy_std"),
    Column("train_s", "s a seed", ".0f"),
    Column("peak_memory_mb", "peak MB", ".1f"),
    Column("bits_per_weight", "bits/weight", ".3g"),
    Column("sops_per_sample", "SOPs/sample", ",.0f"),
]


def _memory_columns(r: Results) -> list[Column]:
    ts = [str(t) for t in r.settings.get("T", [2, 8])]
    cols = [Column("method", "method")]
    for kind in ("peak", "saved"):
        cols += [Column(f"{kind}_{t}", f"{kind}, T = {t}", lambda row, k=kind, t=t: number(row[f"{k}_mb"][t], ".2f"))
                 for t in ts]
        cols.append(Column(f"{kind}_ratio", "ratio", ".2f", suffix=" x"))
    return cols


def _step_ratio(r: Results) -> list[str]:
    by_phase = {row["phase"]: row for row in r.rows}
    if not {"teacher", "student"} <= by_phase.keys():
        return []
    t, s = by_phase["teacher"], by_phase["student"]
    lines = [f"Student step / teacher step, medians: {number(s['wall_ms'] / t['wall_ms'], '.2f')} x in wall time, "
             f"{number(s['cpu_ms'] / t['cpu_ms'], '.2f')} x in CPU time."]
    if "wall_ms_mean" in t:
        lines.append(f"Means (the teacher's grid refreshes spread over its steps): "
                     f"{number(s['wall_ms_mean'] / t['wall_ms_mean'], '.2f')} x in wall time, "
                     f"{number(s['cpu_ms_mean'] / t['cpu_ms_mean'], '.2f')} x in CPU time.")
    pairs = r.summary
    if pairs:
        lines.append(f"Per pair of adjacent blocks (the student's block median over the teacher's, "
                     f"{pairs['pairs']} pairs): median {number(pairs['pair_ratio_median'], '.2f')} x, quartiles "
                     f"{number(pairs['pair_ratio_q1'], '.2f')} to {number(pairs['pair_ratio_q3'], '.2f')}, from "
                     f"{number(pairs['pair_ratio_min'], '.2f')} to {number(pairs['pair_ratio_max'], '.2f')}.")
    for width, w in pairs.get("by_color_hidden", {}).items():
        lines.append(f"A student with colour width {width}, its blocks over the same round's teacher block: median "
                     f"{number(w['pair_ratio_median'], '.2f')} x, quartiles {number(w['pair_ratio_q1'], '.2f')} to "
                     f"{number(w['pair_ratio_q3'], '.2f')}.")
    return lines


def _ltmd_extra(r: Results) -> list[str]:
    s = r.summary
    if not s:
        return []
    return [f"Per seed, ltmd − lif: mean {number(s['ltmd_minus_lif_mean'], '+.2f')} points (std "
            f"{number(s['ltmd_minus_lif_std'], '.2f')}, from {number(s['ltmd_minus_lif_min'], '+.1f')} to "
            f"{number(s['ltmd_minus_lif_max'], '+.1f')}); ltmd ahead on {s['seeds_ltmd_ahead']} seeds, level on "
            f"{s['seeds_level']}, behind on {s['seeds_ltmd_behind']}; {number(s['sops_fewer_pct'], '.0f')} % fewer "
            "synaptic operations per sample."]


def _at_most_2_decimals(key: str):
    """Two decimals, trailing zeros dropped: a figure recorded with one decimal is not shown with two."""
    def cell(row: Row) -> str:
        values = row.get(key)
        values = values if isinstance(values, list) else [] if values is None else [values]
        return " ".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in values)
    return cell


VALIDATION_COLUMNS = [
    Column("dataset", "data set"),
    Column("model", "model and setting"),
    Column("accuracy", "validation accuracy %", _at_most_2_decimals("accuracy")),
    Column("per_split", "per split %", _at_most_2_decimals("per_split")),
]


def _shape(row: Row) -> str:
    return " × ".join(str(v) for v in row["shape"])


def _speed_columns(r: Results) -> list[Column]:
    threads = [str(t) for t in r.settings.get("threads", [1, 2])]
    return [Column("shape", "T × B × N", _shape), Column("neuron", "neuron"),
            *(Column(f"ms_{t}", f"fwd+bwd ms, {t} thr", lambda row, t=t: number(row["fwd_bwd_ms"].get(t), ".1f"))
              for t in threads),
            Column("fwd_ms", "fwd ms", ".1f"), Column("saved_mb", "saved MB", ".1f"),
            Column("rss_growth_mb", "peak RSS growth MB", ".0f", missing="n/a"), Column("firing", "firing", ".3f"),
            Column("agree_pct", "spikes = binary", ".4f", suffix="%", missing="—"),
            Column("grad_diff", "max Δ grad", ".1e", missing="—")]


OURS = ("spiknerf binary", "spiknerf ternary")


def _speedups(r: Results) -> list[str]:
    """Ours against the fastest peer, at one thread and at each neuron's best thread count."""
    lines = []
    shapes = []
    for row in r.rows:
        if row["shape"] not in shapes:
            shapes.append(row["shape"])
    for shape in shapes:
        rows = {row["neuron"]: row for row in r.rows if row["shape"] == shape}
        peers = [n for n in rows if n not in OURS]
        if not peers:
            continue
        picks = [("1 thread", lambda row: row["fwd_bwd_ms"].get("1")),
                 ("best thread count", lambda row: min(v for v in row["fwd_bwd_ms"].values() if v is not None))]
        for label, pick in picks:
            timed = [(pick(rows[n]), n) for n in peers if pick(rows[n]) is not None]
            if not timed:
                continue
            fastest, who = min(timed)
            for ours in OURS:
                mine = pick(rows[ours]) if ours in rows else None
                if mine:
                    lines.append(f"- {_shape(rows[ours])}, {label}: {ours} {mine:.1f} ms vs {who} {fastest:.1f} ms: "
                                 f"{fastest / mine:.2f}x")
    return (["Ours against the fastest peer (x > 1: ours faster; the ternary neuron is compared with the peers' "
             "binary LIF, as they have no ternary one):", "", *lines] if lines else [])


def _to_psnr(target: str):
    return lambda row: number(row["seconds_to_psnr"].get(target), ".0f", missing="not reached")


def _teacher_columns(r: Results) -> list[Column]:
    targets = list(r.rows[0]["seconds_to_psnr"]) if r.rows else []
    return [Column("config", "scene"), Column("steps", "steps", "d"), Column("train_s", "train s", ".0f"),
            Column("steps_per_s", "steps/s", ".1f"), Column("rays_per_s", "rays/s", ".0f"),
            *(Column(f"t{t}", f"s to {t} dB", _to_psnr(t)) for t in targets),
            Column("psnr", "test PSNR", ".2f"), Column("ssim", "SSIM", ".4f"),
            Column("samples_per_ray", "samples/ray", ".1f"), Column("peak_rss_mb", "peak RSS MB", ".0f"),
            Column("render_view_s", "render view s", ".3f"), Column("render_400_s", "render 400x400 s", ".2f")]


def _teacher_commands(r: Results) -> list[str]:
    return ["Per configuration:", "", *(f"- {row['config']}: `{row['command']}`" for row in r.rows)]


SPIKNERF_COLUMNS = [
    Column("model", "model"), Column("psnr", "test PSNR", ".2f"), Column("ssim", "SSIM", ".4f"),
    Column("macs_per_sample", "MACs/sample", ".0f"), Column("sops_per_sample", "SOPs/sample", ".0f"),
    Column("pj_per_sample", "pJ/sample", ".0f"), Column("ratio_per_sample", "x teacher (per sample)", ".3f"),
    Column("ratio_paper_fold", "x teacher, paper fold", ".3f"),
    Column("ratio_training_form", "x teacher, {0,1,2} form", ".3f"),
    Column("samples_per_ray", "samples/ray", ".1f"), Column("pj_per_ray", "pJ/ray", ".0f"),
    Column("ratio_per_ray", "x teacher (per ray)", ".3f"), Column("train_s", "train s", ".0f"),
    Column("ms_per_step", "ms/step", ".0f"), Column("us_per_sample", "µs/sample", ".1f"),
]


def _spiknerf_extra(r: Results) -> list[str]:
    lines = []
    seeds = [row["psnr_by_seed"] for row in r.rows if "psnr_by_seed" in row]
    if seeds and len(seeds[0]) > 1:
        names = list(seeds[0])
        lines += ["Test PSNR by seed (the table above is seed " + names[0] + "):", "",
                  "| model | " + " | ".join(f"seed {s}" for s in names) + " | mean |",
                  "|---|" + "---|" * (len(names) + 1),
                  *("| " + " | ".join([row["model"], *(number(row["psnr_by_seed"][s], ".2f") for s in names),
                                       number(row["psnr_mean"], ".2f")]) + " |" for row in r.rows), ""]
    for row in r.rows:
        if row.get("firing_rate"):
            lines += [f"Firing rates of the {row['model']} student (fraction of non-zero spikes per layer): "
                      + ", ".join(f"{k} {number(v, '.2f')}" for k, v in row["firing_rate"].items()), ""]
    s = r.summary
    if s:
        n = len(seeds[0]) if seeds else 1
        over = f" (PSNR differences: mean over {n} seeds)" if n > 1 else ""
        parts = [f"ternary + KD minus teacher {number(s['kd_minus_teacher_db'], '+.2f')} dB",
                 f"ternary minus binary {number(s['ternary_minus_binary_db'], '+.2f')} dB"]
        if "spike_only_ternary_minus_binary_db" in s:
            parts.append(f"with spike-only colour {number(s['spike_only_ternary_minus_binary_db'], '+.2f')} dB")
        for width, diff in s.get("kd_minus_teacher_db_by_color_hidden", {}).items():
            parts.append(f"ternary + KD with colour width {width} minus teacher {number(diff, '+.2f')} dB")
        parts.append(f"distilled student's step {number(s['student_step_ratio'], '.2f')}x the teacher's "
                     f"({number(s['student_step_ratio_per_sample'], '.2f')}x per sample)")
        lines += [f"Derived{over}: " + "; ".join(parts) + ". Whole default run (teacher, student, evaluation, "
                  f"video): {number(s['default_run_wall_min'], '.1f')} min wall.", ""]
    return lines[:-1] if lines and lines[-1] == "" else lines


DEFAULT_RUN_COLUMNS = [
    Column("scene", "scene"), Column("teacher_psnr", "teacher PSNR", ".2f"),
    Column("student_psnr", "student PSNR", ".2f"), Column("student_ssim", "student SSIM", ".4f"),
    Column("student_minus_teacher_db", "student − teacher dB", "+.2f"),
    Column("ratio_per_sample", "student pJ/sample, x teacher", ".3f"),
    Column("samples_per_ray", "student samples/ray", ".1f"),
    Column("teacher_ms_per_step", "teacher ms/step", ".1f"), Column("student_ms_per_step", "student ms/step", ".1f"),
    Column("step_ratio", "step x teacher", ".2f"), Column("step_ratio_per_sample", "per sample x teacher", ".2f"),
    Column("wall_min", "whole run min", ".1f"),
]

REALPHOTOS_COLUMNS = [
    Column("scene", "scene"), Column("kind", "kind"), Column("steps", "steps a model"),
    Column("teacher_psnr", "teacher PSNR", ".2f"), Column("teacher_ssim", "teacher SSIM", ".4f"),
    Column("student_psnr", "student PSNR", ".2f"), Column("student_ssim", "student SSIM", ".4f"),
    Column("student_minus_teacher_db", "student − teacher dB", "+.2f"),
    Column("teacher_train_s", "teacher train s", ".0f"), Column("student_train_s", "student train s", ".0f"),
    Column("eval_during_training_s", "eval during training s", ".0f"),
    Column("samples_per_ray", "test samples/ray", ".1f"), Column("teacher_view_s", "teacher s/test view", ".1f"),
    Column("student_view_s", "student s/test view", ".1f"), Column("wall_min", "whole run min", ".1f"),
    Column("load", "load at start", ".1f", missing="–"),
    Column("others", "others' CPU", ".0%", missing="–"),
]

REALPHOTOS_APPEARANCE_COLUMNS = [
    Column("scene", "scene"), Column("run", "run"), Column("split", "views"), Column("views", "n"),
    Column("psnr", "teacher PSNR", ".2f"), Column("fitted_psnr", "after each view's gain + offset", ".2f"),
    Column("fitted_minus_psnr_db", "gain dB", "+.2f"), Column("gain_spread_pct", "gain spread %", ".1f"),
    Column("gain_range_pct", "gain range %", ".1f"), Column("offset_spread", "offset spread", ".3f"),
]

def _registered(row: Row) -> str:
    return f"{row['registered']} of {row['total']}"


CAPTURE_POSE_COLUMNS = [
    Column("capture", "capture"), Column("registered", "registered", _registered),
    Column("reprojection_px", "reprojection px", ".2f"), Column("points", "3D points", ",.0f"),
    Column("rotation_median_deg", "rotation median °", ".3f"), Column("rotation_max_deg", "max °", ".3f"),
    Column("position_median_pct", "position median %", ".3f"), Column("position_max_pct", "max %", ".3f"),
    Column("scene_kind", "scene kind"), Column("process_s", "process s", ".0f"),
]


def _capture_quality_extra(r: Results) -> list[str]:
    s = r.summary
    lost = [f"{phase} {number(s[f'{phase}_db_lost'], '+.2f')} dB" for phase in ("teacher", "student")
            if f"{phase}_db_lost" in s]
    return [f"Lost to estimated cameras: {', '.join(lost)}."] if lost else []


CUDA_CHECK_COLUMNS = [Column("check", "check"), Column("measure", "measure"),
                      Column("worst", "worst case", ".2g"), Column("detail", "detail")]


def _size(prefix: str):
    return lambda row: f"{number(row[prefix + '_width'], '.0f')} × {number(row[prefix + '_height'], '.0f')}"


VIEWER_SPEED_COLUMNS = [
    Column("model", "model"),
    Column("moving_fps", "frames/s moving", ".1f"),
    Column("moving_size", "frame moving", _size("moving")),
    Column("full_size", "frame still", _size("full")),
    Column("full_seconds", "s to the still frame", ".2f"),
    Column("threads", "threads"),
]
VIEWER_TRAINING_COLUMNS = [
    Column("setup", "training"),
    Column("steps_per_second", "steps/s (median)", ".2f"),
    Column("runs", "steps/s of each run", ".2f"),
    Column("slowdown_pct", "slower than without, %", ".1f"),
    Column("cpu_seconds", "CPU s (median)", ".1f"),
    Column("cpu_runs", "CPU s of each run", ".1f"),
    Column("cpu_extra_pct", "more CPU than without, %", ".1f"),
]


MESH_TARGET_PCT = 1.0  # issue 25's target: the most mean Chamfer distance allowed, in percent of the extent


def _mesh_target(r: Results) -> list[str]:
    lines = []
    for row in r.rows:
        if row["resolution"] == 256 and row.get("cull", "seen") == "seen":
            met = "met" if row["chamfer_pct"] <= MESH_TARGET_PCT else "not met"
            lines.append(f"Target (Chamfer ≤ {MESH_TARGET_PCT:g} % of the extent at 256³), {row['model']}: "
                         f"{number(row['chamfer_pct'], '.2f')} %, {met}.")
    return lines


TABLES: dict[str, TableSpec] = {
    "spiknerf_default_run": TableSpec(DEFAULT_RUN_COLUMNS),
    "realphotos": TableSpec(REALPHOTOS_COLUMNS),
    "realphotos_appearance": TableSpec(REALPHOTOS_APPEARANCE_COLUMNS, show_commands=False),
    "spiknerf_fast_lego100": TableSpec(SPIKNERF_COLUMNS, _spiknerf_extra),
    "spiknerf_fast_builtin": TableSpec(SPIKNERF_COLUMNS, _spiknerf_extra),
    "spiknerf_paper_lego100": TableSpec(SPIKNERF_COLUMNS, _spiknerf_extra),
    "spiknerf_mlp_lego100": TableSpec(SPIKNERF_COLUMNS, _spiknerf_extra),
    "nerf_teacher": TableSpec(_teacher_columns, _teacher_commands),
    "neuron_speed": TableSpec(_speed_columns, _speedups),
    "classify_digits": TableSpec(CLASSIFY_COLUMNS),
    "classify_mnist5k": TableSpec(CLASSIFY_COLUMNS),
    "classify_memory": TableSpec(_memory_columns),
    "classify_spikingjelly": TableSpec([
        Column("dataset", "data set"),
        Column("ours_accuracy", "ours: accuracy %", ".2f", std="ours_accuracy_std"),
        Column("spikingjelly_accuracy", "SpikingJelly: accuracy %", ".2f", std="spikingjelly_accuracy_std"),
        Column("ours_s_per_epoch", "ours: s/epoch", ".2f", std="ours_s_per_epoch_std"),
        Column("spikingjelly_s_per_epoch", "SpikingJelly: s/epoch", ".2f", std="spikingjelly_s_per_epoch_std"),
    ]),
    "classify_ltmd_10seeds": TableSpec([
        Column("method", "method"), Column("accuracy", "accuracy %", ".2f", std="accuracy_std"),
        Column("accuracy_per_seed", "per seed %", ".1f"), Column("sops_per_sample", "SOPs/sample", ",.0f"),
        Column("train_s", "train s a seed", ".0f"),
    ], _ltmd_extra),
    "validation_ltmd": TableSpec(VALIDATION_COLUMNS),
    "validation_epochs": TableSpec(VALIDATION_COLUMNS),
    "validation_vowels": TableSpec(VALIDATION_COLUMNS),
    "temporal": TableSpec(_per_neuron(Column("label", "task: metric"))),
    "temporal_noise": TableSpec(_per_neuron(Column("level", "task: noise level",
                                                   lambda row: f"{row['task']}: {number(row['level'])}"))),
    "temporal_small": TableSpec(_per_neuron(Column("label", "task"))),
    "temporal_cost": TableSpec([Column("task", "task"), *(Column(n, n, _cost_cell(n)) for n in TEMPORAL_NEURONS),
                                Column("hetsyn_vs_lif_memory", "hetsyn ÷ lif memory", ".2f", suffix="x")]),
    "temporal_rss": TableSpec([Column("model", "model"), Column("rss_growth_mb", "peak RSS growth MB", ".0f"),
                               Column("vs_lif", "x lif", ".2f", suffix="x")]),
    "temporal_tau": TableSpec([Column("task", "task"), Column("median", "median", ".1f"),
                               Column("p10", "10th percentile", ".1f"), Column("p90", "90th percentile", ".1f"),
                               Column("max", "max", ".0f"), Column("initial", "initial range", _tau_range)]),
    "capture_poses": TableSpec(CAPTURE_POSE_COLUMNS),
    "capture_time": TableSpec([Column("what", "photos"), Column("seconds", "spiknerf process s", ".1f"),
                               Column("cpu_s", "CPU s (all threads)", ".1f"),
                               Column("registered", "registered", _registered)]),
    "capture_quality": TableSpec([
        Column("cameras", "cameras"), Column("test_views", "test views"), Column("teacher_psnr", "teacher PSNR", ".2f"),
        Column("student_psnr", "student PSNR", ".2f"), Column("teacher_ssim", "teacher SSIM", ".4f"),
        Column("student_ssim", "student SSIM", ".4f"), Column("steps", "steps a model", ".0f"),
    ], _capture_quality_extra),
    "capture_contraction": TableSpec([
        Column("space", "space beyond the box"), Column("test_views", "test views"),
        Column("teacher_psnr", "teacher PSNR", ".2f"), Column("student_psnr", "student PSNR", ".2f"),
        Column("teacher_ssim", "teacher SSIM", ".4f"), Column("student_ssim", "student SSIM", ".4f"),
        Column("steps", "steps a model", ".0f"), Column("figure", "frame"),
    ]),
    "viewer_speed": TableSpec(VIEWER_SPEED_COLUMNS),
    "viewer_training": TableSpec(VIEWER_TRAINING_COLUMNS),
    "export_mesh": TableSpec([
        Column("model", "model"), Column("cull", "cull"), Column("resolution", "grid", ".0f", suffix="³"),
        Column("chamfer", "Chamfer (scene units)", ".4f"), Column("chamfer_pct", "% of extent", ".2f"),
        Column("accuracy", "accuracy", ".4f"), Column("completeness", "completeness", ".4f"),
        Column("normal_consistency", "normal consistency", ".3f"), Column("threshold", "threshold σ", ".3g"),
        Column("faces", "faces", ",.0f"), Column("seconds", "export s", ".1f"),
        Column("rss_growth_mb", "peak RSS growth MB", ".0f"),
    ], _mesh_target),
    "export_nir": TableSpec([
        Column("student", "student"), Column("neuron", "neuron"), Column("reset", "reset"),
        Column("spikes", "spikes compared", ",.0f"), Column("mismatches", "differ", ",.0f"),
        Column("agreement_pct", "agree %", ".4f"), Column("readout_max_abs_diff", "readout max abs diff", ".3g"),
        Column("identical", "identical", lambda row: "yes" if row["identical"] else "no"),
    ]),
    "cpu_contention": TableSpec([
        Column("condition", "machine"), Column("setup", "threading"),
        Column("seconds", "training s (upper median)", ".1f"),
        Column("tries", "training s of each process", ".1f"), Column("x_idle", "x idle", ".2f"),
        Column("x_best_idle", "x fastest idle", lambda row: number(row.get("x_best_idle"), ".2f")),
        Column("thread_changes", "thread changes",
               lambda row: " ".join(str(n) for n in row["thread_changes"]) if "thread_changes" in row else "–"),
    ]),
    "cpu_idle": TableSpec([
        Column("setup", "threading"), Column("seconds", "training s (upper median)", ".1f"),
        Column("tries", "training s of each process", ".1f"),
        Column("x_best_idle", "x fastest", lambda row: number(row.get("x_best_idle"), ".2f")),
    ]),
    "cpu_default_run": TableSpec([
        Column("threads", "threads"), Column("wait", "idle threads wait"),
        *(Column(stage, f"{stage} s", lambda row, s=stage: number(row["stages_s"].get(s), ".0f"))
          for stage in ("setup", "teacher", "student", "evaluation", "video")),
        Column("wall_min", "whole run min", lambda row: number(row["wall_s"] / 60, ".1f")),
        Column("teacher_psnr", "teacher PSNR", ".2f"), Column("student_psnr", "student PSNR", ".2f"),
        Column("student_minus_teacher_db", "student − teacher dB", "+.2f"),
        Column("teacher_ms_per_step", "teacher ms/step", ".1f"),
        Column("student_ms_per_step", "student ms/step", ".1f"),
        Column("step_x_teacher", "step x teacher", ".2f"),
        Column("energy_ratio_per_sample", "student energy x teacher", ".3f", missing="—"),
        Column("thread_changes", "thread changes", ".0f", missing="—"),
    ]),
    "cpu_step_cost": TableSpec([
        Column("phase", "model"), Column("steps", "timed steps"), Column("wall_ms", "wall ms/step, median", ".1f"),
        Column("cpu_ms", "CPU ms/step, median", ".1f"),
        Column("wall_ms_mean", "wall ms/step, mean", ".1f", missing="—"),
        Column("cpu_ms_mean", "CPU ms/step, mean", ".1f", missing="—"),
        Column("samples_per_step", "samples/step", ",.0f"),
    ], extra=_step_ratio),
    "cpu_budgets": TableSpec([
        Column("teacher_steps", "teacher steps"), Column("student_steps", "student steps"),
        Column("seed", "seed", missing="0"),
        Column("teacher_psnr", "teacher PSNR", ".2f"), Column("student_psnr", "student PSNR", ".2f"),
        Column("student_minus_teacher_db", "student − teacher dB", "+.2f"),
        Column("teacher_ssim", "teacher SSIM", ".4f"), Column("student_ssim", "student SSIM", ".4f"),
        Column("teacher_train_s", "teacher training s, 1 thread", ".0f"),
        Column("student_train_s", "student training s, 1 thread", ".0f"),
    ]),
    "ddp_correctness": TableSpec([
        Column("phase", "model"), Column("psnr_1", "PSNR, 1 process", ".3f"),
        Column("psnr_2", "PSNR, 2 processes", ".3f"), Column("psnr_diff", "difference dB", "+.3f"),
        Column("seed_diff", "1 process, next seed: difference dB", "+.3f"),
        Column("weights_max_abs_diff", "weights max abs diff", ".2g"),
        Column("grid_cells_differing", "grid cells differing (1 vs 2)", lambda row: f"{row['grid_cells_differing']}"
               f" of {row['grid_cells']}"),
        Column("ranks_identical", "grid + weights bit-identical across ranks",
               lambda row: "yes" if row["ranks_identical"] else "no"),
    ]),
    "ddp_loss_curve": TableSpec([
        Column("phase", "model"), Column("step", "step"), Column("loss_1", "training loss, 1 process", ".5f"),
        Column("loss_2", "training loss, 2 processes", ".5f"),
        Column("loss_1_next_seed", "1 process, next seed", ".5f"),
    ]),
    "ddp_throughput": TableSpec([
        Column("layout", "processes x threads"), Column("steps_per_second", "teacher steps/s (upper median)", ".2f"),
        Column("tries", "steps/s of each run", ".2f"), Column("x_1x2", "x (1 process x 2 threads)", ".2f"),
    ]),
    "ddp_comm": TableSpec([
        Column("what", "sent per step"), Column("bytes_per_step", "bytes", ",.0f"),
        Column("seconds_per_step", "ms alone (2 gloo processes)", lambda row: number(1e3 * row["seconds_per_step"],
                                                                                      ".3g")),
    ]),
    "ddp_scaling": TableSpec([
        Column("what", "all-reduce"), Column("link", "assumed link"), Column("gpus", "GPUs"),
        Column("seconds_per_step", "ms a step (ring)", lambda row: number(1e3 * row["seconds_per_step"], ".3g")),
    ]),
    "cuda_checks": TableSpec(CUDA_CHECK_COLUMNS),
    "cuda_timing": TableSpec([Column("what", "forward + backward"), Column("ms", "ms", ".3g")]),
}


def _idle_default_run(r: Results) -> str:
    # the machine in the cell: the same run takes minutes more or less on another CPU of two cores
    return number(r.rows[0]["wall_s"] / 60, ".1f") + f" min ({r.machine.get('cpu', 'CPU not recorded')})"


def _default_run_psnrs(r: Results) -> str:
    row = r.rows[0]
    return f"{number(row['student_psnr'], '.2f')} dB (teacher {number(row['teacher_psnr'], '.2f')} dB)"


def _mlp_lead(r: Results) -> str:
    n = len(next(iter(r.rows))["psnr_by_seed"])
    return f"{number(r.summary['ternary_minus_binary_db'], '+.2f')} dB (mean of {n} seeds)"


def _speedup(shape: list[int], ours: str, peer: str):
    def value(r: Results) -> str:
        rows = {row["neuron"]: row for row in r.rows if row["shape"] == shape}
        mine, theirs = rows[ours]["fwd_bwd_ms"]["1"], rows[peer]["fwd_bwd_ms"]["1"]
        return f"{theirs / mine:.1f}x faster"
    return value


HEADLINE: list[Headline] = [
    Headline("The default job end to end on lego at 100 x 100 (teacher, student, evaluation, video), idle 2-core CPU",
             "cpu_default_run", _idle_default_run),
    Headline("Its distilled ternary student's test PSNR", "cpu_default_run", _default_run_psnrs),
    Headline("Its student's energy per sample point, x the ANN teacher's", "cpu_default_run",
             lambda r: number(r.rows[0]["energy_ratio_per_sample"], ".3f") + "x"),
    Headline("Ternary over binary spikes where every hidden layer spikes (mlp preset, lego)",
             "spiknerf_mlp_lego100", _mlp_lead),
    Headline("The ternary neuron's forward + backward against SpikingJelly's LIF, 1 thread", "neuron_speed",
             _speedup([2, 65536, 64], "spiknerf ternary", "SpikingJelly LIFNode")),
]
