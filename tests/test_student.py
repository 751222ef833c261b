"""The spiking student: each neuron trains, distillation, re-parameterized rendering, op counts by hand."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import spiknerf.nerf.student as student_module
from spiknerf.cli import main as cli
from spiknerf.nerf.checkpoint import load_checkpoint
from spiknerf.nerf.data.builtin import SceneSpec, write_scene
from spiknerf.nerf.distill import kd_loss, teacher_targets
from spiknerf.nerf.evaluate import op_report
from spiknerf.nerf.fields import NeRFField, NGPField
from spiknerf.nerf.presets import PRESETS
from spiknerf.nerf.render import render_chunks, render_rays
from spiknerf.nerf.sampler import OccupancyGridSampler
from spiknerf.nerf.student import SpikingNeRFField, SpikingNGPField, StudentSettings
from spiknerf.nerf.train_config import config_from_saved
from spiknerf.neurons import calibrate_offsets, count_ops, reparameterize

AABB = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("scene") / "tiny", SceneSpec(size=16, views=8, test_views=2))


@pytest.mark.parametrize("neuron", ["ternary", "binary", "signed-ternary"])
def test_each_neuron_trains_a_few_steps(tiny_scene, tmp_path, neuron):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_scene), "--out", str(out), "--model", "student", "--no-kd", "--neuron",
            neuron, "--steps", "10", "--eval-every", "5", "--video-frames", "0", "--device", "cpu"]
    assert cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())["student"]
    assert metrics["neuron"] == neuron and metrics["steps"] == 10 and metrics["kd"] is False
    assert metrics["psnr"] > 5
    state = load_checkpoint(out / "checkpoints" / "student-final.safetensors")
    assert state["model"]["encoding.table"].abs().max() > 1e-3  # the table moved from its ±1e-4 init


def test_a_narrow_spike_only_colour_branch_trains_and_evaluates_again(tiny_scene, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_scene), "--out", str(out), "--model", "student", "--no-kd",
            "--no-color-skip", "--color-hidden", "8", "--steps", "5", "--video-frames", "0", "--device", "cpu"]
    assert cli(args) == 0
    state = load_checkpoint(out / "checkpoints" / "student-final.safetensors")
    assert not any(k.startswith("skip_current") for k in state["model"])
    assert state["model"]["color1.fc.weight"].shape == (8, 64) and state["model"]["color2.fc.weight"].shape == (8, 8)
    first = json.loads((out / "metrics.json").read_text())["student"]
    assert first["color_skip"] is False and first["color_hidden"] == 8
    assert cli(["eval", "--run", str(out)]) == 0  # rebuilt from config.json: no skip, 8 wide
    again = json.loads((out / "metrics.json").read_text())["student"]
    assert (again["color_skip"], again["color_hidden"]) == (False, 8)
    assert again["psnr"] == pytest.approx(first["psnr"], abs=1e-4)


def test_student_neurons_follow_the_run_config():
    scene, fast = SimpleNamespace(aabb=AABB, ndc=False, unbounded=False), PRESETS["fast"]
    new = fast.student(scene, StudentSettings(threshold=0.3))
    assert (new.trunk.neuron.p.reset, new.trunk.neuron.threshold, new.trunk.neuron.p.delta_v) == ("soft", 0.3, 0.3)
    legacy = fast.student(scene, config_from_saved({"neuron": "ternary", "T": 2}, "old").student)  # before --reset
    assert (legacy.color2.neuron.p.reset, legacy.color2.neuron.threshold, legacy.color2.neuron.p.delta_v) == \
        ("hard", 0.5, 1.0)
    assert legacy.skip_current is not None  # runs saved before --no-color-skip had the skip
    spike_only = fast.student(scene, StudentSettings(color_skip=False))
    assert spike_only.skip_current is None
    narrow = fast.student(scene, StudentSettings(color_hidden=32))
    assert (narrow.color1.fc.out_features, narrow.color2.fc.in_features, narrow.color_head.fc.in_features) == \
        (32, 32, 32)


def test_the_mlp_preset_trains_a_student_that_spikes_in_every_hidden_layer(tiny_scene, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_scene), "--out", str(out), "--preset", "mlp", "--steps", "5",
            "--video-frames", "0", "--device", "cpu"]
    assert cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["preset"] == "mlp" and metrics["student"]["reparam_max_abs_diff"] <= 1e-4
    student = PRESETS["mlp"].student(SimpleNamespace(aabb=AABB, ndc=False, unbounded=False), StudentSettings())
    assert [(layer.fc.out_features, layer.spike_input) for layer in student.layers] == \
        [(128, False), (128, True), (128, True), (128, True)]  # only the first reads the analog encoding
    state = load_checkpoint(out / "checkpoints" / "student-final.safetensors")
    assert state["model"]["layers.3.fc.weight"].shape == (128, 128)
    assert "occupancy" in state["sampler"]  # marched through the occupancy grid, not coarse-to-fine


@pytest.mark.parametrize("option", [["--no-color-skip"], ["--color-hidden", "32"]])
def test_colour_branch_options_are_refused_for_the_paper_preset(tmp_path, capsys, option):
    args = ["train", "--preset", "paper", *option, "--out", str(tmp_path / "run"), "--dry-run"]
    assert cli(args) == 2
    assert f"{option[0]} applies to the fast preset" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_kd_loss_is_zero_when_the_student_equals_the_teacher():
    torch.manual_seed(0)
    teacher = NGPField(AABB)
    x, d = torch.rand(64, 3) - 0.5, torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    sigma, rgb = teacher(x, d)
    deltas = torch.full_like(sigma, 0.01)
    assert float(kd_loss(sigma, rgb, *teacher_targets(teacher, x, d), deltas).detach()) == 0.0
    assert float(kd_loss(sigma + 1, rgb, sigma, rgb, deltas).detach()) > 0.0


def teacher_and_student(kind: str, contract: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small teacher whose density varies (so that transmittance drops samples) and a student of its kind."""
    torch.manual_seed(5)
    if kind == "hash grid":
        grid = {"n_levels": 4, "log2_table": 12, "max_resolution": 64, "contract": contract}
        teacher, student = NGPField(AABB, **grid), SpikingNGPField(AABB, **grid)
        with torch.no_grad():
            teacher.encoding.table.normal_(0, 1.0)
            teacher.density_net[-1].bias[0] = 5.0
    else:
        mlp = {"depth": 2, "width": 32, "skip": 1, "contract": contract}
        teacher, student = NeRFField(AABB, **mlp), SpikingNeRFField(AABB, **mlp)
        with torch.no_grad():
            teacher.sigma_head.bias.fill_(8.0)
    return teacher.requires_grad_(False), student


@pytest.mark.parametrize(("kind", "contract"), [("hash grid", False), ("hash grid", True), ("mlp", False)])
def test_the_teachers_march_gives_its_targets_at_the_students_samples(kind, contract):
    """The KD targets read off the frozen teacher's march are the teacher at the points the student is evaluated
    at; the student's own outputs there are its own, not the teacher's."""
    teacher, student = teacher_and_student(kind, contract)
    origins = torch.randn(128, 3)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    dirs = torch.nn.functional.normalize(0.3 * torch.randn(128, 3) - origins, dim=-1)
    view_dirs = torch.nn.functional.normalize(dirs + 0.3 * torch.randn(128, 3), dim=-1)
    sampler = OccupancyGridSampler(AABB, 2.0, 40.0 if contract else 6.0, 0.02, resolution=16, contract=contract)
    out = render_rays(student, sampler, origins, dirs, torch.ones(3), stratified=True, view_dirs=view_dirs,
                      teacher=teacher)
    assert out.teacher is not None and len(out.samples) > 0
    assert len(out.samples) < len(sampler.sample(origins, dirs)) / 2  # the teacher's transmittance dropped many
    sigma_t, rgb_t = teacher_targets(teacher, out.points, out.directions)
    torch.testing.assert_close(out.teacher[0], sigma_t)
    torch.testing.assert_close(out.teacher[1], rgb_t)
    sigma_s, rgb_s = student(out.points, out.directions)
    torch.testing.assert_close(out.sigmas, sigma_s)
    torch.testing.assert_close(out.rgbs, rgb_s)
    assert out.sigmas.requires_grad and not torch.allclose(out.rgbs, rgb_t)


def test_kd_density_term_compares_what_rendering_reads():
    """Opaque samples that differ only in how opaque stay unpenalised; a surface sample that differs does not."""
    rgb, deltas = torch.zeros(1, 3), torch.full((1,), 0.01)
    opaque = kd_loss(torch.tensor([4000.0]), rgb, torch.tensor([8000.0]), rgb, deltas, weight_color=0.0)
    surface = kd_loss(torch.tensor([50.0]), rgb, torch.tensor([100.0]), rgb, deltas, weight_color=0.0)
    assert float(opaque) < 1e-12 < float(surface)


def firing_student(T: int = 2, color_skip: bool = True, **neuron_kwargs) -> SpikingNGPField:
    """A student whose layers fire a mix of 0, 1 and 2."""
    torch.manual_seed(3)
    s = SpikingNGPField(AABB, T=T, color_skip=color_skip, **neuron_kwargs)
    with torch.no_grad():
        s.encoding.table.normal_(0, 1.0)
        for layer in (s.trunk, s.color1, s.color2):
            layer.fc.weight.mul_(8.0)
    return s


@pytest.mark.parametrize(("reset", "color_skip"), [("hard", True), ("soft", True), ("soft", False)])
@pytest.mark.parametrize("calibrated", [False, True])
def test_reparameterized_render_equals_training_form_render(calibrated, reset, color_skip):
    student = firing_student(color_skip=color_skip, reset=reset, v_threshold=0.25, delta_v=0.25)
    sampler = OccupancyGridSampler(AABB, 2.0, 6.0, 0.05, resolution=16)
    sampler.update(0, student.density)
    # in float64, as evaluate.reparam_difference checks a run: in float32 the two forms sum in different orders,
    # and a unit within rounding of its threshold fires in one form only, on some CPUs and not others
    student = student.double()
    torch.manual_seed(0)
    origins = torch.nn.functional.normalize(torch.randn(300, 3, dtype=torch.float64), dim=-1) * 4
    dirs = torch.nn.functional.normalize(torch.randn(300, 3, dtype=torch.float64) * 0.2 - origins, dim=-1)
    ref = render_chunks(student, sampler, origins, dirs, torch.ones(3, dtype=torch.float64))
    points = torch.rand(500, 3, dtype=torch.float64) * 2 - 1
    views = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64), dim=-1)
    offsets = calibrate_offsets(student, points, views) if calibrated else None
    if calibrated:
        assert {float(v) for c in offsets.values() for v in c.unique()} > {0.0}  # not all units share one offset
    inference = reparameterize(student, offsets=offsets, inputs=(points, views))
    folded = render_chunks(inference, sampler, origins, dirs, torch.ones(3, dtype=torch.float64))
    assert ref.samples_per_ray > 1
    assert (folded.rgb - ref.rgb).abs().max() <= 1e-4
    assert (folded.depth - ref.depth).abs().max() <= 1e-3


def test_firing_rates_are_keyed_by_layer_in_folded_ternary_and_in_binary_students():
    points, views = torch.rand(64, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    keys = []
    for neuron in ("ternary", "binary"):
        student = SpikingNGPField(AABB, neuron=neuron)
        model = reparameterize(student) if neuron == "ternary" else student
        keys.append(set(op_report(model, points, views, 1.0, 4.6, 0.9)["firing_rate"]))
    assert keys[0] == keys[1] == {"trunk", "color1", "color2"}


@pytest.mark.parametrize("color_skip", [True, False])
def test_op_counter_agrees_with_a_hand_count_on_a_tiny_field(color_skip):
    hidden, color = 4, 6
    s = SpikingNGPField(AABB, hidden=hidden, color_hidden=color, T=2, color_skip=color_skip)
    with torch.no_grad():
        s.trunk.fc.weight.zero_()
        s.trunk.fc.bias.fill_(3.0)  # current 3 -> H = 0.75 each step -> ternary spike 1, reset: all ones
        for layer in (s.color1.fc, s.dir_current, s.skip_current):
            if layer is not None:
                layer.weight.zero_()
                layer.bias.zero_()  # colour layer 1 never fires
    n = 10
    x, d = torch.zeros(n, 3), torch.tensor([[0.0, 0.0, 1.0]]).expand(n, 3)
    ops = count_ops(s, (x, d))
    enc = s.encoding.out_dim
    # MACs: the trunk reads the encoding once; the skip current (if any) reads it, and the direction current
    # SH(16), once
    assert ops.macs_per_sample == enc * hidden + enc * color * color_skip + 16 * color
    # SOPs: 2 steps x hidden spikes read by the density readout (fan-out 1) and by colour layer 1 (fan-out color);
    # colour layer 2 and the colour readout read no spikes
    assert ops.sops_per_sample == 2 * hidden * 1 + 2 * hidden * color
    assert ops.firing_rate == {"trunk.neuron": 1.0, "color1.neuron": 0.0, "color2.neuron": 0.0}


def test_a_training_step_compiled_as_one_graph_matches_the_eager_layers(monkeypatch):
    torch.manual_seed(5)
    student = SpikingNGPField(AABB, hidden=16, color_hidden=16, log2_table=12, max_resolution=64)
    kernel = student_module._ngp_layers_kernel
    x, d = torch.rand(300, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(300, 3), dim=-1)
    results = []
    for compiled in (False, True):
        monkeypatch.setattr(kernel, "enabled", compiled)
        student.zero_grad()
        sigma, rgb = student(x, d)
        (sigma.sum() + rgb.square().sum()).backward()
        results.append((sigma.detach(), rgb.detach(), {n: p.grad.clone() for n, p in student.named_parameters()}))
    (sigma_e, rgb_e, grads_e), (sigma_c, rgb_c, grads_c) = results
    torch.testing.assert_close(sigma_c, sigma_e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rgb_c, rgb_e, rtol=1e-5, atol=1e-6)
    assert grads_c.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_c[name], grads_e[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_compiled_layers_compile_once_for_every_batch_size(monkeypatch):
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    kernel = student_module._ngp_layers_kernel
    if not kernel.enabled:
        pytest.skip("compiling is off (SPIKNERF_COMPILE=0)")
    # room for this test's graph after those of the students that the suite trained before it
    monkeypatch.setattr(kernel, "variants", kernel.variants + 8)
    torch.manual_seed(6)
    # widths no other test uses: the graphs this test adds are its own
    student = SpikingNGPField(AABB, hidden=12, color_hidden=10, log2_table=12, max_resolution=64)
    before = len(_debug_get_cache_entry_list(student_module._ngp_layers.__code__))
    for n in (300, 301, 517):
        x, d = torch.rand(n, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
        sigma, rgb = student(x, d)
        (sigma.sum() + rgb.sum()).backward()
    assert len(_debug_get_cache_entry_list(student_module._ngp_layers.__code__)) == before + 1


def test_only_a_training_step_runs_the_compiled_layers():
    student = SpikingNGPField(AABB, hidden=8, color_hidden=8, log2_table=12, max_resolution=64)
    eager, compiled = student_module._ngp_layers, student_module._ngp_layers_kernel
    assert student_module._ngp_layers_for(student.train()) is compiled
    with torch.no_grad():
        assert student_module._ngp_layers_for(student) is eager
    assert student_module._ngp_layers_for(student.eval()) is eager
    long = SpikingNGPField(AABB, hidden=8, color_hidden=8, log2_table=12, max_resolution=64, T=64)
    assert student_module._ngp_layers_for(long.train()) is eager  # too many steps to unroll
