"""Contraction of unbounded space into the grid, and the sampler marching contracted space."""

import torch

from spiknerf.nerf.contraction import contract, from_unit, to_unit, uncontract
from spiknerf.nerf.fields import NGPField
from spiknerf.nerf.sampler import OccupancyGridSampler

AABB = torch.tensor([-1.0, -2.0, 0.0, 3.0, 2.0, 1.0])


def test_contraction_keeps_the_box_and_maps_all_space_into_the_unit_cube():
    gen = torch.Generator().manual_seed(0)
    inside = AABB[:3] + torch.rand(1000, 3, generator=gen) * (AABB[3:] - AABB[:3])
    assert torch.allclose(to_unit(inside, AABB), 0.25 + 0.5 * (inside - AABB[:3]) / (AABB[3:] - AABB[:3]))
    far = torch.randn(1000, 3, generator=gen) * torch.logspace(0, 6, 1000)[:, None]
    u = to_unit(far, AABB)
    assert ((u >= 0) & (u <= 1)).all()


def test_contraction_round_trips_out_to_far_away():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 3, generator=gen, dtype=torch.float64) * torch.logspace(-1, 2, 2000, dtype=torch.float64)[
        :, None]
    back = from_unit(to_unit(x, AABB.double()), AABB.double())
    assert torch.allclose(back, x, rtol=1e-6, atol=1e-6)
    z = torch.rand(500, 3, generator=gen, dtype=torch.float64) * 3.98 - 1.99
    assert torch.allclose(contract(uncontract(z)), z, atol=1e-9)


def test_the_sampler_marches_through_the_box_and_on_into_contracted_space():
    sampler = OccupancyGridSampler(AABB, near=0.05, far=1e4, step_size=0.05, resolution=16, contract=True,
                                   far_steps=32)
    origins = torch.tensor([[1.0, 0.0, 0.5], [20.0, 0.0, 0.5]])  # one inside the box, one far outside it
    dirs = torch.nn.functional.normalize(torch.tensor([[1.0, 0.3, 0.2], [-1.0, 0.0, 0.0]]), dim=-1)
    samples = sampler.sample(origins, dirs)
    for ray in (0, 1):
        mine = samples.ray_indices == ray
        starts, ends = samples.t_starts[mine], samples.t_ends[mine]
        assert (ends > starts).all() and torch.allclose(starts[1:], ends[:-1])  # contiguous, in order
        assert ends.max() > 1e3  # on to far beyond the box
        pts = origins[ray] + dirs[ray] * ((starts + ends) / 2)[:, None]
        u = to_unit(pts, AABB)
        assert ((u >= 0) & (u < 1)).all()
    inside = samples.ray_indices == 0
    in_box = samples.t_ends[inside] <= 2.0  # the first ray leaves the box within 2
    assert torch.allclose(samples.t_ends[inside][in_box] - samples.t_starts[inside][in_box], torch.tensor(0.05))
    # the ray from outside the box crosses it too, at the march step, between x = 3 and x = -1
    outside = samples.ray_indices == 1
    mid = (samples.t_starts[outside] + samples.t_ends[outside]) / 2
    assert ((mid > 17.0) & (mid < 21.0)).sum() >= 75


def test_an_unbounded_field_has_density_everywhere_and_its_grid_prunes_in_contracted_space():
    field = NGPField(AABB, n_levels=4, log2_table=10, max_resolution=32, hidden=16, contract=True)
    far = torch.tensor([[100.0, 0.0, 0.0], [0.0, -1e4, 5.0]])
    assert (field.density(far) > 0).all()
    sampler = OccupancyGridSampler(AABB, near=0.05, far=1e4, step_size=0.05, resolution=8, contract=True)

    def only_far(x: torch.Tensor) -> torch.Tensor:  # something beyond the box's +x face only
        return 1e3 * (x[..., 0] > 3).float()

    sampler.update(0, only_far)
    assert 0 < sampler.occupied_fraction < 1
    samples = sampler.sample(torch.tensor([[1.0, 0.0, 0.5]]), torch.tensor([[1.0, 0.0, 0.0]]), sigma_fn=only_far)
    assert len(samples) and samples.t_starts.min() > 1.9  # the ray leaves the box at t = 2
