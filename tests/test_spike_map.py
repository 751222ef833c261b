"""The per-ray spike-count map of a spiking student: shape, sign, misses, and a count by hand."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spiknerf.cli import main as cli
from spiknerf.nerf.data.builtin import SceneSpec, write_scene
from spiknerf.nerf.fields import NGPField
from spiknerf.nerf.render import composite, render_chunks
from spiknerf.nerf.sampler import OccupancyGridSampler
from spiknerf.nerf.spike_map import colorize, rendering_weights, spike_map
from spiknerf.nerf.student import SpikingNGPField
from spiknerf.paths import ROOT

AABB = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])


@pytest.fixture(scope="module")
def student() -> SpikingNGPField:
    """A tiny student whose layers fire a mix of 0, 1 and 2."""
    torch.manual_seed(3)
    s = SpikingNGPField(AABB, n_levels=4, log2_table=10, max_resolution=32, hidden=16, color_hidden=16,
                        reset="soft", v_threshold=0.25, delta_v=0.25, decay_input=False)
    with torch.no_grad():
        s.encoding.table.normal_(0, 1.0)
        for layer in (s.trunk, s.color1, s.color2):
            layer.fc.weight.mul_(8.0)
    return s.eval()


@pytest.fixture(scope="module")
def sampler(student) -> OccupancyGridSampler:
    s = OccupancyGridSampler(AABB, 2.0, 6.0, 0.1, resolution=8)
    s.update(0, student.density)
    return s


def rays(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` rays from a sphere of radius 4 at the box, then 3 that point away from it (they miss)."""
    g = torch.Generator().manual_seed(0)
    origins = F.normalize(torch.randn(n + 3, 3, generator=g), dim=-1) * 4
    dirs = F.normalize(torch.randn(n + 3, 3, generator=g) * 0.2 - origins, dim=-1)
    dirs[n:] = F.normalize(origins[n:], dim=-1)
    return origins, dirs


def test_one_non_negative_count_per_ray_and_zero_where_rays_miss(student, sampler):
    origins, dirs = rays(40)
    counts = spike_map(student, sampler, origins, dirs, torch.ones(3), chunk=16)
    assert counts.shape == (43,) and counts.dtype == torch.float32
    assert (counts >= 0).all()
    assert (counts[40:] == 0).all()
    assert (counts[:40] > 0).sum() > 20
    assert render_chunks(student, sampler, origins[40:], dirs[40:], torch.ones(3)).samples_per_ray == 0


def test_a_ray_counts_every_spike_of_every_layer_at_every_sample(student, sampler):
    origins, dirs = rays(40)
    counts = spike_map(student, sampler, origins, dirs, torch.ones(3))
    ray = int(counts.argmax())
    o, d = origins[ray:ray + 1], dirs[ray:ray + 1]
    samples = sampler.sample(o, d, sigma_fn=student.density)
    points, directions = samples.points(o, d)
    with torch.no_grad():  # the forward pass of SpikingNGPField, layer by layer
        u, _ = student.box.normalize(points)
        e = student.encoding(u)
        trunk = student.trunk(e)
        current = student.dir_current(student.dir_encoding(directions)) + student.skip_current(e)
        color1 = student.color1(trunk, current=current)
        color2 = student.color2(color1)
    by_hand = sum(float(s.sum()) for s in (trunk, color1, color2))  # ternary spikes are 0, 1 or 2
    assert {float(v) for s in (trunk, color1, color2) for v in s.unique()} == {0.0, 1.0, 2.0}
    assert float(counts[ray]) == pytest.approx(by_hand)


def test_rendering_weights_sum_to_the_rendered_opacity(student, sampler):
    origins, dirs = rays(40)
    samples = sampler.sample(origins, dirs, sigma_fn=student.density)
    with torch.no_grad():
        rendered = composite(student, samples, origins, dirs, torch.ones(3))
    weights = rendering_weights(rendered.sigmas, samples.t_starts, samples.t_ends, samples.ray_indices)
    per_ray = torch.zeros(len(origins)).index_add_(0, samples.ray_indices, weights)
    torch.testing.assert_close(per_ray, rendered.opacity, atol=1e-5, rtol=1e-4)
    summed = spike_map(student, sampler, origins, dirs, torch.ones(3))
    weighted = spike_map(student, sampler, origins, dirs, torch.ones(3), weighting="rendering")
    assert (weighted <= summed + 1e-3).all() and float(weighted.sum()) > 0
    assert (weighted[40:] == 0).all()


def test_an_ann_field_and_a_bad_weighting_are_refused(student, sampler):
    origins, dirs = rays(2)
    with pytest.raises(ValueError, match="no spiking neurons"):
        spike_map(NGPField(AABB), sampler, origins, dirs, torch.ones(3))
    with pytest.raises(ValueError, match="weighting"):
        spike_map(student, sampler, origins, dirs, torch.ones(3), weighting="max")


def test_colorize_is_dark_for_none_and_brighter_for_more():
    colours = colorize(torch.tensor([[0.0, 1.0, 2.0, 4.0, 9.0]]), top=4.0)
    assert colours.shape == (1, 5, 3) and float(colours.min()) >= 0 and float(colours.max()) <= 1
    brightness = colours.sum(-1)[0]
    assert float(brightness[0]) < 0.05 and bool((brightness[1:4].diff() > 0).all())
    torch.testing.assert_close(colours[0, 3], colours[0, 4])  # clipped at top
    assert float(colorize(torch.zeros(2, 2)).max()) < 0.05


def test_the_readme_figure_shows_a_rendering_beside_its_spike_map(tmp_path):
    scene = write_scene(tmp_path / "scene", SceneSpec(size=16, views=4, test_views=1))
    run = tmp_path / "run"
    assert cli(["train", "--data", str(scene), "--out", str(run), "--model", "student", "--no-kd", "--steps", "3",
                "--video-frames", "0", "--device", "cpu"]) == 0
    out = tmp_path / "figure.png"
    done = subprocess.run([sys.executable, "scripts/make_readme_figure.py", "--run", str(run), "--out", str(out),
                           "--scale", "2"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    image = iio.imread(out)
    assert image.shape == (32, 2 * 32 + 8, 3) and image.dtype == np.uint8
    assert (image[:, 32:40] == 255).all()  # the white gap between the two
    bad = subprocess.run([sys.executable, "scripts/make_readme_figure.py", "--run", str(run), "--view", "5",
                          "--out", str(tmp_path / "x.png")], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --view 5")
