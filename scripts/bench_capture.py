"""Benchmark of ``spiknerf process``: pose accuracy, time, and the quality cost of estimated poses.

Writes three tables (then regenerates the docs):

* ``docs/results/capture_poses.json``: captures whose cameras are known, posed by
  ``spiknerf process``; rotation and position errors after a similarity alignment
  (:mod:`spiknerf.capture.accuracy`). Captures: the built-in shapes finely textured
  (:mod:`spiknerf.capture.textured`, rendered here), the same inside a textured
  sphere (a background), two subsets of the lego views (the ``--lego-views`` nearest
  view r_0, a patch a person might walk; every 4th view, spread over the hemisphere), and
  the real cup photos against the COLMAP model shipped with them (``cup/sparse/0``);
* ``docs/results/capture_time.json``: ``spiknerf process`` on 20 photos of 500 x 375
  (20 of the cup photos, shrunk by ``--max-size 500``), wall time of the command;
* ``docs/results/capture_quality.json``: the shapes capture trained with its true
  cameras and with the estimated ones, the same ``--steps``, one thread each, in the
  same frame and box, scored on the same held-out views with their true cameras
  (:mod:`spiknerf.capture.quality`);
* ``docs/results/capture_contraction.json``: an all-around scene with a background
  (the shapes inside a textured sphere, true cameras) trained with the space beyond
  a box around the cameras contracted (``--scene-kind unbounded``) and without
  (``--scene-kind object``: a plain box that holds the whole sphere), the same
  ``--steps``; PSNR over the whole test split and, in ``docs/images/``, the first
  test view as truth | teacher | student for each.

    python scripts/bench_capture.py                        # everything
    python scripts/bench_capture.py --only poses time      # no training
    python scripts/bench_capture.py --only quality --steps 2000
    python scripts/bench_capture.py --only contraction --steps 2000

Work folders go under ``--runs`` (default runs/bench-capture), which must not hold them yet;
``--reuse`` keeps the scene folders and finished training runs already there (a reused
scene's ``process`` time is left blank: only a fresh run is timed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from spiknerf.capture.accuracy import pose_errors
from spiknerf.capture.normalize import c2w_from_colmap
from spiknerf.capture.quality import write_quality_scenes
from spiknerf.capture.sfm import load_pycolmap
from spiknerf.capture.textured import write_capture
from spiknerf.nerf.checkpoint import latest_checkpoint
from spiknerf.nerf.data.images import downscale_image, quantize
from spiknerf.nerf.evaluate import render_split
from spiknerf.nerf.run import eval_background, load_model, open_scene, read_config
from spiknerf.paths import LEGO, REAL_SCENES
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate

CUP = REAL_SCENES / "cup"
PARTS = ("poses", "time", "quality", "contraction")
FIGURES = Path("docs/images")
SHAPES = {"views": 48, "width": 400, "height": 300}
LEGO_SPREAD = 25  # every 4th lego view: neighbours far apart, over the whole hemisphere


def run(args: list[str]) -> tuple[float, float]:
    """Run ``spiknerf ARGS`` in a fresh process: its wall seconds and CPU seconds (user + system, all threads).

    A failure stops the benchmark.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "spiknerf.cli", *args], stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"spiknerf {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def estimated(scene: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Camera-to-world matrices of a ``process`` result by source file name, and its capture block."""
    meta = json.loads((scene / "transforms.json").read_text())
    return {f["source"]: np.array(f["transform_matrix"]) for f in meta["frames"]}, meta["capture"]


def transforms_cameras(path: Path) -> dict[str, np.ndarray]:
    """Camera-to-world matrices of a ``transforms*.json`` by image file name (``.png`` added when missing)."""
    frames = json.loads(path.read_text())["frames"]
    name = lambda f: Path(f["file_path"]).name + ("" if Path(f["file_path"]).suffix else ".png")  # noqa: E731
    return {name(f): np.array(f["transform_matrix"]) for f in frames}


def colmap_cameras(model: Path) -> dict[str, np.ndarray]:
    """Camera-to-world matrices (OpenGL axes) of a COLMAP model by image name."""
    reconstruction = load_pycolmap().Reconstruction(str(model))
    images = [i for i in reconstruction.images.values() if i.has_pose]
    c2w = c2w_from_colmap(np.stack([i.cam_from_world().matrix() for i in images]))
    return {i.name: m for i, m in zip(images, c2w, strict=True)}


def reusable(out: Path, reuse: bool) -> bool:
    """Whether ``out`` holds a finished scene folder (its ``transforms.json`` is written last) to reuse."""
    return reuse and (out / "transforms.json").is_file()


def pose_row(name: str, photos: Path, truth: dict[str, np.ndarray], runs: Path, extra: list[str],
             reuse: bool) -> dict:
    """Process ``photos`` (or reuse the scene folder) and compare the cameras with ``truth``."""
    out = runs / f"{name}-scene"
    args = ["process", "--images", str(photos), "--out", str(out), *extra]
    seconds = None if reusable(out, reuse) else run(args)[0]
    cameras, capture = estimated(out)
    errors = pose_errors(cameras, truth)
    kind = json.loads((out / "transforms.json").read_text())["spiknerf"]["scene_kind"]
    row = {"capture": name, "registered": capture["registered"], "total": capture["total"],
           "reprojection_px": capture["mean_reprojection_error_px"], "points": capture["points"],
           **errors.summary(), "scene_kind": kind, "process_s": seconds, "command": "spiknerf " + " ".join(args)}
    print(json.dumps(row), file=sys.stderr)
    return row


def shapes_capture(runs: Path, background: bool) -> Path:
    folder = runs / ("shapes-background" if background else "shapes")
    if not folder.exists():
        write_capture(folder, background=background, **SHAPES)
    return folder


def lego_photos(runs: Path, name: str, pick: list[str], reuse: bool) -> tuple[Path, dict[str, np.ndarray]]:
    """The lego training views ``pick`` copied into a folder of photos, and their true cameras."""
    truth = transforms_cameras(LEGO / "transforms_train.json")
    photos = runs / f"{name}-photos"
    photos.mkdir(parents=True, exist_ok=reuse)
    for n in pick:
        shutil.copy(LEGO / "train" / n, photos / n)
    return photos, {n: truth[n] for n in pick}


def lego_picks(patch: int, spread: int) -> dict[str, list[str]]:
    """Two subsets of the 100 lego views: ``patch`` neighbours of the first view, and every k-th of all."""
    truth = transforms_cameras(LEGO / "transforms_train.json")
    names = sorted(truth, key=lambda n: int(n.split("_")[1].split(".")[0]))
    centres = np.stack([truth[n][:3, 3] for n in names])
    nearest = np.argsort(np.linalg.norm(centres - centres[0], axis=1), kind="stable")[:patch]
    return {"patch": [names[i] for i in sorted(nearest)], "spread": names[:: len(names) // spread][:spread]}


def poses(runs: Path, lego_views: int, reuse: bool, cup: bool) -> list[dict]:
    rows = []
    for background in (False, True):
        capture = shapes_capture(runs, background)
        name = "shapes in a textured sphere" if background else "shapes"
        truth = transforms_cameras(capture / "transforms.json")
        rows.append(pose_row(name.replace(" ", "-"), capture / "images", truth, runs, [], reuse))
        rows[-1]["capture"] = f"{name}, {SHAPES['views']} views {SHAPES['width']} x {SHAPES['height']}"
    if LEGO.is_dir():
        picks = lego_picks(lego_views, LEGO_SPREAD)
        photos, truth = lego_photos(runs, "lego-patch", picks["patch"], reuse)
        rows.append(pose_row("lego-patch", photos, truth, runs, ["--max-size", "400"], reuse))
        rows[-1]["capture"] = f"lego, the {len(truth)} views nearest r_0, shrunk to 400 x 400"
        photos, truth = lego_photos(runs, "lego-spread", picks["spread"], reuse)
        rows.append(pose_row("lego-spread", photos, truth, runs, ["--min-registered", "0.1"], reuse))
        rows[-1]["capture"] = (f"lego, every {100 // LEGO_SPREAD}th of the 100 views ({len(truth)}), 800 x 800, "
                               "kept with --min-registered 0.1")
    else:
        print(f"note: {LEGO} not found; lego skipped", file=sys.stderr)
    if cup and CUP.is_dir():
        rows.append(pose_row("cup", CUP / "images", colmap_cameras(CUP / "sparse" / "0"), runs, [], reuse))
        rows[-1]["capture"] = "cup, 77 phone photos 800 x 600, against its shipped COLMAP model"
    elif cup:
        print(f"note: {CUP} not found; cup skipped", file=sys.stderr)
    return rows


def timing(runs: Path) -> list[dict]:
    """``process`` on 20 cup photos shrunk to 500 x 375."""
    photos = runs / "time-photos"
    photos.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in (CUP / "images").iterdir())
    names = sorted(names, key=lambda n: int(Path(n).stem))[:40:2]
    for n in names:
        shutil.copy(CUP / "images" / n, photos / n)
    out = runs / "time-scene"
    shutil.rmtree(out, ignore_errors=True)  # the driver's own folder from an earlier timing: never reused
    args = ["process", "--images", str(photos), "--out", str(out), "--max-size", "500"]
    seconds, cpu = run(args)
    _, capture = estimated(out)
    row = {"what": f"{len(names)} photos of 500 x 375 (cup photos 1 to 39, every 2nd)", "seconds": seconds,
           "cpu_s": cpu,
           "registered": capture["registered"], "total": capture["total"], "command": "spiknerf " + " ".join(args)}
    print(json.dumps(row), file=sys.stderr)
    return [row]


def last_evaluations(out: Path, steps: int) -> dict[str, float] | None:
    """The test PSNR of each phase at its last step, from the run's own periodic evaluation (``history.jsonl``,
    the first ``--eval-views`` test views); None unless the teacher (and the student, unless the run trains the
    teacher alone) reached ``steps``."""
    history = out / "history.jsonl"
    if not history.is_file():
        return None
    last = {}
    for line in history.read_text().splitlines():
        entry = json.loads(line)
        if entry["step"] == steps:
            last[entry["phase"]] = entry["test_psnr"]
    phases = {"teacher"} if json.loads((out / "config.json").read_text())["model"] == "teacher" else {
        "teacher", "student"}
    return last if set(last) >= phases else None


def quality_row(out: Path, steps: int, periodic: bool) -> dict:
    """Teacher and student scores of a run: over the whole test split (metrics.json), or with ``periodic`` over
    the views of its last periodic evaluation when the whole split was not evaluated."""
    if (out / "metrics.json").is_file():
        metrics = json.loads((out / "metrics.json").read_text())
        student = metrics.get("student", {})  # none in a teacher-only run
        return {"test_views": "all", "teacher_psnr": metrics["teacher"]["psnr"], "student_psnr": student.get("psnr"),
                "teacher_ssim": metrics["teacher"]["ssim"], "student_ssim": student.get("ssim")}
    last = last_evaluations(out, steps) if periodic else None
    if last is None:
        raise SystemExit(f"{out}: no evaluation at step {steps} to read")
    views = json.loads((out / "config.json").read_text())["eval_views"]
    return {"test_views": f"first {views}", "teacher_psnr": last["teacher"], "student_psnr": last.get("student")}


def quality(runs: Path, steps: int, reuse: bool, periodic: bool, teacher_only: bool,
            downscale: int) -> tuple[list[dict], list[str]]:
    """The shapes capture trained with true and with estimated cameras, one after the other, one thread each
    (PSNR does not depend on the machine's load, so runs made side by side may be reused), both in the frame
    and box ``process`` chose and scored on the same held-out views (:mod:`spiknerf.capture.quality`).

    With ``reuse`` a finished run is kept (with ``periodic``, one that reached its last periodic
    evaluation); its steps must be ``steps``.
    """
    capture = shapes_capture(runs, background=False)
    scene = runs / "quality-scene"
    if not reusable(scene, reuse):
        run(["process", "--images", str(capture / "images"), "--out", str(scene)])
    scenes = write_quality_scenes(capture, scene, runs / "quality-compare")
    rows, notes = [], []
    for label, data in {"true cameras": scenes["true"], "estimated cameras": scenes["estimated"]}.items():
        out = runs / f"train-{label.split()[0]}"
        args = ["train", "--data", str(data), "--steps", str(steps), "--out", str(out), "--video-frames", "0",
                "--downscale", str(downscale), "--eval-every", str(steps),
                *(["--model", "teacher"] if teacher_only else [])]
        notes += [n for n in [train_run(out, args, steps, reuse, periodic)] if n]
        rows.append({"cameras": label, **quality_row(out, steps, periodic), "steps": steps,
                     "command": "OMP_NUM_THREADS=1 spiknerf " + " ".join(args)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    if len({r["test_views"] for r in rows}) > 1:
        raise SystemExit("the runs were evaluated on different test views; rerun without --periodic-eval")
    return rows, notes


def train_run(out: Path, args: list[str], steps: int, reuse: bool, periodic: bool) -> str | None:
    """``spiknerf train ARGS`` into ``out``, one thread; skipped when ``reuse`` finds a finished run of ``steps``
    (and of ARGS' ``--downscale``).

    A note when the reused run was trained with another ``--model`` than ``ARGS`` ask for (its phases scored).
    """
    finished = (out / "metrics.json").is_file() or (periodic and last_evaluations(out, steps) is not None)
    if reuse and finished:
        config = json.loads((out / "config.json").read_text())
        if config["steps"] != steps:
            raise SystemExit(f"{out} was trained for other than {steps} steps: remove it or change --steps")
        downscale = int(args[args.index("--downscale") + 1])
        if config["downscale"] != downscale:
            raise SystemExit(f"{out} was trained at --downscale {config['downscale']}: remove it or change --downscale")
        asked = args[args.index("--model") + 1] if "--model" in args else "both"
        if config["model"] != asked:
            scored = sorted(json.loads((out / "metrics.json").read_text()).keys() & {"teacher", "student"}) if (
                out / "metrics.json").is_file() else ["its periodic evaluation"]
            return (f"{out.name} was trained with --model {config['model']} (not {asked}) and stopped after its "
                    f"teacher phase; scored: {', '.join(scored)} (spiknerf eval --run {out} --model teacher)")
        return None
    subprocess.run([sys.executable, "-m", "spiknerf.cli", *args], env=dict(os.environ, OMP_NUM_THREADS="1"),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return None


def test_view_strip(run: Path, view: int = 0, shrink: int = 2) -> np.ndarray:
    """The run's test view ``view`` as truth | teacher | student (those it trained), uint8, each shrunk ``shrink``
    times."""
    config = read_config(run)
    scene = open_scene(run, config, read_only=True)
    split, background = scene.splits["test"], eval_background(scene)
    panels = [split.image(view, background).numpy()]
    for phase in [p for p in ("teacher", "student") if latest_checkpoint(run, p) is not None]:
        model, sampler, _ = load_model(run, phase, config, scene, torch.device("cpu"))
        with torch.no_grad():
            rgb = render_split(model, sampler, split, background, torch.device("cpu"), [view])[0].rgb
        panels.append(rgb.reshape(split.height, split.width, 3).clamp(0, 1).numpy())
    return downscale_image(quantize(np.concatenate(panels, axis=1)), shrink)


def contraction(runs: Path, steps: int, reuse: bool, periodic: bool, teacher_only: bool,
                downscale: int) -> list[dict]:
    """The shapes in a textured sphere trained with and without contraction; a frame of each into FIGURES."""
    capture = shapes_capture(runs, background=True)
    rows = []
    for kind, label in (("unbounded", "contracted beyond a box around the cameras"),
                        ("object", "no contraction: one box holding the sphere")):
        out = runs / f"train-background-{kind}"
        args = ["train", "--data", str(capture), "--scene-kind", kind, "--steps", str(steps), "--out", str(out),
                "--downscale", str(downscale),
                "--video-frames", "0", "--eval-every", str(steps), *(["--model", "teacher"] if teacher_only else [])]
        if note := train_run(out, args, steps, reuse, periodic):
            print(f"note: {note}", file=sys.stderr)
        figure = FIGURES / f"capture-background-{kind}.png"
        iio.imwrite(figure, test_view_strip(out, shrink=max(1, 2 // downscale)))
        rows.append({"space": label, "scene_kind": kind, **quality_row(out, steps, periodic), "steps": steps,
                     "figure": str(figure), "command": "OMP_NUM_THREADS=1 spiknerf " + " ".join(args)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=PARTS, help="parts to run (default: all)")
    parser.add_argument("--runs", default="runs/bench-capture", help="folder for captures, scenes and runs")
    parser.add_argument("--lego-views", type=int, default=30, help="lego views of the patch around r_0")
    parser.add_argument("--steps", type=int, default=2000, help="quality, contraction: training steps per model")
    parser.add_argument("--no-cup", action="store_true", help="poses: leave out the cup (the slowest to process)")
    parser.add_argument("--periodic-eval", action="store_true",
                        help="quality: score reused runs by their last periodic evaluation (a few test views) when "
                             "their whole test split was not evaluated (for lack of time)")
    parser.add_argument("--downscale", type=int, default=1,
                        help="quality, contraction: images shrunk this many times")
    parser.add_argument("--teacher-only", action="store_true",
                        help="quality, contraction: train the teachers alone (no students), for lack of time")
    parser.add_argument("--reuse", action="store_true", help="keep the scene folders and finished runs under --runs")
    args = parser.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    parts = args.only or PARTS
    base = "python scripts/bench_capture.py" + (" --reuse" if args.reuse else "") + (
        " --teacher-only" if args.teacher_only else "")
    if "poses" in parts:
        prov = provenance(f"{base} --only poses --lego-views {args.lego_views}" + (" --no-cup" if args.no_cup else ""))
        rows = poses(runs, args.lego_views, args.reuse, not args.no_cup)
        reused = [r["capture"] for r in rows if r["process_s"] is None]
        which = "every scene folder" if len(reused) == len(rows) else "the scene folders of " + "; ".join(reused)
        notes = [f"process s is blank: {which} came from an earlier run of the driver (--reuse), and only a fresh "
                 "process is timed"] if reused else []
        write_results(Results(table="capture_poses", rows=rows, notes=notes, commands=[r["command"] for r in rows],
                              settings={"lego views": args.lego_views, "shapes": SHAPES}, **prov))
    if "time" in parts and CUP.is_dir():
        prov = provenance(f"{base} --only time")
        rows = timing(runs)
        write_results(Results(table="capture_time", rows=rows, commands=[r["command"] for r in rows], **prov))
    periodic = " --periodic-eval" if args.periodic_eval else ""
    if "quality" in parts:
        prov = provenance(f"{base} --only quality --steps {args.steps} --downscale {args.downscale}{periodic}",
                          conditions="one thread a training")
        rows, notes = quality(runs, args.steps, args.reuse, args.periodic_eval, args.teacher_only, args.downscale)
        true, est = rows
        summary = {f"{phase}_db_lost": true[f"{phase}_psnr"] - est[f"{phase}_psnr"] for phase in ("teacher", "student")
                   if true[f"{phase}_psnr"] is not None and est[f"{phase}_psnr"] is not None}
        write_results(Results(table="capture_quality", rows=rows, summary=summary, notes=notes,
                              commands=[r["command"] for r in rows],
                              settings={"steps": args.steps, "downscale": args.downscale, "shapes": SHAPES}, **prov))
    if "contraction" in parts:
        prov = provenance(f"{base} --only contraction --steps {args.steps} --downscale {args.downscale}{periodic}",
                          conditions="one thread a training")
        rows = contraction(runs, args.steps, args.reuse, args.periodic_eval, args.teacher_only, args.downscale)
        write_results(Results(table="capture_contraction", rows=rows, commands=[r["command"] for r in rows],
                              settings={"steps": args.steps, "downscale": args.downscale, "shapes": SHAPES}, **prov))
    for doc in regenerate():
        print(f"regenerated {doc}")


if __name__ == "__main__":
    main()
