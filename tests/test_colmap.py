"""Each photo's camera from the COLMAP model beside an LLFF capture: read, matched by name, refused when hostile."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from spiknerf.errors import InputError
from spiknerf.nerf.data import load_scene


def write_model(folder: Path, cameras: dict[int, tuple[int, int, int, tuple[float, ...]]],
                images: dict[str, int], points: int = 2) -> None:
    """COLMAP's binary cameras.bin and images.bin (each image with ``points`` 2D points) in folder/sparse/0."""
    model = folder / "sparse" / "0"
    model.mkdir(parents=True)
    data = struct.pack("<Q", len(cameras))
    for cid, (kind, w, h, params) in cameras.items():
        data += struct.pack("<iiQQ", cid, kind, w, h) + struct.pack(f"<{len(params)}d", *params)
    (model / "cameras.bin").write_bytes(data)
    data = struct.pack("<Q", len(images))
    for i, (name, cid) in enumerate(images.items()):
        data += struct.pack("<idddddddi", i + 1, 1, 0, 0, 0, 0, 0, 0, cid) + name.encode() + b"\0"
        data += struct.pack("<Q", points) + b"\0" * 24 * points
    (model / "images.bin").write_bytes(data)


def names(n: int) -> list[str]:
    return [f"img_{i:03d}.jpg" for i in range(n)]  # the fixture's photos are PNGs: matched by stem


def test_each_photo_gets_its_own_colmap_camera_scaled_to_the_images(llff_scene, tmp_path):
    folder = llff_scene(n=10, size=(12, 16))
    # COLMAP saw the photos at twice the size: its intrinsics halve; view i's focal is 40 + i there
    cameras = {i + 1: (1, 32, 24, (40.0 + i, 41.0 + i, 16.5, 11.0)) for i in range(10)}
    write_model(folder, cameras, {n: i + 1 for i, n in enumerate(names(10))})
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    assert any("each photo's camera read from sparse/0 (PINHOLE; 10 distinct" in n for n in scene.notes)
    for split in scene.splits.values():
        for name, intr in zip(split.names, split.intrinsics, strict=True):
            i = int(name[4:7])
            assert torch.allclose(intr, torch.tensor([(40.0 + i) / 2, (41.0 + i) / 2, 8.25, 5.5]))
        assert split.distortion is None


def test_a_colmap_lens_bends_the_rays(llff_scene, tmp_path):
    folder = llff_scene(n=10, size=(12, 16))
    write_model(folder, {1: (4, 16, 12, (20.0, 20.0, 8.0, 6.0, 0.05, -0.01, 0.001, 0.002))},
                {n: 1 for n in names(10)})
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    lens = scene.splits["train"].distortion
    assert lens is not None and torch.allclose(lens[0], torch.tensor([0.05, -0.01, 0.0, 0.001, 0.002]))
    assert any("lens distortion (k1, k2, p1, p2)" in n for n in scene.notes)


@pytest.mark.parametrize("problem, note", [
    ("missing", "has no camera for img_009.png"),
    ("fisheye", "camera model OPENCV_FISHEYE not supported"),
])
def test_a_model_that_does_not_cover_the_photos_is_noted_and_left_out(llff_scene, tmp_path, problem, note):
    folder = llff_scene(n=10, size=(12, 16))
    kind, params = (5, (30.0,) * 8) if problem == "fisheye" else (0, (30.0, 8.0, 6.0))
    write_model(folder, {1: (kind, 16, 12, params)}, {n: 1 for n in names(9 if problem == "missing" else 10)})
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    assert any(note in n for n in scene.notes)
    assert torch.equal(scene.splits["train"].intrinsics[:, 0], torch.full((len(scene.splits["train"]),), 20.0))


@pytest.mark.parametrize("damage", ["truncated", "huge count", "unknown model", "name runs off"])
def test_a_damaged_model_is_one_input_error(llff_scene, tmp_path, damage):
    folder = llff_scene(n=10, size=(12, 16))
    write_model(folder, {1: (0, 16, 12, (30.0, 8.0, 6.0))}, {n: 1 for n in names(10)})
    cams, imgs = folder / "sparse/0/cameras.bin", folder / "sparse/0/images.bin"
    if damage == "truncated":
        cams.write_bytes(cams.read_bytes()[:-4])
    elif damage == "huge count":
        imgs.write_bytes(struct.pack("<Q", 1 << 60) + imgs.read_bytes()[8:])
    elif damage == "unknown model":
        cams.write_bytes(struct.pack("<Qii", 1, 1, 99) + cams.read_bytes()[16:])
    else:
        imgs.write_bytes(imgs.read_bytes()[:8 + 64 + 3])
    with pytest.raises(InputError, match="sparse/0/(cameras|images).bin"):
        load_scene(folder, cache_dir=tmp_path / "c")
