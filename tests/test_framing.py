"""Scene kind from the cameras, the ``spiknerf`` block of transforms.json, ``--scene-kind``, and the framing."""

import json

import numpy as np
import pytest
import torch
from conftest import orbit_c2w

from spiknerf.errors import InputError
from spiknerf.nerf.data import load_scene
from spiknerf.nerf.data.framing import Hints, detect_kind, look_at_point, scene_box
from spiknerf.nerf.rays import look_at


def forward_c2w(n: int = 12, jitter_deg: float = 5.0, seed: int = 0) -> np.ndarray:
    """Cameras on the plane z = 4, each looking down -z turned by up to ``jitter_deg``."""
    gen = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        eye = np.array([*gen.uniform(-0.5, 0.5, 2), 4.0])
        tilt = np.tan(np.radians(jitter_deg)) * gen.uniform(-1, 1, 2) * 4.0
        out.append(look_at(torch.tensor(eye), torch.tensor([*(eye[:2] + tilt), 0.0]), torch.tensor([0.0, 1, 0]))
                   .double().numpy())
    return np.stack(out)


def test_forward_cameras_are_detected_as_forward():
    kind, why = detect_kind(forward_c2w())
    assert kind == "forward" and "optical axes" in why


def test_cameras_around_an_object_are_object_or_unbounded():
    ring = orbit_c2w(16).astype(np.float64)
    assert detect_kind(ring, Hints(alpha=True))[0] == "object"  # transparent beyond the object
    assert detect_kind(ring)[0] == "unbounded"  # photos: their background is in the picture
    close = np.tile([[1.0, 5.0]], (16, 1))  # content no farther than the look-at point plus a little
    assert detect_kind(ring, Hints(depths=close))[0] == "object"
    far = np.tile([[1.0, 40.0]], (16, 1))  # a wall ten times as far away as the cameras stand
    assert detect_kind(ring, Hints(depths=far))[0] == "unbounded"
    points = np.random.default_rng(0).normal(size=(500, 3)) * 0.3
    assert detect_kind(ring, Hints(points=points))[0] == "object"
    assert detect_kind(ring, Hints(points=np.concatenate([points, points * 100])))[0] == "unbounded"


def test_look_at_point_and_boxes_centre_on_what_the_cameras_look_at():
    ring = orbit_c2w(16).astype(np.float64)
    ring[:, :3, 3] += [1.0, -2.0, 0.5]  # the whole rig moved: the look-at point moves with it
    assert np.allclose(look_at_point(ring), [1.0, -2.0, 0.5], atol=1e-6)
    intrinsics = np.tile([10.0, 10.0, 8.0, 6.0], (16, 1))
    unbounded = scene_box("unbounded", ring, intrinsics, (12, 16))
    obj = scene_box("object", ring, intrinsics, (12, 16))
    assert np.allclose((unbounded[:3] + unbounded[3:]) / 2, [1.0, -2.0, 0.5], atol=1e-6)
    half_unbounded, half_object = (unbounded[3] - unbounded[0]) / 2, (obj[3] - obj[0]) / 2
    assert np.isclose(half_unbounded, 4.0)  # the cameras (radius 4) stand in the box
    assert 0 < half_object < 4.0  # an object's box is what every camera sees whole


def test_llff_folders_are_framed_by_their_cameras(llff_scene, tmp_path):
    forward = load_scene(llff_scene(n=10), cache_dir=tmp_path / "c")
    assert forward.kind == "forward" and forward.ndc
    assert any(n.startswith("scene kind: forward") for n in forward.notes)
    # the NDC box holds every training ray from the nearest content on (it reaches past [-1, 1]: the
    # cameras are not all at the average one)
    train = forward.splits["train"]
    ys, xs = train.image_pixels()
    o, d, _ = train.rays(torch.zeros_like(ys), ys, xs)
    lo, hi = forward.aabb[:3], forward.aabb[3:]
    t = ((lo[2] - o[:, 2]) / d[:, 2]).clamp(0, 1)
    for p in (o + t[:, None] * d, o + d):
        assert ((p[:, :2] >= lo[:2] - 1e-5) & (p[:, :2] <= hi[:2] + 1e-5)).all()


def test_an_llff_folder_of_cameras_all_around_is_not_forward(llff_scene, tmp_path):
    folder = llff_scene(n=12)
    rows = np.load(folder / "poses_bounds.npy")
    for i, c2w in enumerate(orbit_c2w(12)):
        llff = np.concatenate([-c2w[:3, 1:2], c2w[:3, 0:1], c2w[:3, 2:4]], 1)
        rows[i, :15] = np.concatenate([llff, rows[i, :15].reshape(3, 5)[:, 4:]], 1).ravel()
    np.save(folder / "poses_bounds.npy", rows)
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    assert scene.kind in ("object", "unbounded") and not scene.ndc
    assert load_scene(folder, cache_dir=tmp_path / "c", scene_kind="object").kind == "object"


def test_the_spiknerf_block_declares_kind_and_box_and_the_option_overrides_it(ngp_scene, tmp_path):
    box = [-1.0, -2.0, -0.5, 1.0, 2.0, 1.5]
    folder = ngp_scene(meta={"camera_angle_x": 1.0, "spiknerf": {"scene_kind": "unbounded", "aabb": box}})
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    assert scene.kind == "unbounded" and scene.unbounded
    assert torch.allclose(scene.aabb, torch.tensor(box))
    assert any("declared by the scene" in n for n in scene.notes)
    overridden = load_scene(folder, cache_dir=tmp_path / "c", scene_kind="object")
    assert overridden.kind == "object" and torch.allclose(overridden.aabb, torch.tensor(box))
    assert any("--scene-kind" in n for n in overridden.notes)
    assert load_scene(folder, cache_dir=tmp_path / "c", scene_kind="forward").ndc


@pytest.mark.parametrize("block, message", [
    ({"scene_kind": "indoor"}, "scene_kind must be one of"),
    ({"aabb": [0, 0, 0, 1, 1]}, "aabb must be 6 numbers"),
    ({"aabb": [0, 0, 0, 1, -1, 1]}, "is not a box"),
    ({"aabb": [0, 0, 0, 1, 1, True]}, "aabb must be 6 numbers"),
    ({"kind": "object"}, "unknown key"),
    ([1, 2], "must be an object"),
])
def test_a_bad_spiknerf_block_is_refused(ngp_scene, tmp_path, block, message):
    folder = ngp_scene(meta={"camera_angle_x": 1.0, "spiknerf": block})
    with pytest.raises(InputError, match=message):
        load_scene(folder, cache_dir=tmp_path / "c")


def test_a_bad_scene_kind_is_refused(ngp_scene, tmp_path):
    with pytest.raises(InputError, match="--scene-kind"):
        load_scene(ngp_scene(meta={"camera_angle_x": 1.0}), cache_dir=tmp_path / "c", scene_kind="indoor")


def test_synthetic_scenes_keep_their_box_and_bounds(blender_scene, tmp_path):
    scene = load_scene(blender_scene(), cache_dir=tmp_path / "c")
    assert scene.kind == "object" and (scene.near, scene.far) == (2.0, 6.0)
    assert torch.allclose(scene.aabb, torch.tensor([-1.5] * 3 + [1.5] * 3))


def test_the_kind_is_saved_resolved_in_the_run_config(ngp_scene, tmp_path):
    from spiknerf.cli import main

    folder = ngp_scene(n=9, size=(8, 8), meta={"camera_angle_x": 1.0})
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--steps", "2", "--model", "teacher",
                 "--video-frames", "0"]) == 0
    assert json.loads((out / "config.json").read_text())["scene_kind"] == "unbounded"
