"""``spiknerf export``: meshes, depth maps, point clouds and NIR graphs of tiny forged runs, read back as a
person's tools would read them (trimesh, imageio, numpy, nir), and every bad input as one ``error:`` line.

Runs are forged with the package's own writers (as tests/test_hostile_runs.py does), never trained.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import imageio.v3 as iio
import nir
import numpy as np
import pytest
import torch
import trimesh
from conftest import eager_kernels, orbit_c2w, write_tiny_blender_scene

from spiknerf.cli import main as cli
from spiknerf.export.grid import sample_density
from spiknerf.export.mesh import extract_surface, vertex_colors, write_mesh
from spiknerf.export.neuromorphic import round_trip
from spiknerf.export.nir_graph import student_graph
from spiknerf.export.nir_sim import simulate
from spiknerf.export.views import surface_depth
from spiknerf.nerf.checkpoint import save_checkpoint
from spiknerf.nerf.data import load_scene
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.render import render_chunks
from spiknerf.nerf.run import eval_background
from spiknerf.nerf.run_folder import RUN_CONFIG, hold_run
from spiknerf.nerf.step import Phase
from spiknerf.nerf.student import StudentSettings
from spiknerf.nerf.train_config import TrainConfig, config_json
from spiknerf.neurons import LIFParameters, Surrogate, lif_multistep


@pytest.fixture(autouse=True)
def _eager_kernels(monkeypatch):
    eager_kernels(monkeypatch)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_tiny_blender_scene(tmp_path_factory.mktemp("scene") / "tiny")


def forge_run(path: Path, scene: Path, student: dict | None = None) -> Path:
    """A finished fast-preset run made as train makes one, with untrained models whose density is raised so that
    rays see something; ``student``: its neuron options (else a teacher-only run)."""
    cfg = TrainConfig(data=str(scene), out=str(path), model="both" if student else "teacher", steps=2,
                      device="cpu", video_frames=0, student=StudentSettings(**(student or {})))
    loaded = load_scene(scene)
    fast = PRESETS["fast"]
    with hold_run(path, "train", create=True):
        (path / RUN_CONFIG).write_text(json.dumps(config_json(cfg)))
        torch.manual_seed(0)
        phases = {"teacher": fast.teacher(loaded)}
        if student:
            phases["student"] = fast.student(loaded, cfg.student)
        for name, model in phases.items():
            head = model.density_net[-1] if name == "teacher" else model.density_head.fc
            with torch.no_grad():
                head.bias[0] += 3.0
            phase = Phase(name, model, fast.sampler(loaded, torch.device("cpu")), fast, 2, 0)
            phase.step, phase.train_seconds = 2, 1.0
            save_checkpoint(path, name, 2, phase.state(), final=True)
    return path


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory, scene) -> Path:
    return forge_run(tmp_path_factory.mktemp("binary") / "run", scene, {"neuron": "binary", "reset": "hard"})


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, scene) -> Path:
    return forge_run(tmp_path_factory.mktemp("teacher") / "run", scene)


def run_cli(args: list[str], capsys) -> str:
    capsys.readouterr()
    code = cli(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


# --------------------------------------------------------------------------------------------- mesh

class Sphere(torch.nn.Module):
    """Density 10 inside a ball of radius 0.6 around (0.1, -0.2, 0.05), falling linearly over 0.1 outside;
    colour: the view direction mapped to [0, 1]."""

    centre = torch.tensor([0.1, -0.2, 0.05])

    def density(self, x):
        r = (x - self.centre).norm(dim=-1)
        return 10.0 * ((0.7 - r) / 0.1).clamp(0, 1)

    def forward(self, x, d):
        return self.density(x), d * 0.5 + 0.5


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_marching_cubes_of_a_sphere_density_is_that_sphere_in_the_written_file(tmp_path, suffix):
    field = Sphere()
    grid = sample_density(field, torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]), 48, torch.device("cpu"),
                          chunk=1000, progress=False)
    mesh = extract_surface(grid, 5.0)  # half way down the ramp: radius 0.65
    mesh.visual.vertex_colors = vertex_colors(field, mesh, torch.device("cpu"), progress=False)
    write_mesh(mesh, str(tmp_path / f"sphere{suffix}"))
    back = trimesh.load(tmp_path / f"sphere{suffix}", force="mesh")
    radius = np.linalg.norm(back.vertices - field.centre.numpy(), axis=1)
    assert abs(radius.mean() - 0.65) < 0.005 and radius.std() < 0.01
    assert back.is_watertight and back.volume == pytest.approx(4 / 3 * math.pi * 0.65**3, rel=0.03)
    outward = back.vertex_normals * (back.vertices - field.centre.numpy())
    assert (outward.sum(1) > 0).all()  # faces wound outwards
    # coloured as seen head-on: the view direction is the inward normal, so colour = -n/2 + 1/2
    expect = -back.vertex_normals * 0.5 + 0.5
    colours = back.visual.vertex_colors[:, :3] / 255.0
    assert np.abs(colours - expect).mean() < 0.02


def test_culling_keeps_the_faces_a_view_sees_as_its_surface():
    """A sphere seen by one camera on +z: its front half stays, its back half (never rendered) goes."""
    from spiknerf.export.mesh import cull_unseen, seen_vertices
    from spiknerf.export.views import View
    from spiknerf.nerf.rays import look_at, pixel_rays

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    size, focal = 128, 200.0
    c2w = look_at(torch.tensor([0.0, 0.0, 4.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
    intrinsics = torch.tensor([focal, focal, size / 2, size / 2])
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    o, d = pixel_rays(c2w, intrinsics, xs.reshape(-1), ys.reshape(-1))
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - 0.25)
    hit = disc > 0
    depth = torch.where(hit, -b - disc.clamp(min=0).sqrt(), torch.zeros_like(b)).reshape(size, size)
    view = View(torch.zeros(size, size, 3), hit.float().reshape(size, size), depth, o, d)
    culled = cull_unseen(sphere, seen_vertices(sphere, [(view, c2w, intrinsics)], tol=0.03))
    z = culled.vertices[:, 2]
    assert (z > -0.05).all() and z.max() == pytest.approx(0.5)
    assert 0.25 < len(culled.faces) / len(sphere.faces) < 0.5  # the front half, less a grazing rim


def test_mesh_of_a_run_is_written_and_loads_with_colours(teacher_run, tmp_path, capsys):
    out = tmp_path / "exports" / "mesh.ply"
    text = run_cli(["export", "mesh", "--run", str(teacher_run), "--model", "teacher", "--resolution", "16",
                    "--threshold", "1.0", "--cull", "none", "--out", str(out)], capsys)
    mesh = trimesh.load(out, force="mesh")
    assert len(mesh.faces) > 0 and mesh.visual.kind == "vertex"
    assert str(len(mesh.vertices)) in text
    lo, hi = np.asarray(load_scene(Path(json.loads((teacher_run / RUN_CONFIG).read_text())["data"])).aabb).reshape(2, 3)
    spacing = (hi - lo) / 15
    assert (mesh.vertices >= lo - spacing).all() and (mesh.vertices <= hi + spacing).all()


# --------------------------------------------------------------------------------------------- depth

def test_depth_export_matches_the_renderers_depth(binary_run, tmp_path, capsys):
    out = tmp_path / "depth"
    run_cli(["export", "depth", "--run", str(binary_run), "--out", str(out)], capsys)
    cameras = json.loads((out / "cameras.json").read_text())
    loaded = load_scene(Path(json.loads((binary_run / RUN_CONFIG).read_text())["data"]))
    test = loaded.splits["test"]
    assert len(cameras["views"]) == len(test) == 2
    from spiknerf.nerf.run import load_model, read_config
    model, sampler, _ = load_model(binary_run, "student", read_config(binary_run), loaded, torch.device("cpu"))
    for i, view in enumerate(cameras["views"]):
        o, d, vd = test.view_rays(i)
        image = render_chunks(model, sampler, o, d, eval_background(loaded), view_dirs=vd)
        opacity = image.opacity.reshape(test.height, test.width)
        expected = surface_depth(image.depth.reshape(test.height, test.width), opacity).numpy()
        depth = np.load(out / view["depth"])
        assert depth.shape == (12, 16) and depth.dtype == np.float32
        np.testing.assert_allclose(depth, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.load(out / view["opacity"]), opacity.numpy(), atol=1e-6)
        assert (opacity > 0.5).any() and (expected > loaded.near).any()
        png = iio.imread(out / view["depth_png"])
        assert png.dtype == np.uint16 and png.shape == (12, 16)
        seen = opacity.numpy() >= 0.5
        np.testing.assert_array_less(np.abs(png[seen] / cameras["depth_scale"] - expected[seen]),
                                     0.5 / cameras["depth_scale"] + 1e-6)
        assert (png[~seen] == 0).all()
        assert view["c2w"] == test.c2w[i].tolist()


# --------------------------------------------------------------------------------------------- point cloud

def test_point_cloud_lies_on_the_rendered_depth_and_drops_outliers(teacher_run, tmp_path, capsys):
    out = tmp_path / "points.ply"
    run_cli(["export", "pointcloud", "--run", str(teacher_run), "--model", "teacher", "--min-opacity", "0.5",
             "--neighbours", "4", "--out", str(out)], capsys)
    cloud = trimesh.load(out)
    assert isinstance(cloud, trimesh.PointCloud) and len(cloud.vertices) > 0
    assert cloud.colors.shape == (len(cloud.vertices), 4)
    eyes = orbit_c2w(3)[:, :3, 3]
    distance = np.linalg.norm(cloud.vertices[:, None] - eyes[None], axis=-1).min(1)
    assert (distance > 0).all() and (distance < 7).all()


def test_outlier_removal_drops_a_far_point():
    from spiknerf.export.pointcloud import outlier_mask

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(size=(500, 3)) * 0.1, [[5.0, 5.0, 5.0]]])
    keep = outlier_mask(points, 8, 2.0)
    assert not keep[-1] and keep[:-1].mean() > 0.9


# --------------------------------------------------------------------------------------------- NIR

def test_nir_graph_of_a_binary_student_simulates_to_the_same_spikes(binary_run, tmp_path, capsys):
    out = tmp_path / "student.nir"
    text = run_cli(["export", "nir", "--run", str(binary_run), "--points", "256", "--out", str(out)], capsys)
    assert "round trip: identical" in text
    graph = nir.read(out)
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert kinds == {"Input", "Affine", "LIF", "Output"}
    assert set(graph.inputs) == {"encoding", "direction"} and set(graph.outputs) == {"density", "color"}
    lif = graph.nodes["trunk"]
    assert np.all(lif.tau == 4.0) and np.all(lif.r == 4.0) and np.all(lif.v_reset == 0.0)
    assert np.all(lif.v_threshold < 0.25) and np.all(np.nextafter(lif.v_threshold, 1) == np.float32(0.25))


def test_nir_graph_of_a_narrow_colour_branch_takes_the_runs_width(scene, tmp_path, capsys):
    run = forge_run(tmp_path / "run", scene, {"neuron": "binary", "reset": "hard", "color_hidden": 16})
    out = tmp_path / "student.nir"
    text = run_cli(["export", "nir", "--run", str(run), "--points", "64", "--out", str(out)], capsys)
    assert "round trip: identical" in text
    graph = nir.read(out)
    assert graph.nodes["color1"].tau.shape == graph.nodes["color2"].tau.shape == (16,)
    assert graph.nodes["trunk"].tau.shape == (64,)


@pytest.mark.parametrize("kind", ["ternary", "signed_ternary", "binary"])
def test_a_soft_reset_neuron_in_nir_primitives_steps_as_ours(kind):
    """LI + Threshold per level + recurrent reset, simulated, against the student's own neuron equations."""
    from spiknerf.export.nir_graph import Builder, add_neurons
    from spiknerf.neurons import make_neuron

    neuron = make_neuron(kind, tau=3.0, v_threshold=0.3, delta_v=0.2, reset="soft", decay_input=False)
    g = Builder()
    g.add("x", nir.Input(input_type={"input": np.array([50])}))
    layer = add_neurons(g, "n", neuron, 50)
    g.connect(["x"], layer.entries)
    g.add("y", nir.Output(output_type={"output": np.array([50])}), layer.exits)
    graph = nir.NIRGraph(nodes=g.nodes, edges=g.edges)
    x = torch.randn(6, 40, 50)
    spikes = simulate(graph, {"x": x}, 6)["y"]
    p = LIFParameters(kind, 3.0, 0.2, "soft", decay_input=False)
    assert torch.equal(spikes, lif_multistep(x, p, 0.3, Surrogate("atan")))
    assert spikes.abs().sum() > 0


def test_a_ternary_soft_student_round_trips_exactly(scene):
    loaded = load_scene(scene)
    torch.manual_seed(1)
    model = PRESETS["mlp"].student(loaded, StudentSettings(neuron="ternary", reset="soft")).eval()
    graph = student_graph(model, {"density": "softplus(x - 1)"})
    points = torch.rand(300, 3) * 3 - 1.5
    dirs = torch.nn.functional.normalize(torch.randn(300, 3), dim=-1)
    report = round_trip(model, graph, points, dirs)
    assert report["identical"], report
    assert all(layer["spikes"] == 2 * 300 * layer_size for layer, layer_size in
               zip(report["layers"].values(), [128] * 5 + [64], strict=True))
    head = graph.nodes["rgb_head"]  # a readout off by more than the order of its sums can explain
    graph.nodes["rgb_head"] = nir.Affine(weight=head.weight, bias=head.bias + 1e-3)
    off = round_trip(model, graph, points, dirs)
    assert not off["identical"] and off["readout_max_abs_diff"]["rgb_head"] > 5e-4


# --------------------------------------------------------------------------------------------- bad input

def refused(args: list[str], capsys, *words: str, after_work: bool = False) -> str:
    """One ``error:`` line and exit code 2; nothing else on stderr unless the error could only be found
    ``after_work`` (then the work's progress bars come first and the error is the last line)."""
    capsys.readouterr()
    code = cli(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert after_work or len(lines) == 1, err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def readonly_folder(tmp_path: Path) -> Path:
    """A folder nothing can be created in, as this user (root ignores permissions: /sys refuses it too)."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o555)
        return folder
    return Path("/sys")


@pytest.mark.parametrize("job, out", [("mesh", "m.ply"), ("pointcloud", "p.ply"), ("depth", "d"), ("nir", "g.nir")])
def test_a_missing_run_is_one_error(job, out, tmp_path, capsys):
    refused(["export", job, "--run", str(tmp_path / "nothing"), "--out", str(tmp_path / out)], capsys,
            "nothing", "not a run directory")
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("job, extra", [("mesh", []), ("pointcloud", []), ("depth", []), ("nir", [])])
def test_a_teacher_only_run_asked_for_its_student_is_one_error(teacher_run, tmp_path, capsys, job, extra):
    out = {"mesh": "m.ply", "pointcloud": "p.ply", "depth": "d", "nir": "g.nir"}[job]
    refused(["export", job, "--run", str(teacher_run), "--out", str(tmp_path / out), *extra], capsys,
            "no student checkpoint")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("job, out, words", [
    ("mesh", "mesh.stl", [".ply or .obj or .glb"]),
    ("mesh", "mesh", [".ply"]),
    ("pointcloud", "points.obj", [".ply"]),
    ("nir", "graph.h5", [".nir"]),
])
def test_an_unknown_format_is_one_error(binary_run, tmp_path, capsys, job, out, words):
    refused(["export", job, "--run", str(binary_run), "--out", str(tmp_path / out)], capsys, *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("job, name", [("mesh", "m.ply"), ("pointcloud", "p.ply"), ("depth", "d"),
                                       ("nir", "g.nir")])
def test_an_unwritable_output_is_one_error_before_the_work(binary_run, tmp_path, capsys, job, name):
    out = readonly_folder(tmp_path) / "sub" / name
    refused(["export", job, "--run", str(binary_run), "--out", str(out)], capsys, "cannot write")


def test_outputs_that_are_folders_or_files_in_the_way_are_one_error(binary_run, tmp_path, capsys):
    (tmp_path / "folder.ply").mkdir()
    refused(["export", "mesh", "--run", str(binary_run), "--out", str(tmp_path / "folder.ply")], capsys,
            "is a folder")
    (tmp_path / "file").write_text("keep me")
    refused(["export", "depth", "--run", str(binary_run), "--out", str(tmp_path / "file")], capsys, "is a file")
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.mark.parametrize("args, words", [
    (["--resolution", "4"], ["--resolution"]),
    (["--resolution", "100000"], ["GiB"]),
    (["--model", "both"], ["invalid choice"]),
    (["--threshold", "-1"], ["--threshold"]),
])
def test_bad_mesh_options_are_one_error(binary_run, tmp_path, capsys, args, words):
    refused(["export", "mesh", "--run", str(binary_run), "--out", str(tmp_path / "m.ply"), *args], capsys, *words)
    assert not (tmp_path / "m.ply").exists()


def test_a_threshold_the_density_never_reaches_is_one_error_after_sampling(binary_run, tmp_path, capsys):
    refused(["export", "mesh", "--run", str(binary_run), "--out", str(tmp_path / "m.ply"), "--resolution", "16",
             "--threshold", "1e30"], capsys, "no surface", "density ranges over", after_work=True)
    assert not (tmp_path / "m.ply").exists()


def test_bad_point_cloud_and_depth_options_are_one_error(binary_run, tmp_path, capsys):
    refused(["export", "pointcloud", "--run", str(binary_run), "--out", str(tmp_path / "p.ply"),
             "--min-opacity", "0"], capsys, "--min-opacity")
    refused(["export", "depth", "--run", str(binary_run), "--out", str(tmp_path / "d"), "--split", "val"], capsys,
            "--split val")
    refused(["export", "nir", "--run", str(binary_run), "--out", str(tmp_path / "g.nir"), "--points", "-1"], capsys,
            "--points")


@pytest.mark.parametrize("job, out", [("mesh", "m.ply"), ("pointcloud", "p.ply"), ("depth", "d")])
def test_a_forward_facing_run_is_one_error_for_world_space_exports(llff_scene, tmp_path, capsys, job, out):
    run = forge_run(tmp_path / "llff-run", llff_scene())
    refused(["export", job, "--run", str(run), "--model", "teacher", "--out", str(tmp_path / out)], capsys,
            "forward-facing")
    assert not (tmp_path / out).exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_where_there_is_none_is_one_error(binary_run, tmp_path, capsys):
    refused(["export", "nir", "--run", str(binary_run), "--device", "cuda", "--out", str(tmp_path / "g.nir")],
            capsys, "--device cuda")
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_config_is_not_json_is_one_error(binary_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "broken"
    shutil.copytree(binary_run, run)
    (run / RUN_CONFIG).write_text("{not json")
    refused(["export", "mesh", "--run", str(run), "--out", str(tmp_path / "m.ply")], capsys, str(run / RUN_CONFIG))
    assert not (tmp_path / "m.ply").exists()


def test_a_missing_export_extra_is_one_error_naming_it(binary_run, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "spiknerf.export.mesh")
    monkeypatch.setitem(sys.modules, "trimesh", None)  # as if trimesh were not installed
    refused(["export", "mesh", "--run", str(binary_run), "--out", str(tmp_path / "m.ply")], capsys,
            "'export' extra", "trimesh", "pip install")
