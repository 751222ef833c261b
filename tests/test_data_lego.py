"""Real data: the lego poses and the loader's rays agree (skipped when ../shared/data is absent)."""


import pytest
import torch

from spiknerf.nerf.data import load_scene
from spiknerf.nerf.rays import pixel_rays
from spiknerf.paths import LEGO

pytestmark = pytest.mark.skipif(not (LEGO / "transforms_train.json").is_file(), reason=f"{LEGO} is absent")


def test_scene_centre_projects_to_the_image_centre_of_every_view(tmp_path):
    scene = load_scene(LEGO, downscale=8, cache_dir=tmp_path)
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 87, "test": 13}
    for split in scene.splits.values():
        assert (split.height, split.width, split.channels) == (100, 100, 4)
        r, t = split.c2w[:, :3, :3], split.c2w[:, :3, 3]
        cam = torch.einsum("nji,nj->ni", r, -t)  # the world origin in camera coordinates
        assert (cam[:, 2] < 0).all()  # in front of every camera (it looks down -z)
        fx, fy, cx, cy = split.intrinsics.unbind(-1)
        u = fx * cam[:, 0] / -cam[:, 2] + cx
        v = -fy * cam[:, 1] / -cam[:, 2] + cy
        assert (u - split.width / 2).abs().max() < 0.5 and (v - split.height / 2).abs().max() < 0.5
        # and the loader's ray through that (fractional) pixel passes through the origin
        o, d = pixel_rays(split.c2w, split.intrinsics, u - 0.5, v - 0.5)
        assert torch.linalg.cross(-o, d).norm(dim=-1).max() < 1e-3
