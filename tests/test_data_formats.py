"""Each scene format loads from tiny files; splits, intrinsics, bounds, compositing and rays."""

import json
import math

import numpy as np
import pytest
import torch

from spiknerf.nerf.data import detect_format, load_scene
from spiknerf.nerf.data.framing import apply_transform, average_pose, forward_transform
from spiknerf.nerf.rays import pixel_rays


def test_blender_splits_intrinsics_and_bounds(blender_scene, tmp_path):
    folder = blender_scene(splits={"train": 3, "val": 1, "test": 2}, size=(12, 16))
    scene = load_scene(folder, cache_dir=tmp_path / "cache")
    assert scene.format == "blender" and detect_format(folder)[0] == "blender"
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 3, "val": 1, "test": 2}
    train = scene.splits["train"]
    assert train.images.dtype == torch.uint8 and tuple(train.images.shape) == (3, 12, 16, 4)
    f = 0.5 * 16 / math.tan(0.35)
    assert torch.allclose(train.intrinsics[0], torch.tensor([f, f, 8.0, 6.0]))
    assert scene.near == 2.0 and scene.far == 6.0
    assert scene.aabb.tolist() == [-1.5, -1.5, -1.5, 1.5, 1.5, 1.5]
    assert not scene.ndc


def test_blender_train_only_holds_out_every_8th_view(blender_scene, tmp_path):
    scene = load_scene(blender_scene(splits={"train": 10}), cache_dir=tmp_path / "cache")
    assert scene.splits["test"].names == ["r_0.png", "r_8.png"]
    assert len(scene.splits["train"]) == 8
    assert any("every 8th view (2 of 10) held out for test" in n for n in scene.notes)


def test_blender_val_stands_in_for_missing_test(blender_scene, tmp_path):
    scene = load_scene(blender_scene(splits={"train": 2, "val": 2}), cache_dir=tmp_path / "cache")
    assert scene.splits["test"] is scene.splits["val"]
    assert any("val views are used for test" in n for n in scene.notes)


@pytest.mark.parametrize("background, value", [("white", 1.0), ("black", 0.0)])
def test_pixels_composite_rgba_on_the_background(blender_scene, tmp_path, background, value):
    scene = load_scene(blender_scene(), background=background, cache_dir=tmp_path / "cache")
    split = scene.splits["train"]
    idx, ys, xs = torch.tensor([1, 2]), torch.tensor([0, 11]), torch.tensor([3, 15])
    bg = torch.full((3,), value)
    raw = split.images[idx, ys, xs].float() / 255
    expected = raw[:, :3] * raw[:, 3:] + value * (1 - raw[:, 3:])
    assert torch.allclose(split.pixels(idx, ys, xs, bg), expected)
    per_ray = split.pixels(idx, ys, xs, bg.expand(2, 3))
    assert torch.allclose(per_ray, expected)
    assert torch.allclose(split.image(2, bg)[11, 15], expected[1])


def test_split_rays_and_view_rays_agree_with_pixel_rays(blender_scene, tmp_path):
    split = load_scene(blender_scene(), cache_dir=tmp_path / "cache").splits["train"]
    o, d, vd = split.view_rays(1)
    assert o.shape == (12 * 16, 3) and d.shape == (12 * 16, 3) and vd is None  # world space: d is what colour reads
    y, x = 5, 9  # row-major: index y * W + x
    o_ref, d_ref = pixel_rays(split.c2w[1], split.intrinsics[1], torch.tensor([x]), torch.tensor([y]))
    assert torch.allclose(o[y * 16 + x], o_ref[0]) and torch.allclose(d[y * 16 + x], d_ref[0])
    o1, d1, _ = split.rays(torch.tensor([1]), torch.tensor([y]), torch.tensor([x]))
    assert torch.equal(o1[0], o[y * 16 + x]) and torch.equal(d1[0], d[y * 16 + x])


def test_summary_lists_format_views_resolution_bounds_background(blender_scene, tmp_path):
    scene = load_scene(blender_scene(splits={"train": 10}, size=(12, 16)), downscale=2, background="random",
                       cache_dir=tmp_path / "cache")
    text = scene.summary()
    for part in ("(blender)", "train: 8 views, 8 x 6 RGBA", "test: 2 views", "downscale: 2",
                 "aabb (-1.5, -1.5, -1.5) to (1.5, 1.5, 1.5), near 2, far 6", "background: random", "held out"):
        assert part in text, part


def test_ngp_global_and_per_frame_intrinsics(ngp_scene, tmp_path):
    # intrinsics declared for 24 x 32 images; the files are 12 x 16, so everything halves
    folder = ngp_scene(meta={"fl_x": 30.0, "fl_y": 28.0, "cx": 15.0, "cy": 11.0, "w": 32, "h": 24,
                             "aabb_scale": 2})
    # framed as an object, the scene keeps instant-ngp's box (auto would take these RGB photos as unbounded)
    scene = load_scene(folder, cache_dir=tmp_path / "cache", scene_kind="object")
    assert scene.format == "ngp"
    assert len(scene.splits["train"]) == 7 and len(scene.splits["test"]) == 2
    assert torch.allclose(scene.splits["train"].intrinsics[0], torch.tensor([15.0, 14.0, 7.5, 5.5]))
    half = 2 / 2 / 0.33  # instant-ngp: unit cube grown aabb_scale times, divided by its scale 0.33
    assert torch.allclose(scene.aabb, torch.tensor([-half] * 3 + [half] * 3))
    # the cameras (radius 4, elevation 0.5) include some inside this box: sampling starts at them
    assert scene.near == 0.0 and 4.0 < scene.far <= 4.0 + math.sqrt(3) * half

    json_path = folder / "transforms.json"
    meta = json.loads(json_path.read_text())
    meta = {"frames": [{**f, "camera_angle_x": 1.0, "k1": 0.01} for f in meta["frames"]]}
    json_path.write_text(json.dumps(meta))
    scene = load_scene(folder, cache_dir=tmp_path / "cache", scene_kind="object")
    f = 0.5 * 16 / math.tan(0.5)
    assert torch.allclose(scene.splits["test"].intrinsics[1], torch.tensor([f, f, 8.0, 6.0]))
    half = 0.5 / 0.33  # default aabb_scale 1: every camera is outside the box
    assert 0 < scene.near < 4.0 - half
    assert any("lens distortion (k1)" in n for n in scene.notes)


def test_llff_reads_images_n_recentres_and_returns_ndc_rays(llff_scene, tmp_path):
    folder = llff_scene(n=10, size=(12, 16), factors=(2,))
    scene = load_scene(folder, downscale=2, cache_dir=tmp_path / "cache")
    assert scene.format == "llff" and scene.ndc and (scene.near, scene.far) == (0.0, 1.0)
    assert any("pre-downscaled images_2/" in n for n in scene.notes)
    train, test = scene.splits["train"], scene.splits["test"]
    assert len(train) == 8 and len(test) == 2 and train.height == 6 and train.width == 8
    assert torch.allclose(train.intrinsics[0], torch.tensor([10.0, 10.0, 4.0, 3.0]))  # focal 20 at full size
    o, d, vd = train.rays(torch.tensor([0, 3]), torch.tensor([1, 5]), torch.tensor([2, 7]))
    assert torch.allclose(o[:, 2], torch.full((2,), -1.0))  # NDC origins on the near plane
    assert (d[:, 2] > 0).all()  # towards +1 = infinity
    assert torch.allclose(vd.norm(dim=-1), torch.ones(2)) and (vd[:, 2] < 0).all()  # colour reads world directions
    views = torch.cat([train.c2w, test.c2w]).double().numpy()
    assert np.allclose(average_pose(views), np.eye(4), atol=1e-6)  # recentred
    # nearest bound 2 scaled to 1 / 0.75, so the cameras at depth 4 end up 8 / 3 from the content
    assert np.abs(views[:, :3, 3]).max() < 1.0


def test_llff_downscales_images_when_images_n_is_missing(llff_scene, tmp_path):
    scene = load_scene(llff_scene(n=9, size=(12, 16)), downscale=4, cache_dir=tmp_path / "cache")
    assert scene.splits["train"].width == 4 and scene.splits["train"].height == 3
    assert torch.allclose(scene.splits["train"].intrinsics[0], torch.tensor([5.0, 5.0, 2.0, 1.5]))
    assert any("cached in" in n for n in scene.notes)


def test_recenter_makes_the_average_pose_the_identity():
    gen = np.random.default_rng(0)
    c2w = np.tile(np.eye(4), (5, 1, 1))
    angle = 0.3
    c2w[:, :3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    c2w[:, :3, 3] = gen.normal(size=(5, 3)) + [3, -2, 1]
    assert np.allclose(average_pose(apply_transform(forward_transform(c2w, 1.0), c2w)), np.eye(4), atol=1e-9)


def test_npz_loads_float_images_and_holds_out_views(npz_scene, tmp_path):
    path = npz_scene(n=9, size=(12, 16))
    scene = load_scene(path, cache_dir=tmp_path / "cache")
    assert scene.format == "npz" and scene.name == "tiny_nerf_data"
    assert load_scene(path.parent, cache_dir=tmp_path / "cache").format == "npz"  # found inside a folder
    assert len(scene.splits["train"]) == 7 and len(scene.splits["test"]) == 2
    train = scene.splits["train"]
    assert train.images.dtype == torch.uint8 and train.channels == 3
    assert torch.allclose(train.intrinsics[0], torch.tensor([15.0, 15.0, 8.0, 6.0]))
    assert (scene.near, scene.far) == (2.0, 6.0)


def test_every_format_puts_the_world_origin_at_the_image_centre(blender_scene, ngp_scene, npz_scene, tmp_path):
    """The fixtures' cameras look at the origin: the ray through the image centre must hit it."""
    for path in (blender_scene(), ngp_scene(meta={"fl_x": 14.0}), npz_scene()):
        for split in load_scene(path, cache_dir=tmp_path / "cache").splits.values():
            n = len(split)
            cx = torch.full((n,), split.width / 2 - 0.5)
            cy = torch.full((n,), split.height / 2 - 0.5)
            o, d = pixel_rays(split.c2w, split.intrinsics, cx, cy)
            assert torch.linalg.cross(-o, d).norm(dim=-1).max() < 1e-4, path
