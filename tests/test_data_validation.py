"""Bad scenes raise InputError with one line that names the file and what is wrong."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from spiknerf.errors import InputError
from spiknerf.nerf.data import load_scene


def load_error(path, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load_scene(path, cache_dir=path.parent / "cache" if path.exists() else None, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def edit_json(path, edit) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_missing_folder(tmp_path):
    assert "does not exist" in load_error(tmp_path / "nowhere")


def test_no_recognisable_format(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no recognisable format" in load_error(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hi")
    assert "not a .npz" in load_error(tmp_path / "notes.txt")


def test_invalid_json(blender_scene):
    folder = blender_scene()
    (folder / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    message = load_error(folder)
    assert "transforms_train.json" in message and "invalid JSON" in message


def test_missing_image(blender_scene):
    folder = blender_scene()
    (folder / "train" / "r_1.png").unlink()
    message = load_error(folder)
    assert "transforms_train.json" in message and "frame 1" in message and "not found" in message


def test_unreadable_image(blender_scene):
    folder = blender_scene()
    (folder / "test" / "r_0.png").write_bytes(b"not a png at all")
    message = load_error(folder)
    assert "r_0.png" in message and "cannot read image" in message


def test_images_of_different_sizes(blender_scene):
    folder = blender_scene(size=(12, 16))
    iio.imwrite(folder / "train" / "r_2.png", np.zeros((10, 16, 4), np.uint8))
    message = load_error(folder)
    assert "r_2.png" in message and "16x10" in message and "16x12" in message


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda m: m.__setitem__(0, [float("nan")] * 4), "not finite"),
        (lambda m: [row.__setitem__(j, 1.1 * row[j]) for row in m[:3] for j in range(3)], "not a rigid transform"),
        (lambda m: [row.__setitem__(0, -row[0]) for row in m[:3]], "not a rigid transform"),  # mirrored
        (lambda m: m.__setitem__(3, [0.0, 0.0, 1.0, 1.0]), "bottom row"),
    ],
    ids=["nan", "scaled", "mirrored", "bottom-row"],
)
def test_bad_pose(blender_scene, edit, expected):
    folder = blender_scene()
    edit_json(folder / "transforms_train.json", lambda meta: edit(meta["frames"][1]["transform_matrix"]))
    message = load_error(folder)
    assert "transforms_train.json" in message and "r_1.png" in message and expected in message


def test_zero_frames(blender_scene):
    folder = blender_scene()
    edit_json(folder / "transforms_test.json", lambda meta: meta.__setitem__("frames", []))
    message = load_error(folder)
    assert "transforms_test.json" in message and "zero frames" in message


def test_missing_camera_angle_and_transform(blender_scene):
    folder = blender_scene()
    edit_json(folder / "transforms_train.json", lambda meta: meta.pop("camera_angle_x"))
    assert "camera_angle_x is missing" in load_error(folder)
    folder = blender_scene(name="second")
    edit_json(folder / "transforms_train.json", lambda meta: meta["frames"][0].pop("transform_matrix"))
    assert "frame 0" in load_error(folder) and "transform_matrix" in load_error(folder)


@pytest.mark.parametrize("mode, channels", [("L", 1), ("LA", 2)])
def test_unsupported_channel_count(blender_scene, mode, channels):
    folder = blender_scene()
    shape = (12, 16) if channels == 1 else (12, 16, channels)
    Image.fromarray(np.zeros(shape, np.uint8), mode).save(folder / "train" / "r_0.png")
    message = load_error(folder)
    assert "r_0.png" in message and f"unsupported channel count {channels}" in message


def test_unsupported_bit_depth(blender_scene):
    folder = blender_scene()
    Image.fromarray(np.zeros((12, 16), bool)).save(folder / "train" / "r_0.png")  # a 1-bit PNG
    message = load_error(folder)
    assert "r_0.png" in message and "unsupported bit depth" in message


@pytest.mark.parametrize("downscale", [0, -1, 1.5, True])
def test_bad_downscale(blender_scene, downscale):
    assert "--downscale must be an integer >= 1" in load_error(blender_scene(), downscale=downscale)


def test_downscale_larger_than_the_images(blender_scene):
    assert "cannot be downscaled by 32" in load_error(blender_scene(size=(12, 16)), downscale=32)


def test_bad_background(blender_scene):
    assert "background must be one of" in load_error(blender_scene(), background="green")


def test_llff_pose_and_image_counts_must_match(llff_scene):
    folder = llff_scene(n=9)
    (folder / "images" / "img_004.png").unlink()
    message = load_error(folder)
    assert "poses_bounds.npy has 9 poses" in message and "8 images" in message
    np.save(folder / "poses_bounds.npy", np.zeros((9, 15)))
    assert "expected an [N, 17] array" in load_error(folder)


def test_npz_missing_arrays_and_several_archives(npz_scene):
    path = npz_scene()
    np.savez(path, images=np.zeros((2, 4, 4, 3), np.float32))
    message = load_error(path)
    assert "tiny_nerf_data.npz" in message and "missing arrays poses, focal" in message
    np.savez(path.parent / "other.npz", x=np.zeros(1))
    assert "several .npz files" in load_error(path.parent)


def test_npz_float_images_outside_unit_range(npz_scene):
    path = npz_scene(n=2, images=np.full((2, 4, 4, 3), 2.0, np.float32))
    assert "[0, 1]" in load_error(path)


def test_messages_count_frames_as_the_json_does_when_views_are_held_out(blender_scene):
    folder = blender_scene(splits={"train": 10})
    (folder / "train" / "r_3.png").unlink()
    assert "frame 3: image ./train/r_3 not found" in load_error(folder)
