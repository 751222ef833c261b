"""Real photographs: the default job (teacher, then the distilled ternary student) on the real captures at hand.

Scenes (``../shared/data/real``, see its README.md):

* ``cup-ff``: a forward-facing subset of the cup's photos, the 20 views whose optical axes lie tightest around
  their mean, at 504 x 378 (the size of an LLFF capture), written by this script into ``--runs`` first;
* ``fox``: instant-ngp's fox at 1/8 resolution (135 x 240), its lens distortion handled, and ``fox-pinhole``,
  the same photos with the lens coefficients taken out of ``transforms.json`` (rays as if pinhole);
* ``cup``: all 77 photos around the cup at 200 x 150 (``images_4/``).

Each scene is one ``spiknerf train`` in a fresh process, timed end to end: the default job as a user runs it
(video included), or ``--steps`` a model without the video (the object scenes' default budget does not fit the
shared CPU), the teacher alone with ``--teacher-only``. Rows go to
``docs/results/realphotos.json``, one per finished run under ``--runs`` (kept, so that scenes can be run one at a
time):

    python scripts/bench_realphotos.py --only cup-ff
    python scripts/bench_realphotos.py --only fox fox-pinhole cup --steps 300 --teacher-only

Each finished run also gets a frame in ``docs/images/``: its first test view, the photo beside what the
teacher and the student render (``realphotos-<scene>.png``), and for the fox the photo beside the teachers
with the lens handled and ignored (``realphotos-fox-lens.png``).
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

from spiknerf.nerf.evaluate import render_split
from spiknerf.nerf.run import eval_background, load_model, open_scene, read_config
from spiknerf.paths import REAL_SCENES as REAL
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.store import code_version

LENS_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
FORWARD_VIEWS, FORWARD_SIZE = 20, 504
SCENES = ("cup-ff", "fox", "fox-pinhole", "cup")
LABELS = {"cup-ff": "cup, forward-facing subset", "fox": "fox, lens distortion handled",
          "fox-pinhole": "fox, lens distortion ignored", "cup": "cup, all around"}
BENCH = "bench.json"
CONDITIONS = "each run in a fresh process, one after the other"
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
    """``spiknerf train ARGS --out OUT`` in a fresh process, unless already finished; ``bench.json`` in the run
    records the command and its wall seconds."""
    if (out / BENCH).exists():
        return
    t0 = time.perf_counter()
    with (out.parent / f"{out.name}.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "spiknerf.cli", "train", *args, "--out", str(out)], check=True,
                       stdout=log, stderr=subprocess.STDOUT)
    command = "spiknerf train " + " ".join([*args, "--out", str(out)])
    (out / BENCH).write_text(json.dumps({"seconds": time.perf_counter() - t0, "command": command}))


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
            "wall_min": bench["seconds"] / 60}


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


def frames(runs: dict[str, Path]) -> None:
    """The docs' frames of the finished runs (the newest run of each scene)."""
    for name, run in runs.items():
        phases = ("teacher", "student") if (run / "checkpoints").is_dir() and any(
            f.name.startswith("student-") for f in (run / "checkpoints").iterdir()) else ("teacher",)
        save_strip(test_view(run, phases), IMAGES / f"realphotos-{name}.png")
    if "fox" in runs and "fox-pinhole" in runs:
        lens = test_view(runs["fox"], ("teacher",)) + test_view(runs["fox-pinhole"], ("teacher",))[1:]
        save_strip(lens, IMAGES / "realphotos-fox-lens.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=SCENES, help="scenes to run now (default: all)")
    parser.add_argument("--steps", type=int, help="training steps per model (default: the default job's)")
    parser.add_argument("--teacher-only", action="store_true", help="train the teacher alone (no student)")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-realphotos"), help="where the runs go")
    parser.add_argument("--no-frames", action="store_true", help="leave the frames in docs/images as they are")
    args = parser.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} not found: the real captures are needed")
    code = code_version()
    for name in args.only or SCENES:
        model = ["--model", "teacher"] if args.teacher_only else []
        steps = ["--steps", str(args.steps)] if args.steps else []
        out = args.runs / (f"{name}-steps{args.steps or 'default'}" + ("-teacher" if args.teacher_only else ""))
        out.parent.mkdir(parents=True, exist_ok=True)
        video = [] if not (args.steps or args.teacher_only) else ["--video-frames", "0"]
        train([*scene_args(name, args.runs), *steps, *model, *video], out)
    rows, commands, newest = [], [], {}
    for name in SCENES:  # every finished run, this invocation's and earlier ones'
        for run in sorted(args.runs.glob(f"{name}-steps*")):
            if (run / BENCH).exists():
                rows.append(row(name, run))
                commands.append(json.loads((run / BENCH).read_text())["command"])
                if name not in newest or (run / BENCH).stat().st_mtime > (newest[name] / BENCH).stat().st_mtime:
                    newest[name] = run
    prov = provenance("python " + " ".join(["scripts/bench_realphotos.py", *sys.argv[1:]]), conditions=CONDITIONS,
                      code=code)
    write_results(Results(table="realphotos", rows=rows, settings={"preset": "fast", "seed": 0},
                          commands=commands, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")
    if not args.no_frames:
        frames(newest)


if __name__ == "__main__":
    main()
