"""Exports of a trained run, measured: mesh accuracy on the built-in scene, and the NIR round trip.

    python scripts/bench_export.py --run runs/export-builtin --binary-run runs/export-binary

``--run`` is a default run of the built-in scene (``spiknerf train --out runs/export-builtin``);
``--binary-run`` a binary hard-reset student distilled from its teacher
(``spiknerf train --teacher runs/export-builtin --model student --neuron binary --reset hard --steps 1500
--out runs/export-binary``). The script writes

* ``docs/results/export_mesh.json``: per model and grid resolution, the Chamfer distance and normal consistency
  of the exported mesh against the scene's true surface (``spiknerf.export.accuracy``), export seconds and the
  peak-RSS growth of the export;
* ``docs/results/export_nir.json``: per student, the spikes and readouts of the NIR graph read back from its file
  and simulated, against the student's own on the same sample points;
* pictures ``docs/images/export-{mesh,pointcloud,depth}.png``;

then regenerates the docs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import trimesh

from spiknerf import denormals
from spiknerf.export.accuracy import builtin_surface, extent, mesh_samples, surface_distances
from spiknerf.export.depth import DepthConfig, export_depth
from spiknerf.export.mesh import MeshConfig, export_mesh
from spiknerf.export.neuromorphic import ACTIVATIONS, NIRConfig, export_nir, round_trip
from spiknerf.export.nir_graph import student_graph
from spiknerf.export.pointcloud import PointCloudConfig, export_pointcloud
from spiknerf.export.preview import camera, mesh_picture, splat
from spiknerf.export.source import open_run
from spiknerf.nerf.checkpoint import latest_checkpoint
from spiknerf.nerf.evaluate import sample_points
from spiknerf.nerf.run import eval_background, read_config
from spiknerf.nerf.spike_map import colorize
from spiknerf.paths import ROOT
from spiknerf.results import Results, provenance, write_results
from spiknerf.results.docs import regenerate
from spiknerf.results.measure import rss_growth_mb
from spiknerf.results.store import code_version, load_table, results_path

IMAGES = ROOT / "docs" / "images"
MESH_SAMPLES = 1_000_000
NIR_POINTS = 16384
VIEW = camera((3.2, -3.0, 2.4), (0.0, 0.0, -0.25))
FOCAL, SIZE = 560.0, 480


def measure_meshes(run: Path, resolutions: list[int], models: list[str], culls: list[str],
                   work: Path) -> tuple[list[dict], dict]:
    """Rows of the mesh table, and the culled meshes at the highest resolution by model."""
    t0 = time.perf_counter()
    truth, truth_normals = builtin_surface()
    print(f"true surface: {len(truth)} points in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows, meshes = [], {}
    for model, cull, res in itertools.product(models, culls, resolutions):
        cfg = MeshConfig(run=str(run), out=str(work / f"{model}-{cull}-{res}.ply"), model=model, resolution=res,
                         cull=cull, device="cpu")
        holder: dict = {}

        def job(cfg=cfg, holder=holder):
            start = time.perf_counter()
            holder["mesh"], holder["threshold"] = export_mesh(cfg, progress=False)
            holder["seconds"] = time.perf_counter() - start
            return holder["mesh"]

        growth = rss_growth_mb(job)
        mesh = trimesh.load(cfg.out, force="mesh")  # what a person gets: the file read back
        scores = surface_distances(*mesh_samples(mesh, MESH_SAMPLES), truth, truth_normals)
        size = extent(open_run(run, model, "cpu").scene.aabb)
        rows.append({"model": model, "cull": cull, "resolution": res, "threshold": holder["threshold"],
                     "chamfer": scores["chamfer"], "chamfer_pct": 100 * scores["chamfer"] / size,
                     "accuracy": scores["accuracy"], "completeness": scores["completeness"],
                     "normal_consistency": scores["normal_consistency"], "seconds": holder["seconds"],
                     "rss_growth_mb": growth, "vertices": len(mesh.vertices), "faces": len(mesh.faces),
                     "extent": size})
        print(json.dumps(rows[-1]), file=sys.stderr)
        if cull == "seen":
            meshes[model] = mesh
    return rows, meshes


def nir_rows(run: Path, binary_run: Path | None, work: Path) -> list[dict]:
    """The round trip of each student: the run's, the binary run's, and the run's with a hard reset."""
    rows = []
    for label, path in (("distilled student", run), ("binary student", binary_run)):
        if path is None:
            continue
        graph, report = export_nir(NIRConfig(run=str(path), out=str(work / f"{path.name}.nir"),
                                             points=NIR_POINTS, device="cpu"))
        student = read_config(path).student
        rows.append(_row(label, student.neuron, student.reset, report))
    # the same weights with a hard reset: the form that NIR cannot hold exactly
    source = open_run(run, "student", "cpu")
    for module in source.model.modules():
        if hasattr(module, "p") and hasattr(module.p, "reset"):
            module.p = module.p._replace(reset="hard")
    points, dirs = sample_points(source.model, source.sampler, source.scene.splits["train"],
                                 eval_background(source.scene), source.device, NIR_POINTS)
    graph = student_graph(source.model, ACTIVATIONS[source.config.preset])
    rows.append(_row("distilled student, reset switched to hard", source.config.student.neuron, "hard",
                     round_trip(source.model, graph, points, dirs)))
    return rows


def checkpoints(run: Path, phases: list[str]) -> dict[str, str | None]:
    """The checkpoint file each phase of ``run`` is read from (a run stopped early has only step checkpoints)."""
    return {p: (c.name if (c := latest_checkpoint(run, p)) else None) for p in phases}


def _row(label: str, neuron: str, reset: str, report: dict) -> dict:
    spikes = sum(v["spikes"] for v in report["layers"].values())
    mismatches = sum(v["mismatches"] for v in report["layers"].values())
    print(label, json.dumps(report), file=sys.stderr)
    return {"student": label, "neuron": neuron, "reset": reset, "points": report["points"], "T": report["T"],
            "spikes": spikes, "mismatches": mismatches, "agreement_pct": 100 * (1 - mismatches / spikes),
            "readout_max_abs_diff": max(report["readout_max_abs_diff"].values()), "identical": report["identical"],
            "per_layer": {k: v["mismatches"] for k, v in report["layers"].items()}}


def pictures(run: Path, meshes: dict[str, trimesh.Trimesh], work: Path) -> None:
    """docs/images/export-{mesh,pointcloud,depth}.png."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    panels = [mesh_picture(meshes["teacher"], VIEW, FOCAL, SIZE, colored=False)]
    panels += [mesh_picture(meshes[m], VIEW, FOCAL, SIZE, colored=True) for m in ("teacher", "student")
               if m in meshes]
    iio.imwrite(IMAGES / "export-mesh.png", np.concatenate(panels, 1))
    cloud = export_pointcloud(PointCloudConfig(run=str(run), out=str(work / "points.ply"), views=25, device="cpu"),
                              progress=False)
    pts = np.asarray(cloud.vertices)
    iio.imwrite(IMAGES / "export-pointcloud.png",
                splat(pts, np.asarray(cloud.colors)[:, :3] / 255.0, VIEW, FOCAL, SIZE))
    folder = export_depth(DepthConfig(run=str(run), out=str(work / "depth"), device="cpu"), progress=False)
    cams = json.loads((folder / "cameras.json").read_text())
    view = cams["views"][0]
    depth, opacity = np.load(folder / view["depth"]), np.load(folder / view["opacity"])
    seen = depth[opacity > 0.5]
    lo, hi = float(seen.min()), float(seen.max())
    # near is bright: colour the inverted depth over the range seen, black where nothing is seen
    shade = colorize(torch.from_numpy(np.where(opacity > 0.5, (hi - depth) / (hi - lo), 0.0)), 1.0).numpy()
    gray = np.repeat(opacity[..., None], 3, -1)
    picture = np.concatenate([shade, gray], 1)
    big = np.kron(picture, np.ones((3, 3, 1)))  # small views enlarged, each pixel a 3-pixel square
    iio.imwrite(IMAGES / "export-depth.png", (np.clip(big, 0, 1) * 255 + 0.5).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a default run of the built-in scene")
    parser.add_argument("--binary-run", type=Path, help="a binary hard-reset student of the same scene")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--models", nargs="+", default=["teacher", "student"])
    parser.add_argument("--culls", nargs="+", default=["seen", "none"], choices=["seen", "none"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["mesh", "nir", "pictures"])
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of export_mesh.json that this call does not measure again")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    command = "python scripts/bench_export.py " + " ".join(sys.argv[1:] if argv is None else argv)
    code = code_version()
    # as the spiknerf command runs its exports: denormals flushed, from before torch's threads start
    with denormals.flushed(), tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        meshes = {}
        if "mesh" not in args.skip:
            rows, meshes = measure_meshes(args.run, args.resolutions, args.models, args.culls, work)
            commands = [command]
            if args.append and results_path("export_mesh").exists():
                before = load_table("export_mesh")
                for r in before.rows:  # rows measured before --culls existed were culled as settings say
                    r.setdefault("cull", before.settings.get("cull", "seen"))
                fresh = {(r["model"], r["cull"], r["resolution"]) for r in rows}
                rows = [r for r in before.rows if (r["model"], r["cull"], r["resolution"]) not in fresh] + rows
                commands = [c for c in before.commands if c != command] + commands
            write_results(Results(table="export_mesh", rows=rows, commands=commands, settings={
                "run": args.run.name, "checkpoints": checkpoints(args.run, ["teacher", "student"]),
                "mesh samples": MESH_SAMPLES, "colour": "head-on (inward normal)",
                "threshold": "ln 2 / march step", "torch threads": torch.get_num_threads()}, notes=[
                "Chamfer distance: mean of accuracy (mesh samples to the true surface) and completeness (true "
                "points to mesh samples), nearest-neighbour distances in scene units; % of the extent, the box's "
                "longest side.",
                "True surface: first hits on the generator's shapes of 4M rays from eyes spread as its training "
                "cameras are (upper hemisphere), thinned to one per cube of side 0.004 (scene units): the surface "
                "the training views see; the pedestal's underside and faces hidden where shapes touch are not in it.",
                "Peak RSS: growth of this process's peak resident set over the export (grid, marching cubes, culling, "
                "colours, writing)."], **provenance(command, code=code)))
        if "nir" not in args.skip:
            runs = [args.run] + ([args.binary_run] if args.binary_run else [])
            write_results(Results(table="export_nir", rows=nir_rows(args.run, args.binary_run, work), settings={
                "points": NIR_POINTS, "dt": 1.0,
                "checkpoints": {r.name: checkpoints(r, ["student"])["student"] for r in runs}}, notes=[
                "Graph written with nir.write, read back with nir.read and simulated by spiknerf.export.nir_sim on "
                "sample points of the first training view; compared with the student's own spikes and per-step "
                "readouts on the same inputs.",
                "The last row keeps the distilled student's weights but switches its neurons to a hard reset: a "
                "ternary hard reset has no exact NIR form (one LIF node per level, each resetting alone)."],
                **provenance(command, code=code)))
        if "pictures" not in args.skip:
            if not meshes:
                meshes = {m: export_mesh(MeshConfig(run=str(args.run), out=str(work / f"{m}.ply"), model=m,
                                                    device="cpu"), progress=False)[0] for m in args.models}
            pictures(args.run, meshes, work)
    regenerate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
