"""The NeRF pipeline: sampler against brute force, compositing, training, resume, eval and render."""

from __future__ import annotations

import json
import shutil
import sys

import imageio.v3 as iio
import pytest
import torch

from spiknerf.cli import main as cli
from spiknerf.nerf import sampler as sampler_module
from spiknerf.nerf.checkpoint import load_checkpoint
from spiknerf.nerf.data.builtin import SceneSpec, write_scene
from spiknerf.nerf.encodings import HashGrid
from spiknerf.nerf.render import composite, render_rays
from spiknerf.nerf.sampler import OccupancyGridSampler, RaySamples, grid_cells, packed_to_padded, ray_aabb

AABB = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])


def blob(x: torch.Tensor, centre: list[float], radius: float, peak: float) -> torch.Tensor:
    """A smooth bump with compact support: peak (1 - r^2/R^2)^3 inside radius R, exactly 0 outside."""
    r2 = ((x - torch.tensor(centre)) ** 2).sum(-1) / radius**2
    return peak * (1 - r2).clamp_min(0) ** 3


def blob_density(x: torch.Tensor) -> torch.Tensor:
    """A known density: two bumps, empty elsewhere."""
    return blob(x, [0.3, 0.0, 0.0], 0.5, 40.0) + blob(x, [-0.4, -0.2, -0.1], 0.3, 15.0)


def blob_field(x: torch.Tensor, d: torch.Tensor):
    return blob_density(x), torch.sigmoid(torch.cat([x, d[:, :1] + x[:, 1:2] * 0], -1)[:, [0, 1, 3]] * 3)


def test_cpu_sampler_matches_brute_force_dense_sampling():
    torch.manual_seed(0)
    n = 256
    origins = torch.randn(n, 3)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    target = torch.randn(n, 3) * 0.3
    dirs = target - origins
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    step = 0.01
    # occ_thre=0: skip only cells found empty (the default also drops nearly transparent ones)
    sampler = OccupancyGridSampler(AABB, 2.0, 6.0, step, resolution=32, occ_thre=0.0)
    for k in range(12):  # each refresh probes one random point per cell; a few find every bump's edge
        sampler.update(k * sampler.update_every, blob_density)
    assert sampler.occupied_fraction < 0.5  # the grid really skips space
    samples = sampler.sample(origins, dirs, sigma_fn=blob_density)
    ours = composite(blob_field, samples, origins, dirs, torch.ones(3))
    # brute force: every step through the box, no grid, no early stop
    t0, t1 = ray_aabb(origins, dirs, AABB)
    t0, t1 = t0.clamp_min(2.0), t1.clamp_max(6.0)
    k = torch.arange(int(((t1 - t0) / step).ceil().max()))
    starts = t0[:, None] + k * step
    keep = starts + step / 2 < t1[:, None]
    rays, cols = keep.nonzero(as_tuple=True)
    dense = RaySamples(rays, starts[rays, cols], starts[rays, cols] + step, n)
    ref = composite(blob_field, dense, origins, dirs, torch.ones(3))
    assert len(samples) < len(dense) / 4
    assert (ours.rgb - ref.rgb).abs().max() < 1e-3
    assert (ours.opacity - ref.opacity).abs().max() < 1e-3


def test_a_refresh_that_probes_a_cell_twice_keeps_its_largest_probe():
    """After warm-up the refreshed cells repeat; each keeps the maximum of its probes (an order-free rule)."""
    r = 4
    sampler = OccupancyGridSampler(AABB, 2.0, 6.0, 1.0, resolution=r, warmup_steps=0, refresh_fraction=1.0)
    sampler.occupancy.fill_(0.5)
    probes = []

    def density(x: torch.Tensor) -> torch.Tensor:
        probes.append(x)
        return torch.rand(len(x), generator=torch.Generator().manual_seed(3))

    sampler.update(0, density, torch.Generator().manual_seed(0))
    cells, _ = grid_cells(torch.cat(probes), sampler.aabb, r)
    assert len(cells.unique()) < len(cells)  # the draw did repeat cells
    values = torch.rand(len(cells), generator=torch.Generator().manual_seed(3))
    expected = torch.full((r**3,), 0.5 * sampler.ema_decay)
    for c, v in zip(cells.tolist(), values.tolist(), strict=True):
        expected[c] = max(float(expected[c]), v)
    assert torch.equal(sampler.occupancy, expected)


class OpaqueBlobs:
    """``blob_field`` as a field module (callable, with a ``density``), dense enough that rays are spent early:
    samples behind its surfaces are dropped."""

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return 300.0 * blob_density(x)

    def __call__(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.density(x), blob_field(x, d)[1]


def rays_at_the_centre(n: int, spread: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` rays from a sphere of radius 4 aimed near the origin, directions jittered by ``spread``."""
    origins = torch.randn(n, 3)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    dirs = torch.randn(n, 3) * spread - origins
    return origins, dirs / dirs.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("contract", [False, True])
def test_shading_while_marching_renders_exactly_what_density_then_composite_does(contract):
    torch.manual_seed(3)
    n = 96
    origins, dirs = rays_at_the_centre(n, 0.3)
    view_dirs = torch.nn.functional.normalize(dirs + 0.3 * torch.randn(n, 3), dim=-1)  # as NDC scenes have
    sampler = OccupancyGridSampler(AABB, 2.0, 40.0 if contract else 6.0, 0.02, resolution=32, occ_thre=0.0,
                                   contract=contract)
    field = OpaqueBlobs()
    sampler.update(0, field.density)
    plain = render_rays(field, sampler, origins, dirs, torch.ones(3), view_dirs=view_dirs)
    shaded = render_rays(field, sampler, origins, dirs, torch.ones(3), view_dirs=view_dirs, shade=True)
    assert shaded.samples.sigmas is not None and plain.samples.sigmas is None
    assert len(plain.samples) > 0 and torch.equal(plain.samples.t_starts, shaded.samples.t_starts)
    for a, b in ((plain.rgb, shaded.rgb), (plain.depth, shaded.depth), (plain.sigmas, shaded.sigmas)):
        assert torch.equal(a, b)


def test_front_to_back_density_rounds_keep_exactly_the_single_pass_samples():
    torch.manual_seed(2)
    n = 128
    origins, dirs = rays_at_the_centre(n, 0.2)
    opaque = lambda x: 300.0 * blob_density(x)  # noqa: E731  rays through the bumps are spent early
    sampler = OccupancyGridSampler(AABB, 2.0, 6.0, 0.01, resolution=32, occ_thre=0.0)
    sampler.update(0, opaque)
    calls = []
    counted = lambda x: calls.append(len(x)) or opaque(x)  # noqa: E731
    rounds = sampler.sample(origins, dirs, sigma_fn=counted)
    one_pass = OccupancyGridSampler.front_to_back_density
    sampler.front_to_back_density = lambda *a: one_pass(sampler, *a, first=10**9)
    evaluated_rounds = sum(calls)
    calls.clear()
    single = sampler.sample(origins, dirs, sigma_fn=counted)
    assert len(calls) == 1 and evaluated_rounds < calls[0] / 2  # most density reads were behind surfaces
    assert torch.equal(rounds.ray_indices, single.ray_indices)
    assert torch.equal(rounds.t_starts, single.t_starts)


def test_render_rays_drops_the_samples_another_density_has_spent():
    torch.manual_seed(3)
    n = 64
    origins = torch.randn(n, 3)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3) * 0.2 - origins, dim=-1)
    sampler = OccupancyGridSampler(AABB, 2.0, 6.0, 0.01, resolution=32)  # every cell occupied
    faint = lambda x, d: (torch.full((len(x),), 1e-3), torch.zeros(len(x), 3))  # noqa: E731
    faint.density = lambda x: faint(x, None)[0]
    opaque = lambda x: 300.0 * blob_density(x)  # noqa: E731
    own = render_rays(faint, sampler, origins, dirs, torch.zeros(3))
    marched = render_rays(faint, sampler, origins, dirs, torch.zeros(3), sigma_fn=opaque)
    assert len(marched.samples) < len(own.samples) / 2  # cut where the opaque density's transmittance ran out
    assert torch.equal(marched.samples.t_starts, sampler.sample(origins, dirs, sigma_fn=opaque).t_starts)


def test_weights_sum_to_opacity():
    torch.manual_seed(1)
    n, k = 5, 7
    rays = torch.arange(n).repeat_interleave(k)
    starts = torch.linspace(2, 3, k).repeat(n)
    samples = RaySamples(rays, starts, starts + 1 / (k - 1), n)
    sigma = torch.rand(n * k) * 3
    out = composite(lambda x, d: (sigma, torch.rand(n * k, 3)), samples, torch.zeros(n, 3),
                    torch.tensor([[0.0, 0.0, 1.0]]).expand(n, 3), torch.zeros(3))
    alpha = 1 - torch.exp(-packed_to_padded(sigma, rays, n) / (k - 1))
    assert torch.allclose(out.opacity, 1 - torch.prod(1 - alpha, dim=1), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("scene") / "tiny", SceneSpec(size=16, views=8, test_views=2))


def train_args(scene, out, *extra):
    return ["train", "--data", str(scene), "--out", str(out), "--eval-every", "5", "--video-frames", "0",
            "--device", "cpu", *extra]


@pytest.fixture
def fresh_nerfacc_cuda():
    sampler_module.nerfacc_cuda.cache_clear()
    yield sampler_module.nerfacc_cuda
    sampler_module.nerfacc_cuda.cache_clear()


def test_nerfacc_cuda_kernels_are_skipped_on_request_and_when_the_extension_fails(fresh_nerfacc_cuda, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("SPIKNERF_NERFACC_CUDA", "0")
    assert fresh_nerfacc_cuda() is False
    fresh_nerfacc_cuda.cache_clear()
    monkeypatch.delenv("SPIKNERF_NERFACC_CUDA")
    monkeypatch.setitem(sys.modules, "nerfacc.cuda._backend", None)  # its import now fails, as a broken build does
    with pytest.warns(UserWarning, match="pure-torch paths"):
        assert fresh_nerfacc_cuda() is False


def test_teacher_training_lowers_the_loss(tiny_scene, tmp_path):
    assert cli(train_args(tiny_scene, tmp_path / "run", "--model", "teacher", "--steps", "30")) == 0
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == 30
    assert history[-1]["test_psnr"] > history[0]["test_psnr"]


def test_resume_continues_from_the_saved_step_with_identical_state(tiny_scene, tmp_path):
    full = tmp_path / "full"
    args = ("--model", "teacher", "--steps", "12", "--checkpoint-steps", "6", "--keep-checkpoints", "5")
    assert cli(train_args(tiny_scene, full, *args)) == 0
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    # as if killed after the step-6 checkpoint
    for name in ("teacher-0000012.safetensors", "teacher-final.safetensors"):
        (cut / "checkpoints" / name).unlink()
    (cut / "metrics.json").unlink()
    assert cli(["train", "--out", str(cut), "--resume"]) == 0
    a = load_checkpoint(full / "checkpoints" / "teacher-final.safetensors")
    b = load_checkpoint(cut / "checkpoints" / "teacher-final.safetensors")
    assert b["step"] == 12
    for part in ("model", "sampler"):  # bit for bit: the resumed run continued exactly as the whole one ran
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for param, moments in a["optimizer"]["state"].items():
        for key, value in moments.items():
            assert torch.equal(value, b["optimizer"]["state"][param][key]), (param, key)
    assert torch.equal(a["generator"], b["generator"]) and torch.equal(a["torch_rng"], b["torch_rng"])
    steps = [json.loads(line)["step"] for line in (cut / "history.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 12]  # the steps after the checkpoint were logged once, by the resumed run


def test_the_seed_fixes_a_run_from_its_initial_weights_on(tiny_scene, tmp_path):
    finals = []
    for name, global_seed in (("a", 1), ("b", 2)):
        torch.manual_seed(global_seed)  # whatever the process's random state, the run follows --seed alone
        assert cli(train_args(tiny_scene, tmp_path / name, "--model", "teacher", "--steps", "3")) == 0
        finals.append(load_checkpoint(tmp_path / name / "checkpoints" / "teacher-final.safetensors")["model"])
    for key in finals[0]:
        assert torch.equal(finals[0][key], finals[1][key]), key


def test_train_on_existing_run_without_resume_is_refused(tiny_scene, tmp_path, capsys):
    assert cli(train_args(tiny_scene, tmp_path / "run", "--model", "teacher", "--steps", "2")) == 0
    capsys.readouterr()
    assert cli(train_args(tiny_scene, tmp_path / "run", "--model", "teacher", "--steps", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--resume" in err[0]


@pytest.fixture(scope="module")
def both_run(tiny_scene, tmp_path_factory):
    """Teacher then distilled ternary student, a few steps each, with the final video."""
    out = tmp_path_factory.mktemp("both") / "run"
    args = train_args(tiny_scene, out, "--steps", "12")
    args[args.index("--video-frames") + 1] = "4"
    assert cli(args) == 0
    return out


def test_end_to_end_run_writes_checkpoints_tensorboard_metrics_and_video(both_run):
    names = {p.name for p in (both_run / "checkpoints").iterdir()}
    assert {"teacher-final.safetensors", "student-final.safetensors"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (both_run / "tb").iterdir())
    metrics = json.loads((both_run / "metrics.json").read_text())
    for key in ("scene", "preset", "device", "downscale"):
        assert key in metrics
    for key in ("psnr", "ssim", "train_seconds", "steps", "macs_per_ray", "energy_pj_per_ray"):
        assert key in metrics["teacher"], key
    for key in ("psnr", "ssim", "train_seconds", "steps", "neuron", "T", "kd", "sops_per_ray", "energy_pj_per_ray",
                "energy_ratio_vs_teacher", "firing_rate", "reparam_max_abs_diff"):
        assert key in metrics["student"], key
    assert metrics["student"]["reparam_max_abs_diff"] <= 1e-4
    assert metrics["teacher"]["steps"] == metrics["student"]["steps"] == 12
    assert len(metrics["teacher"]["per_view"]) == 2
    frames = iio.imread(both_run / "renders" / "student-orbit.mp4")
    assert frames.shape[0] == 4


def test_the_distilled_student_marches_its_teachers_occupancy_grid_unchanged(both_run):
    load = lambda phase: load_checkpoint(both_run / "checkpoints" / f"{phase}-final.safetensors")  # noqa: E731
    teacher, student = load("teacher")["sampler"], load("student")["sampler"]
    assert torch.equal(student["occupancy"], teacher["occupancy"])
    assert torch.equal(student["binary"], teacher["binary"])


def test_render_writes_an_mp4_with_the_requested_frames(both_run, tmp_path):
    out = tmp_path / "teacher.mp4"
    assert cli(["render", "--run", str(both_run), "--model", "teacher", "--frames", "7", "--depth",
                "--out", str(out)]) == 0
    frames = iio.imread(out)
    assert frames.shape[0] == 7 and frames.shape[2] == 2 * 16  # colour | depth


def test_render_shows_the_folded_student_as_its_training_form_renders_it(both_run, tmp_path):
    videos = {}
    for fold in ("--fold", "--no-fold"):
        videos[fold] = tmp_path / f"student{fold}.mp4"
        assert cli(["render", "--run", str(both_run), "--frames", "3", fold, "--out", str(videos[fold])]) == 0
    folded, plain = (iio.imread(v).astype(float) for v in videos.values())
    assert folded.shape == plain.shape and abs(folded - plain).max() <= 2  # the codec's rounding at most


def test_eval_rewrites_metrics(both_run, capsys):
    (both_run / "metrics.json").unlink()
    assert cli(["eval", "--run", str(both_run)]) == 0
    assert "mean" in capsys.readouterr().out
    assert {"teacher", "student"} <= set(json.loads((both_run / "metrics.json").read_text()))


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--run", "/nonexistent/run"],
        ["render", "--run", "/nonexistent/run"],
        ["train", "--steps", "0"],
        ["train", "--downscale", "0"],
        ["train", "--neuron", "quaternary"],
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args, capsys):
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_photos_of_a_real_capture_train_over_a_random_background_and_keep_their_colours():
    import numpy as np

    from spiknerf.nerf.data.scene import make_split
    from spiknerf.nerf.step import Batcher

    images = np.random.default_rng(0).integers(0, 256, (2, 6, 8, 3), dtype=np.uint8)
    split = make_split(images, np.eye(4)[None].repeat(2, 0), np.array([[10.0, 10.0, 4.0, 3.0]] * 2), ["a", "b"])
    draws = {}
    for opaque in (False, True):
        batch = Batcher(split, torch.device("cpu"), torch.Generator().manual_seed(1), opaque).draw(64)
        draws[opaque] = batch.target, batch.background
    assert torch.equal(draws[False][1], torch.ones(64, 3)) and draws[True][1].std() > 0.2
    assert torch.equal(draws[False][0], draws[True][0])  # the same rays' photo colours: nothing shows through


def test_photos_of_an_object_keep_a_white_background_on_their_white_backdrop_only():
    import numpy as np

    from spiknerf.nerf.data.scene import make_split
    from spiknerf.nerf.step import Batcher

    images = np.random.default_rng(0).integers(0, 200, (2, 6, 8, 3), dtype=np.uint8)
    images[:, :3] = 255  # the upper half of each photo is the white backdrop
    split = make_split(images, np.eye(4)[None].repeat(2, 0), np.array([[10.0, 10.0, 4.0, 3.0]] * 2), ["a", "b"])
    batch = Batcher(split, torch.device("cpu"), torch.Generator().manual_seed(1), backdrop=True).draw(256)
    white = (batch.target == 1.0).all(-1)
    assert white.any() and (~white).any()
    assert torch.equal(batch.background[white], torch.ones(int(white.sum()), 3))
    assert batch.background[~white].std() > 0.2


def test_a_hash_grid_looks_up_zero_or_one_point_as_part_of_a_batch():
    # a batch of 0 or 1 points is padded to 2 (torch would compile a kernel of its own for it, mid-run)
    grid = HashGrid(log2_table=12, max_resolution=64)
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(5, 3)
    full = grid(x)
    for n in (0, 1):
        out = grid(x[:n])
        assert torch.equal(out, full[:n])
        grid.table.grad = None
        (out * 3).sum().backward()
        alone = grid.table.grad.clone()
        grid.table.grad = None
        (grid(x)[:n] * 3).sum().backward()
        torch.testing.assert_close(alone, grid.table.grad)
