"""Image reading (16-bit), area downscaling with premultiplied alpha, and the downscale cache."""

import os

import numpy as np
import pytest
from conftest import write_png16

from spiknerf.errors import InputError
from spiknerf.nerf.data import images, load_scene
from spiknerf.nerf.data.images import downscale_image, read_image


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_png_reads_as_rounded_8_bit(tmp_path, channels):
    gen = np.random.default_rng(0)
    values = gen.integers(0, 65536, size=(5, 7, channels), dtype=np.uint16)
    values[0, 0] = 65535
    values[0, 1] = 0
    write_png16(tmp_path / "deep.png", values)
    image = read_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (5, 7, channels)
    assert image[0, 0].tolist() == [255] * channels and image[0, 1].tolist() == [0] * channels
    # Pillow keeps the high byte, exact rounding is v / 257: either is within one 8-bit step
    assert np.abs(image.astype(int) - np.rint(values / 257.0)).max() <= 1


def test_16_bit_scene_loads(blender_scene, tmp_path):
    folder = blender_scene(splits={"train": 2, "test": 1}, size=(4, 6))
    write_png16(folder / "train" / "r_1.png", np.full((4, 6, 4), 257 * 200, np.uint16))
    split = load_scene(folder, cache_dir=tmp_path / "cache").splits["train"]
    assert (split.images[1] == 200).all()


def test_16_bit_gray_is_rejected_for_its_channels_not_its_depth(tmp_path):
    write_png16(tmp_path / "gray.png", np.zeros((3, 3), np.uint16))
    with pytest.raises(InputError, match="unsupported channel count 1"):
        read_image(tmp_path / "gray.png")


def test_downscale_averages_premultiplied_colour():
    image = np.zeros((2, 2, 4), np.uint8)
    image[0, 0] = (255, 0, 0, 255)  # one opaque red pixel
    image[1, 1] = (0, 0, 255, 0)  # a transparent pixel's colour must not leak in
    out = downscale_image(image, 2)
    assert out.shape == (1, 1, 4)
    assert out[0, 0].tolist() == [255, 0, 0, 64]  # red, a quarter covered
    # compositing the result equals the average of the composited originals (on white)
    rgb, alpha = out[0, 0, :3] / 255, out[0, 0, 3] / 255
    full = image[..., :3] / 255 * (image[..., 3:] / 255) + (1 - image[..., 3:] / 255)
    assert np.allclose(rgb * alpha + (1 - alpha), full.mean((0, 1)), atol=2 / 255)


def test_downscale_area_filter_on_uneven_sizes():
    image = np.zeros((10, 7, 3), np.uint8)
    image[:, :] = np.arange(7, dtype=np.uint8)[None, :, None] * 30
    out = downscale_image(image, 3)
    assert out.shape == (3, 2, 3)
    # each output column covers 3.5 input columns: (0 + 30 + 60 + 0.5 * 90) / 3.5 and the rest
    assert out[0, :, 0].tolist() == [round(135 / 3.5), round((45 + 120 + 150 + 180) / 3.5)]


def test_second_downscaled_load_hits_the_cache(blender_scene, tmp_path, monkeypatch):
    folder = blender_scene(size=(12, 16))
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    cache = tmp_path / "cache"
    first = load_scene(folder, downscale=2, cache_dir=cache)
    assert any("downscaled and cached in" in n for n in first.notes)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before  # nothing beside the data

    def no_reading(path):
        raise AssertionError(f"{path} was decoded although it is cached")

    monkeypatch.setattr(images, "read_image", no_reading)
    second = load_scene(folder, downscale=2, cache_dir=cache)
    assert any("read from cache" in n for n in second.notes)
    for name, split in first.splits.items():
        assert split.images.equal(second.splits[name].images)
        assert split.intrinsics.equal(second.splits[name].intrinsics)
    monkeypatch.undo()

    # editing a source image makes a new entry
    image = folder / "train" / "r_0.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = load_scene(folder, downscale=2, cache_dir=cache)
    assert any("train" in n and "cached in" in n for n in third.notes)


def test_default_cache_dir_is_the_user_cache(blender_scene, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_scene(blender_scene(), downscale=2)
    assert list((tmp_path / "xdg" / "spiknerf" / "images").glob("*.npz"))
