"""Real photographs: the default job (teacher, then the distilled ternary student) on the real captures at hand.

Scenes (``../shared/data/real``, see its README.md):

* ``cup-ff``: a forward-facing subset of the cup's photos, the 20 views whose optical axes lie tightest around
  their mean, at 504 x 378 (the size of an LLFF capture), written by this script into ``--runs`` first;
* ``fox``: instant-ngp's fox at 1/8 resolution (135 x 240), its lens distortion handled, and ``fox-pinhole``,
  the same photos with the lens coefficients taken out of ``transforms.json`` (rays as if pinhole);
* ``cup``: all 77 photos around the cup at 200 x 150 (``images_4/``).

Each scene is one ``spiknerf train`` in a fresh process, timed end to end: the default job as a user runs it
(video included), or ``--steps`` a model without the video (the object scenes' default budget does not fit the
shared CPU), the teacher alone with ``--teacher-only``; ``--threads N`` is passed on to it. Runs are kept, so
that scenes can be run one at a time, and a scene whose run already finished is not run again. ``--runs`` takes
several folders: new runs go to the first, and ``docs/results/realphotos.json`` gets a row for every finished run
in any of them (``--table-only``: write that table and nothing else):

    python scripts/bench_realphotos.py --only cup-ff
    python scripts/bench_realphotos.py --only fox cup --steps 300 --threads 1
    python scripts/bench_realphotos.py --only fox-pinhole --steps 300 --teacher-only --threads 1
    python scripts/bench_realphotos.py --table-only --runs runs/bench-realphotos /elsewhere/runs

Each scene run or named now also gets a frame in ``docs/images/``: its first test view, the photo beside what
the teacher and the student render (``realphotos-<scene>.png``), and for the fox the photo beside the teachers
with the lens handled and ignored (``realphotos-fox-lens.png``).

``--appearance`` trains nothing: it asks whether the photos need a per-photo appearance code
(:mod:`spiknerf.nerf.appearance`), from the teacher of each named scene's newest finished run, and writes
``docs/results/realphotos_appearance.json``:

    python scripts/bench_realphotos.py --appearance --only cup-ff fox cup --threads 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spiknerf.nerf.appearance import split_colour_fits, summary
from spiknerf.nerf.evaluate import render_split
from spiknerf.nerf.run import eval_background, load_model, open_scene, read_config
from spiknerf.paths import REAL_SCENES as REAL
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.store import code_version, others_share, watch

LENS_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
FORWARD_VIEWS, FORWARD_SIZE = 20, 504
SCENES = ("cup-ff", "fox", "fox-pinhole", "cup")
LABELS = {"cup-ff": "cup, forward-facing subset", "fox": "fox, lens distortion handled",
          "fox-pinhole": "fox, lens distortion ignored", "cup": "cup, all around"}
BENCH = "bench.json"
CONDITIONS = "each run in a fresh process, one after the other"
MERGED = ("a table of runs made earlier, each in a fresh process: each row's load column is the 1-minute load when "
          "its run started and its others' CPU column the share of one core that other processes used while it ran "
          "(–: not recorded); what follows is the machine's when the table was written, not the runs'")
IMAGES = Path("docs/images")
PANEL = 256  # frames' panels are at most this wide, so that the PNGs in the docs stay small


def forward_subset(src: Path, dst: Path, k: int, long_side: int) -> Path:
    """An LLFF folder of the ``k`` views of ``src`` whose optical axes lie tightest around their mean, their
    images area-downscaled to ``long_side`` pixels across (as PNGs of the same names), with the cameras of
    ``src``'s COLMAP model."""
    if (dst / "poses_bounds.npy").exists():
        return dst
    rows = np.load(src / "poses_bounds.npy")
    axes = rows[:, :15].reshape(-1, 3, 5)[:, :, 2]
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    best: tuple[float, list[int]] | None = None
    for i in range(len(axes)):  # the k axes nearest each one, kept if their spread is the least so far
        pick = np.argsort(np.arccos(np.clip(axes @ axes[i], -1, 1)))[:k]
        mean = axes[pick].mean(0) / np.linalg.norm(axes[pick].mean(0))
        spread = float(np.degrees(np.arccos(np.clip(axes[pick] @ mean, -1, 1))).max())
        if best is None or spread < best[0]:
            best = (spread, sorted(pick.tolist()))
    assert best is not None
    names = sorted(p for p in (src / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    (dst / "images").mkdir(parents=True)
    for i in best[1]:
        image = Image.open(names[i]).convert("RGB")
        scale = long_side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BOX)
        image.save(dst / "images" / f"{names[i].stem}.png")
    (dst / "sparse" / "0").mkdir(parents=True)
    for model in ("cameras.bin", "images.bin"):
        shutil.copyfile(src / "sparse" / "0" / model, dst / "sparse" / "0" / model)
    np.save(dst / "poses_bounds.npy", rows[best[1]])
    return dst


def pinhole_copy(src: Path, dst: Path) -> Path:
    """A copy of a transforms.json scene with its lens coefficients taken out."""
    if (dst / "transforms.json").exists():
        return dst
    shutil.copytree(src, dst)
    meta = json.loads((src / "transforms.json").read_text())
    meta = {k: v for k, v in meta.items() if k not in LENS_KEYS}
    meta["frames"] = [{k: v for k, v in f.items() if k not in LENS_KEYS} for f in meta["frames"]]
    (dst / "transforms.json").write_text(json.dumps(meta, indent=1))
    return dst


def scene_args(name: str, runs: Path) -> list[str]:
    if name == "cup-ff":
        return ["--data", str(forward_subset(REAL / "cup", runs / "data" / "cup-ff", FORWARD_VIEWS, FORWARD_SIZE))]
    if name == "fox":
        return ["--data", str(REAL / "fox"), "--downscale", "8"]
    if name == "fox-pinhole":
        return ["--data", str(pinhole_copy(REAL / "fox", runs / "data" / "fox-pinhole")), "--downscale", "8"]
    return ["--data", str(REAL / "cup"), "--downscale", "4"]


def train(args: list[str], out: Path) -> None:
    """``spiknerf train ARGS --out OUT`` in a fresh process; ``bench.json`` in the run records the command, its
    wall seconds, the code it ran, the 1-minute load average when it started and the share of one core that
    other processes used while it ran."""
    code, start = code_version(), watch()
    t0 = time.perf_counter()
    with (out.parent / f"{out.name}.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "spiknerf.cli", "train", *args, "--out", str(out)], check=True,
                       stdout=log, stderr=subprocess.STDOUT)
    command = "spiknerf train " + " ".join([*args, "--out", str(out)])
    (out / BENCH).write_text(json.dumps({"seconds": time.perf_counter() - t0, "command": command, "code": code,
                                         "load": start.load, "others": others_share(start)}))


def finished(folders: list[Path]) -> dict[str, list[Path]]:
    """Each scene's finished runs in any of ``folders``, oldest first."""
    found: dict[str, list[Path]] = {}
    for name in SCENES:
        runs = [r for f in folders for r in f.glob(f"{name}-steps*") if (r / BENCH).exists()]
        found[name] = sorted(runs, key=lambda r: (r / BENCH).stat().st_mtime)
    return found


def row(name: str, run: Path) -> dict:
    """A table row from a finished run: the student's columns empty for a teacher-only run."""
    metrics = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    bench = json.loads((run / BENCH).read_text())
    teacher, student = metrics["teacher"], metrics.get("student")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    eval_s = sum(max((h["eval_seconds"] for h in history if h["phase"] == p), default=0.0)
                 for p in ("teacher", "student"))
    steps = teacher["steps"] if not student or student["steps"] == teacher["steps"] else \
        f"{teacher['steps']} + {student['steps']}"
    return {"scene": LABELS[name], "kind": config["scene_kind"], "steps": steps,
            "teacher_psnr": teacher["psnr"], "teacher_ssim": teacher["ssim"],
            "student_psnr": student and student["psnr"], "student_ssim": student and student["ssim"],
            "student_minus_teacher_db": student and student["psnr"] - teacher["psnr"],
            "teacher_train_s": teacher["train_seconds"], "student_train_s": student and student["train_seconds"],
            "eval_during_training_s": eval_s, "samples_per_ray": teacher["samples_per_ray"],
            "teacher_view_s": teacher["seconds_per_view"], "student_view_s": student and student["seconds_per_view"],
            "wall_min": bench["seconds"] / 60, "load": bench.get("load"), "others": bench.get("others")}


def test_view(run: Path, phases: tuple[str, ...], view: int = 0) -> list[np.ndarray]:
    """Test view ``view`` of a finished run: the photo, then each phase's rendering, as uint8 ``[H, W, 3]``."""
    config = read_config(run)
    scene = open_scene(run, config, read_only=True)
    test, background = scene.splits["test"], eval_background(scene)
    photo = test.image(view, background)
    panels = [photo]
    for phase in phases:
        model, sampler, _ = load_model(run, phase, config, scene, torch.device("cpu"))
        image = render_split(model, sampler, test, background, torch.device("cpu"), [view])[0]
        panels.append(image.rgb.reshape(photo.shape).clamp(0, 1))
    return [(p.numpy() * 255).round().astype(np.uint8) for p in panels]


def save_strip(panels: list[np.ndarray], path: Path) -> None:
    """The panels side by side, each downscaled to at most ``PANEL`` pixels across, as a PNG."""
    h, w = panels[0].shape[:2]
    scale = min(1.0, PANEL / w)
    size = (round(w * scale), round(h * scale))
    strip = np.concatenate([np.asarray(Image.fromarray(p).resize(size, Image.BOX)) for p in panels], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(path, optimize=True)
    print(f"wrote {path}")


def frames(names: list[str], runs: dict[str, Path]) -> None:
    """The docs' frames of the scenes ``names`` from their runs ``runs`` (a scene's newest)."""
    for name in (n for n in names if n in runs):
        run = runs[name]
        phases = ("teacher", "student") if (run / "checkpoints").is_dir() and any(
            f.name.startswith("student-") for f in (run / "checkpoints").iterdir()) else ("teacher",)
        save_strip(test_view(run, phases), IMAGES / f"realphotos-{name}.png")
    if {"fox", "fox-pinhole"} & set(names) and {"fox", "fox-pinhole"} <= set(runs):
        lens = test_view(runs["fox"], ("teacher",)) + test_view(runs["fox-pinhole"], ("teacher",))[1:]
        save_strip(lens, IMAGES / "realphotos-fox-lens.png")


def appearance_rows(name: str, run: Path, pixels: int) -> list[dict]:
    """The appearance measurement's rows of one run's teacher: its training and its test views."""
    config = read_config(run)
    scene = open_scene(run, config, read_only=True)
    model, sampler, _ = load_model(run, "teacher", config, scene, torch.device("cpu"))
    rows = []
    for split in ("train", "test"):
        fits = split_colour_fits(model, sampler, scene.splits[split], eval_background(scene), pixels)
        s = summary(fits)
        rows.append({"scene": LABELS[name], "run": run.name, "split": split, **s,
                     "fitted_minus_psnr_db": s["fitted_psnr"] - s["psnr"]})
    return rows


def table(folders: list[Path], code: str, conditions: str = CONDITIONS) -> Results:
    """``realphotos``: a row for every finished run in ``folders``."""
    rows, commands, codes = [], [], set()
    for name, runs in finished(folders).items():
        for run in runs:
            bench = json.loads((run / BENCH).read_text())
            rows.append(row(name, run))
            commands.append(bench["command"])
            codes.add(bench.get("code", "unrecorded"))
    notes = [f"The runs ran different code versions: {', '.join(sorted(codes))}."] if len(codes) > 1 else []
    prov = provenance("python " + " ".join(["scripts/bench_realphotos.py", *sys.argv[1:]]), conditions=conditions,
                      code=code)
    return Results(table="realphotos", rows=rows, settings={"preset": "fast", "seed": 0}, commands=commands,
                   notes=notes, **prov)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SCENES, help="scenes to run now (default: all)")
    parser.add_argument("--steps", type=int, help="training steps per model (default: the default job's)")
    parser.add_argument("--teacher-only", action="store_true", help="train the teacher alone (no student)")
    parser.add_argument("--threads", type=int, default=0, help="--threads of each training (default: 0, its own)")
    parser.add_argument("--runs", type=Path, nargs="+", default=[Path("runs/bench-realphotos")],
                        help="run folders: new runs go to the first; the table holds the finished runs of all")
    parser.add_argument("--no-frames", action="store_true", help="leave the frames in docs/images as they are")
    parser.add_argument("--table-only", action="store_true", help="write the table from the finished runs, no more")
    parser.add_argument("--appearance", action="store_true", help="measure whether the photos need a per-photo "
                        "appearance code, from the named scenes' newest finished runs, and write that table only")
    parser.add_argument("--appearance-pixels", type=int, default=4096, help="pixels a view it renders, at most")
    args = parser.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} not found: the real captures are needed")
    code = code_version()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.only or list(SCENES)
    if args.appearance:
        appearance(names, args.runs, args.appearance_pixels, code)
        return
    if not args.table_only:
        for name in names:
            model = ["--model", "teacher"] if args.teacher_only else []
            steps = ["--steps", str(args.steps)] if args.steps else []
            run_name = f"{name}-steps{args.steps or 'default'}" + ("-teacher" if args.teacher_only else "")
            if any((folder / run_name / BENCH).exists() for folder in args.runs):
                continue
            out = args.runs[0] / run_name
            out.parent.mkdir(parents=True, exist_ok=True)
            video = [] if not (args.steps or args.teacher_only) else ["--video-frames", "0"]
            threads = ["--threads", str(args.threads)] if args.threads else []
            train([*scene_args(name, args.runs[0]), *steps, *model, *video, *threads], out)
    write_results(table(args.runs, code, MERGED if args.table_only else CONDITIONS))
    for doc in regenerate():
        print(f"regenerated {doc}")
    if not (args.no_frames or args.table_only):
        frames(names, {name: runs[-1] for name, runs in finished(args.runs).items() if runs})


def appearance(names: list[str], folders: list[Path], pixels: int, code: str) -> None:
    """``realphotos_appearance`` from the newest finished run of each of ``names``."""
    runs = finished(folders)
    rows = [r for name in names if runs[name] for r in appearance_rows(name, runs[name][-1], pixels)]
    prov = provenance("python " + " ".join(["scripts/bench_realphotos.py", *sys.argv[1:]]), code=code)
    write_results(Results(table="realphotos_appearance", rows=rows, settings={"pixels_a_view": pixels},
                          commands=[], **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")


if __name__ == "__main__":
    main()
