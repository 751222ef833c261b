"""The built-in scene: deterministic, Blender format, transparent background, varied content, rendered once."""

import pytest
import torch

from spiknerf.errors import InputError
from spiknerf.nerf.data import builtin, default_scene_path, load_scene
from spiknerf.nerf.data.builtin import SceneSpec, write_scene

TINY = SceneSpec(size=24, views=3, test_views=2, seed=5)


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("synthetic") / "shapes", TINY)


def test_written_in_blender_format_and_loaded(tiny_scene, tmp_path):
    scene = load_scene(tiny_scene, cache_dir=tmp_path)
    assert scene.format == "blender"
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 3, "test": 2}
    train = scene.splits["train"]
    assert train.channels == 4 and (train.height, train.width) == (24, 24)
    radius = train.c2w[:, :3, 3].norm(dim=-1)
    assert torch.allclose(radius, torch.full_like(radius, builtin.CAMERA_RADIUS))
    assert (train.c2w[:, 2, 3] > 0).all()  # upper hemisphere


def test_views_show_an_object_on_a_transparent_background(tiny_scene, tmp_path):
    images = load_scene(tiny_scene, cache_dir=tmp_path).splits["train"].images
    alpha = images[..., 3]
    assert (alpha[:, 0, 0] == 0).all() and (alpha[:, -1, -1] == 0).all()  # corners are background
    assert (alpha[:, 12, 12] == 255).all()  # the object is at the centre
    covered = images[alpha == 255][:, :3]
    assert len(torch.unique(covered // 32, dim=0)) >= 10  # many distinct colours


def test_deterministic_and_seeded(tiny_scene, tmp_path):
    again = write_scene(tmp_path / "again", TINY)
    for name in ("transforms_train.json", "train/r_0.png", "test/r_1.png"):
        assert (again / name).read_bytes() == (tiny_scene / name).read_bytes(), name
    other = write_scene(tmp_path / "other", SceneSpec(size=24, views=3, test_views=2, seed=6))
    assert (other / "transforms_train.json").read_text() != (tiny_scene / "transforms_train.json").read_text()


def test_highlight_moves_with_the_view():
    """View-dependent colour: the same surface point looks different from two directions."""
    shapes = builtin.scene_shapes()
    point = torch.tensor([0.45, 0.30, builtin.PEDESTAL_TOP + 0.84])  # top of the glossy striped sphere
    colours = []
    for eye in (torch.tensor([0.0, 0.0, 4.0]), torch.tensor([3.0, -2.0, 1.5])):
        d = (point - eye) / (point - eye).norm()
        rgb, alpha = builtin.shade(shapes, eye[None], d[None])
        assert alpha.item() == 1.0
        colours.append(rgb[0])
    assert (colours[0] - colours[1]).abs().max() > 0.05


def test_refuses_to_overwrite(tiny_scene):
    with pytest.raises(InputError, match="already exists"):
        write_scene(tiny_scene, TINY)


def test_default_scene_is_rendered_once_into_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def small_write(out, spec=None):
        calls.append(out)
        return write_scene(out, TINY)  # full size takes ~20 s; the folder logic is what is tested here

    monkeypatch.setattr(builtin, "write_scene", small_write)
    path = default_scene_path()
    assert path.parent == tmp_path / "spiknerf" / "scenes" and (path / "transforms_train.json").is_file()
    assert default_scene_path() == path and len(calls) == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert load_scene(path, cache_dir=tmp_path).format == "blender"
