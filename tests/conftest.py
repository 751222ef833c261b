"""Shared test helpers: tiny scenes in every supported format, written under tmp_path."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from spiknerf.nerf.rays import look_at


def orbit_c2w(n: int, radius: float = 4.0, elevation: float = 0.5) -> np.ndarray:
    """``n`` camera-to-world ``[n, 4, 4]`` on a ring around the origin, looking at it."""
    az = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eyes = radius * np.stack([np.cos(az) * np.cos(elevation), np.sin(az) * np.cos(elevation),
                              np.full(n, np.sin(elevation))], -1)
    return np.stack([look_at(torch.tensor(e, dtype=torch.float32), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
                     .numpy() for e in eyes])


def smooth_image(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    """A uint8 ``[h, w, channels]`` gradient image, different per seed (alpha varies too)."""
    y, x = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    planes = [x, y, (x + y + seed * 0.1) % 1.0, 0.25 + 0.75 * x * y][:channels]
    return np.clip(np.stack(planes, -1) * 255, 0, 255).astype(np.uint8)


def eager_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn off the TorchInductor kernels: the renders of tiny runs are quick, a compile is not."""
    import spiknerf.nerf.student  # noqa: F401  (its kernels, and those of the modules it imports)
    from spiknerf.kernels import cpu_kernels

    for kernel in cpu_kernels():
        monkeypatch.setattr(kernel, "enabled", False)


def write_tiny_blender_scene(folder: Path) -> Path:
    """A Blender-format scene of 3 + 2 RGBA views of 12 x 16 in ``folder``; returns ``folder``."""
    for split, n in {"train": 3, "test": 2}.items():
        (folder / split).mkdir(parents=True)
        frames = []
        for i, c2w in enumerate(orbit_c2w(n)):
            iio.imwrite(folder / split / f"r_{i}.png", smooth_image(12, 16, 4, i))
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()})
        (folder / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))
    return folder


def write_png16(path: Path, image: np.ndarray) -> None:
    """A 16-bit PNG (gray, RGB or RGBA) written by hand: Pillow cannot write 16-bit colour."""
    image = np.asarray(image, dtype=">u2")
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                           + chunk(b"IEND", b""))


@pytest.fixture
def blender_scene(tmp_path):
    """Factory: a Blender-format scene folder; ``splits`` maps split name to view count."""

    def make(name: str = "blender", splits: dict[str, int] | None = None, size: tuple[int, int] = (12, 16),
             channels: int = 4, angle: float = 0.7) -> Path:
        folder = tmp_path / name
        splits = splits or {"train": 3, "test": 2}
        for split, n in splits.items():
            (folder / split).mkdir(parents=True)
            frames = []
            for i, c2w in enumerate(orbit_c2w(n)):
                iio.imwrite(folder / split / f"r_{i}.png", smooth_image(*size, channels, i))
                frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()})
            meta = {"camera_angle_x": angle, "frames": frames}
            (folder / f"transforms_{split}.json").write_text(json.dumps(meta))
        return folder

    return make


@pytest.fixture
def ngp_scene(tmp_path):
    """Factory: an instant-ngp / nerfstudio ``transforms.json`` folder; ``meta`` adds top-level keys."""

    def make(n: int = 9, size: tuple[int, int] = (12, 16), meta: dict | None = None,
             per_frame: dict | None = None) -> Path:
        folder = tmp_path / "ngp"
        (folder / "images").mkdir(parents=True)
        frames = []
        for i, c2w in enumerate(orbit_c2w(n)):
            iio.imwrite(folder / "images" / f"{i:03d}.png", smooth_image(*size, 3, i))
            frames.append({"file_path": f"images/{i:03d}.png", "transform_matrix": c2w.tolist(), **(per_frame or {})})
        (folder / "transforms.json").write_text(json.dumps({**(meta or {}), "frames": frames}))
        return folder

    return make


@pytest.fixture
def llff_scene(tmp_path):
    """Factory: an LLFF folder with ``poses_bounds.npy``, ``images/`` and optional ``images_N/``.

    Cameras face -z from the plane z = 4 (forward-facing), bounds 2..8, focal 20 at full size.
    """

    def make(n: int = 10, size: tuple[int, int] = (12, 16), factors: tuple[int, ...] = ()) -> Path:
        folder = tmp_path / "llff"
        h, w = size
        rows = []
        for i in range(n):
            c2w = np.eye(4)
            c2w[:3, 3] = [0.2 * np.cos(i), 0.1 * np.sin(i), 4.0]
            # OpenGL (right, up, backwards) -> LLFF's (down, right, backwards)
            llff = np.concatenate([-c2w[:3, 1:2], c2w[:3, 0:1], c2w[:3, 2:4]], 1)
            rows.append(np.concatenate([np.concatenate([llff, [[h], [w], [20.0]]], 1).ravel(), [2.0, 8.0]]))
        folder.mkdir()
        np.save(folder / "poses_bounds.npy", np.array(rows))
        for sub, k in [("images", 1)] + [(f"images_{f}", f) for f in factors]:
            (folder / sub).mkdir()
            for i in range(n):
                iio.imwrite(folder / sub / f"img_{i:03d}.png", smooth_image(h // k, w // k, 3, i))
        return folder

    return make


@pytest.fixture
def npz_scene(tmp_path):
    """Factory: a tiny-NeRF ``.npz`` with float images in [0, 1]."""

    def make(n: int = 9, size: tuple[int, int] = (12, 16), **override: np.ndarray) -> Path:
        arrays = {
            "images": np.stack([smooth_image(*size, 3, i) for i in range(n)]).astype(np.float32) / 255.0,
            "poses": orbit_c2w(n).astype(np.float32),
            "focal": np.array(15.0),
        }
        arrays.update(override)
        path = tmp_path / "tiny_nerf_data.npz"
        np.savez(path, **arrays)
        return path

    return make
