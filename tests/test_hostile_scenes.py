"""Hostile scene folders and data files: each is refused with one ``error:`` line and exit code 2.

Every case runs ``spiknerf train --data SCENE --dry-run`` in-process (``spiknerf bench classify`` for MNIST IDX
files) and checks what a person sees: exit code 2, exactly one stderr line starting with ``error:``, no
traceback; and that nothing outside the scene folder was opened (an audit hook records every ``open``) or
changed. Parsers are also fuzzed with hypothesis. The decompression bombs run in a subprocess that reports its
own peak RSS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import orbit_c2w, smooth_image, write_png16
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from spiknerf import cli
from spiknerf.nerf.data import load_scene

FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TRIED = {"hostile inputs": 0}

# ---------------------------------------------------------------- running the command line and watching it

_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # stays for the session, records only while run_cli runs


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Keep downscaled-image cache entries away from the user's cache; count the hostile inputs."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg"))
    yield
    print(f"\n{TRIED['hostile inputs']} hostile inputs tried")
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved


def run_cli(argv: list[str]) -> tuple[int, str, list[str]]:
    """(exit code, stderr, realpaths opened) of ``spiknerf ARGV`` run in this process."""
    global _opened
    err = io.StringIO()
    _opened = []
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = cli.main([str(a) for a in argv])
    finally:
        opened, _opened = _opened, None
    # a warning would be one more line on a person's terminal
    assert not caught, [str(w.message) for w in caught]
    return code, err.getvalue(), opened


def dry_run(scene: Path, *extra: str) -> list[str]:
    return ["train", "--data", scene, "--dry-run", *extra]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def check_run(argv: list[str], outside: Path, expect: str = "refused") -> str:
    """Run; ``expect`` "refused" (exit 2, one ``error:`` line), "loads" (exit 0) or "either"; outside untouched."""
    TRIED["hostile inputs"] += expect != "loads"
    before = snapshot(outside)
    code, err, opened = run_cli(argv)
    if expect == "loads" or (expect == "either" and code == 0):
        assert code == 0 and not err, err
    else:
        assert code == 2, err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not [p for p in opened if Path(p).is_relative_to(outside)], opened
    assert snapshot(outside) == before
    return err


# ---------------------------------------------------------------- a world: one scene folder beside a folder of secrets


@pytest.fixture
def world(tmp_path):
    """``tmp_path/outside`` holds files a scene must never reach (a valid image among them)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    iio.imwrite(outside / "secret.png", smooth_image(12, 16, 4, 0))
    (outside / "secret.txt").write_text("do not read")
    np.save(outside / "poses_bounds.npy", np.zeros((2, 17)))
    (outside / "images").mkdir()
    iio.imwrite(outside / "images" / "img_000.png", smooth_image(12, 16, 3, 0))
    return tmp_path


def frames_for(n: int, path: str = "./train/r_{i}") -> list[dict]:
    return [{"file_path": path.format(i=i), "transform_matrix": c2w.tolist()} for i, c2w in enumerate(orbit_c2w(n))]


def blender(root: Path, n: int = 2, size: tuple[int, int] = (12, 16), **meta) -> Path:
    folder = root / "scene"
    (folder / "train").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        iio.imwrite(folder / "train" / f"r_{i}.png", smooth_image(*size, 4, i))
    meta = {"camera_angle_x": 0.7, "frames": frames_for(n), **meta}
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    return folder


def ngp(root: Path, n: int = 3, **meta) -> Path:
    folder = root / "scene"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        iio.imwrite(folder / "images" / f"{i:03d}.png", smooth_image(12, 16, 3, i))
    meta = {"fl_x": 14.0, "frames": frames_for(n, "images/{i:03d}.png"), **meta}
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def llff(root: Path, n: int = 3) -> Path:
    folder = root / "scene"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        pose = np.concatenate([-np.eye(3)[:, 1:2], np.eye(3)[:, 0:1], np.eye(3)[:, 2:3],
                               [[0.2 * np.cos(i)], [0.1 * np.sin(i)], [4.0]], [[12], [16], [20.0]]], 1)
        rows.append(np.concatenate([pose.ravel(), [2.0, 8.0]]))
        iio.imwrite(folder / "images" / f"img_{i:03d}.png", smooth_image(12, 16, 3, i))
    np.save(folder / "poses_bounds.npy", np.array(rows))
    return folder


def npz_arrays(n: int = 3) -> dict[str, np.ndarray]:
    return {"images": np.stack([smooth_image(12, 16, 3, i) for i in range(n)]),
            "poses": orbit_c2w(n).astype(np.float32), "focal": np.array(15.0)}


def set_frame(folder: Path, i: int, key: str, value, name: str = "transforms_train.json") -> None:
    meta = json.loads((folder / name).read_text())
    meta["frames"][i][key] = value
    (folder / name).write_text(json.dumps(meta))


class Unpickled:
    """Creates ``MARKER`` when unpickled: proof that a file made the loader run code."""

    marker = ""

    def __reduce__(self):
        return open, (self.marker, "w")


def pickled_array(marker: Path) -> np.ndarray:
    Unpickled.marker = str(marker)
    return np.array([Unpickled()], dtype=object)


def npy_bytes(header: dict | str, data: bytes = b"", version: int = 1) -> bytes:
    text = header if isinstance(header, str) else repr(header)
    text = text + " " * (-(len(text) + 11) % 64) + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode("latin1") + data


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def patch_zip(data: bytes, local: int, central: int, value: bytes) -> bytes:
    """Overwrite a field of the first member's local header (at ``local``) and central entry (at ``central``)."""
    data = bytearray(data)
    data[local:local + len(value)] = value
    at = data.index(b"PK\x01\x02") + central
    data[at:at + len(value)] = value
    return bytes(data)


def png_header_bomb(path: Path, width: int = 12000, height: int = 12000) -> None:
    """A PNG declaring ``width x height`` RGB pixels; only a few rows of data follow (enough to be refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes((1 + 3 * width) * 4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def jpeg_declaring(path: Path, width: int, height: int) -> None:
    """A small JPEG whose frame header claims ``width x height``."""
    buffer = io.BytesIO()
    Image.fromarray(smooth_image(12, 16, 3, 0)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0") + 5
    data[at:at + 4] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- paths that leave the scene folder


OUTSIDE_ENTRIES = {
    "dotdot": "../outside/secret",
    "dotdot-with-extension": "../outside/secret.png",
    "absolute": "{outside}/secret.png",
    "inside-then-out": "train/../../outside/secret.png",
    "nul-byte": "train/r_0.png\x00.txt",
    "folder-itself": ".",
}


@pytest.mark.parametrize("entry", OUTSIDE_ENTRIES.values(), ids=OUTSIDE_ENTRIES.keys())
@pytest.mark.parametrize("fmt", ["blender", "ngp"])
def test_file_path_outside_the_folder_is_refused(world, fmt, entry):
    outside = world / "outside"
    entry = entry.format(outside=outside)
    folder = blender(world) if fmt == "blender" else ngp(world)
    set_frame(folder, 1, "file_path", entry, "transforms_train.json" if fmt == "blender" else "transforms.json")
    err = check_run(dry_run(folder), outside)
    assert "frame 1: file_path" in err and "is outside the scene folder" in err


@pytest.mark.parametrize("entry", ["../outside/{name}", "{outside}/{name}", "link/{name}"])
def test_refusal_reads_the_same_whether_the_outside_file_exists(world, entry):
    """No existence oracle: a present and an absent outside file give the same message."""
    outside = world / "outside"
    folder = blender(world)
    (folder / "link").symlink_to(outside)
    messages = []
    for name in ("secret.png", "missing.png"):
        value = entry.format(outside=outside, name=name)
        set_frame(folder, 0, "file_path", value)
        messages.append(check_run(dry_run(folder), outside).replace(value, "ENTRY"))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("target", ["secret.png", "missing.png"])
def test_symlinked_image_leading_outside_is_refused(world, target):
    outside = world / "outside"
    folder = ngp(world)
    (folder / "images" / "001.png").unlink()
    (folder / "images" / "001.png").symlink_to(outside / target)
    err = check_run(dry_run(folder), outside)
    assert "'images/001.png' is outside the scene folder" in err


@pytest.mark.parametrize("name, fmt", [("transforms_train.json", "blender"), ("transforms.json", "ngp"),
                                       ("poses_bounds.npy", "llff"), ("tiny.npz", "npz")])
def test_symlinked_scene_file_leading_outside_is_refused(world, name, fmt):
    outside = world / "outside"
    folder = world / "scene"
    folder.mkdir()
    (folder / name).symlink_to(outside / "secret.txt")
    assert f"'{name}' is outside the scene folder" in check_run(dry_run(folder), outside)


def test_llff_image_folders_and_images_leading_outside_are_refused(world):
    outside = world / "outside"
    folder = llff(world)
    (folder / "images_2").symlink_to(outside / "images")
    assert "'images_2' is outside the scene folder" in check_run(dry_run(folder, "--downscale", "2"), outside)
    (folder / "images" / "img_003.png").symlink_to(outside / "secret.png")
    assert "'images/img_003.png' is outside the scene folder" in check_run(dry_run(folder), outside)


def test_symlinks_that_stay_inside_are_followed(world, tmp_path):
    """The scene folder may itself be a symlink, and links between its own files are fine."""
    outside = world / "outside"
    folder = blender(world)
    (folder / "pictures").mkdir()
    (folder / "train" / "r_1.png").rename(folder / "pictures" / "one.png")
    (folder / "train" / "r_1.png").symlink_to("../pictures/one.png")
    (world / "alias").symlink_to(folder)
    check_run(dry_run(world / "alias"), outside, expect="loads")
    scene = load_scene(world / "alias", cache_dir=tmp_path / "cache")
    assert scene.name == "alias" and scene.splits["test"].names + scene.splits["train"].names == ["r_0.png", "r_1.png"]


# ---------------------------------------------------------------- images


def _replace_image(folder: Path, make) -> None:
    target = folder / "train" / "r_1.png"
    target.unlink()
    make(target)


IMAGES = {
    "png-12000x12000": (png_header_bomb, "12000x12000 (144.0 megapixels), more than the limit"),
    "jpeg-declaring-9000x9000": (lambda p: jpeg_declaring(p, 9000, 9000), "more than the limit"),
    "jpeg-declaring-60000x60000": (lambda p: jpeg_declaring(p, 60000, 60000), "too large to open"),
    "png-declaring-2x-pillows-limit": (lambda p: png_header_bomb(p, 20000, 20000), "too large to open"),
    "apng": (lambda p: Image.fromarray(smooth_image(12, 16, 4, 0)).save(
        p, "PNG", save_all=True, append_images=[Image.fromarray(smooth_image(12, 16, 4, 1))]), "2 frames"),
    "gif-named-png": (lambda p: Image.fromarray(smooth_image(12, 16, 3, 0)).save(p, "GIF"), "cannot read image"),
    "tiff-pages-named-png": (lambda p: Image.fromarray(smooth_image(12, 16, 3, 0)).save(
        p, "TIFF", save_all=True, append_images=[Image.fromarray(smooth_image(12, 16, 3, 1))]), "2 frames"),
    "cmyk-jpeg": (lambda p: Image.fromarray(smooth_image(12, 16, 3, 0)).convert("CMYK").save(p, "JPEG"),
                  "colour model CMYK"),
    "ycbcr-tiff": (lambda p: Image.fromarray(smooth_image(12, 16, 3, 0)).convert("YCbCr").save(p, "TIFF"),
                   "colour model YCbCr"),
    "16-bit-grey": (lambda p: write_png16(p, np.zeros((12, 16), np.uint16)), "unsupported channel count 1"),
    "1-bit": (lambda p: Image.fromarray(np.zeros((12, 16), bool)).save(p, "PNG"), "unsupported bit depth"),
    "grey-alpha": (lambda p: Image.new("LA", (16, 12)).save(p, "PNG"), "unsupported channel count 2"),
    "other-size": (lambda p: iio.imwrite(p, smooth_image(10, 16, 4, 0)), "all images of a split must match"),
    "zero-bytes": (lambda p: p.write_bytes(b""), "cannot read image"),
    "truncated": (lambda p: p.write_bytes(iio.imwrite("<bytes>", smooth_image(12, 16, 4, 0), extension=".png")[:80]),
                  "cannot read image"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(300)), "cannot read image"),
    "folder": (lambda p: p.mkdir(), "not found"),
    "fifo": (lambda p: os.mkfifo(p), "not found"),
}


@pytest.mark.parametrize("make, expected", IMAGES.values(), ids=IMAGES.keys())
def test_hostile_image_is_refused(world, make, expected):
    folder = blender(world, n=3)
    _replace_image(folder, make)
    assert expected in check_run(dry_run(folder), world / "outside")


def test_palette_and_16_bit_colour_images_still_load(world, tmp_path):
    folder = blender(world, n=3)
    _replace_image(folder, lambda p: Image.fromarray(smooth_image(12, 16, 4, 1)).convert("P").convert("RGBA")
                   .save(p, "PNG"))
    write_png16(folder / "train" / "r_2.png", np.full((12, 16, 4), 257 * 9, np.uint16))
    check_run(dry_run(folder), world / "outside", expect="loads")
    train = load_scene(folder, cache_dir=tmp_path / "c").splits["train"]
    assert (train.images[train.names.index("r_2.png")] == 9).all()


def test_one_file_listed_many_times_is_refused(world):
    folder = blender(world, n=1)
    meta = {"camera_angle_x": 0.7, "frames": frames_for(1, "./train/r_0") * 5000}
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    assert "frames 0 and 1 both show train/r_0.png" in check_run(dry_run(folder), world / "outside")


@pytest.mark.parametrize("variable, value, expected", [
    ("SPIKNERF_MAX_MEMORY", "2K", "more than the budget of 2.0 KiB"),
    ("SPIKNERF_MAX_IMAGE_PIXELS", "100", "more than the limit of 0.0 megapixels"),
    ("SPIKNERF_MAX_JSON_BYTES", "100", "more than the 100 bytes such a file may have"),
    ("SPIKNERF_MAX_MEMORY", "plenty", "SPIKNERF_MAX_MEMORY must be a positive size"),
])
def test_limits_refuse_and_can_be_set(world, monkeypatch, variable, value, expected):
    folder = blender(world, n=3)
    monkeypatch.setenv(variable, value)
    assert expected in check_run(dry_run(folder), world / "outside")


def test_the_budget_counts_every_split(world, monkeypatch):
    folder = blender(world, n=3)
    (folder / "transforms_test.json").write_text((folder / "transforms_train.json").read_text())
    stack, image = 3 * 12 * 16 * 4, 12 * 16 * 4
    monkeypatch.setenv("SPIKNERF_MAX_MEMORY", str(2 * stack + image - 1))  # one byte short for the test split
    err = check_run(dry_run(folder), world / "outside")
    assert "scene-test: 3 images of 16x12x4 need" in err and "already taken" in err


# ---------------------------------------------------------------- scene JSON


JSON_TEXTS = {
    "nested-100000": "[" * 100_000 + "]" * 100_000,
    "nested-in-a-key": '{"camera_angle_x": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "int-5000-digits": '{"camera_angle_x": ' + "7" * 5000 + ', "frames": []}',
    "int-400-digits-in-pose": None,  # filled below
    "nan-angle": '{"camera_angle_x": NaN, "frames": []}',
    "infinite-angle": '{"camera_angle_x": -1e999, "frames": []}',
    "not-utf8": b"\xff\xfe\x00\xd8 broken",
    "top-level-list": "[1, 2]",
    "frames-a-string": '{"camera_angle_x": 0.7, "frames": "many"}',
    "empty-file": "",
}
_frames = frames_for(2)
_frames[1]["transform_matrix"][0][3] = "@HOLE@"
JSON_TEXTS["int-400-digits-in-pose"] = json.dumps({"camera_angle_x": 0.7, "frames": _frames}).replace(
    '"@HOLE@"', "-" + "9" * 400)


@pytest.mark.parametrize("text", JSON_TEXTS.values(), ids=JSON_TEXTS.keys())
def test_hostile_transforms_json_is_refused(world, text):
    folder = blender(world)
    path = folder / "transforms_train.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert "transforms_train.json" in check_run(dry_run(folder), world / "outside")


NGP_META = {
    "aabb-scale-negative": ({"aabb_scale": -2}, "aabb_scale must be positive"),
    "aabb-scale-zero": ({"aabb_scale": 0}, "aabb_scale must be positive"),
    "scale-negative": ({"scale": -0.33}, "scale must be positive"),
    "scale-tiny": ({"scale": 1e-300}, "give no usable box"),
    # a subnormal double: the command flushes denormals to zero (spiknerf.denormals), Python's floats too
    "scale-subnormal": ({"scale": 1e-320}, "scale must be positive (got 0.0)"),
    "offset-nan": ({"offset": [float("nan"), 0, 0]}, "offset must be 3 finite numbers"),
    "offset-nested": ({"offset": [[[[[[[[[[1]]]]]]]]]]}, "offset must be 3 numbers"),
    "offset-huge": ({"offset": [1e308, 0, 0], "scale": 1e-10}, "give no usable box"),
    "width-negative": ({"w": -16}, "w must not be negative"),
    "focal-a-list": ({"fl_x": list(range(10000))}, "fl_x must be a finite number (got [0, 1, 2, 3, 4, 5, ...])"),
    "fisheye": ({"camera_model": "OPENCV_FISHEYE"}, "pinhole cameras only"),
}


@pytest.mark.parametrize("meta, expected", NGP_META.values(), ids=NGP_META.keys())
def test_hostile_ngp_values_are_refused(world, meta, expected):
    folder = ngp(world, **meta)
    err = check_run(dry_run(folder), world / "outside")
    assert expected in err and len(err) < 1000


def test_absolute_file_path_in_transforms_json(world):
    folder = ngp(world)
    set_frame(folder, 0, "file_path", "/etc/passwd", "transforms.json")
    assert "'/etc/passwd' is outside the scene folder" in check_run(dry_run(folder), world / "outside")


# ---------------------------------------------------------------- arrays: poses_bounds.npy and tiny-NeRF .npz


def _marker_absent(world: Path) -> None:
    assert not (world / "unpickled").exists(), "loading a scene ran code from a pickle"


POSES_BOUNDS = {
    "zero-bytes": (lambda w: b"", "cut short"),
    "no-rows": (lambda w: npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (0, 17)}), "zero frames"),
    "pickled-objects": (lambda w: _npy(pickled_array(w / "unpickled")), "only plain numbers are read"),
    "strings": (lambda w: _npy(np.array(["a" * 17] * 3)), "only plain numbers are read"),
    "structured": (lambda w: _npy(np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])), "only plain numbers are read"),
    "declares-10^12-rows": (lambda w: npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**12, 17)}),
                            "header declares"),
    "declares-negative": (lambda w: npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (-3, 17)}),
                          "malformed .npy header"),
    "header-code": (lambda w: npy_bytes("__import__('os').system('touch unpickled')"), "malformed .npy header"),
    "header-too-long": (lambda w: npy_bytes("{" + " " * 70000 + "}", version=2), "more than 10000"),
    "version-3": (lambda w: npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (3, 17)}, version=3),
                  "not a .npy array"),
    "an-npz": (lambda w: zip_bytes({"a.npy": _npy(np.zeros((3, 17)))}), "not a .npy array"),
    "cut-short": (lambda w: _npy(np.ones((3, 17)))[:-8], "header declares"),
    "non-finite": (lambda w: _npy(np.full((3, 17), np.inf)), "non-finite values"),
    # cameras all around one point: not forward-facing (no average orientation), and no region to frame
    "opposite-cameras": (lambda w: _npy(_opposite_cameras()), "no region to frame"),
}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _opposite_cameras() -> np.ndarray:
    """Three cameras whose viewing axes, 120 degrees apart, sum to nothing: no average orientation."""
    rows = []
    for angle in (0, 2 * np.pi / 3, 4 * np.pi / 3):
        c, s = np.cos(angle), np.sin(angle)
        c2w = np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 4.0]])
        pose = np.concatenate([-c2w[:, 1:2], c2w[:, 0:1], c2w[:, 2:4], [[12], [16], [20.0]]], 1)
        rows.append(np.concatenate([pose.ravel(), [2.0, 8.0]]))
    return np.array(rows)


@pytest.mark.parametrize("make, expected", POSES_BOUNDS.values(), ids=POSES_BOUNDS.keys())
def test_hostile_poses_bounds_is_refused(world, make, expected):
    folder = llff(world)
    (folder / "poses_bounds.npy").write_bytes(make(world))
    assert expected in check_run(dry_run(folder), world / "outside")
    _marker_absent(world)


def _npz_with(**members: bytes) -> bytes:
    base = {f"{k}.npy": _npy(v) for k, v in npz_arrays().items()}
    base.update({f"{k}.npy": v for k, v in members.items()})
    return zip_bytes({k: v for k, v in base.items() if v is not None}, zipfile.ZIP_DEFLATED)


_BOMB_HEADER = npy_bytes({"descr": "|u1", "fortran_order": False, "shape": (1, 15000, 15000, 3)})
NPZ = {
    "zero-bytes": (lambda w: b"", "not an .npz archive"),
    "random-bytes": (lambda w: os.urandom(500), "not an .npz archive"),
    "no-members": (lambda w: zip_bytes({}), "missing arrays images, poses, focal (has none)"),
    "pickled-images": (lambda w: _npz_with(images=_npy(pickled_array(w / "unpickled"))), "only plain numbers"),
    "zero-frames": (lambda w: _npz_with(images=_npy(np.zeros((0, 12, 16, 3), np.uint8))), "zero frames"),
    "poses-mismatch": (lambda w: _npz_with(poses=_npy(np.zeros((2, 4, 4)))), "3 images but 2 poses"),
    "images-not-npy": (lambda w: _npz_with(images=b"PK not an array"), "not a .npy array"),
    "header-declares-15000^2": (lambda w: _npz_with(images=_BOMB_HEADER + bytes(100)), "header declares"),
    "member-declares-15000^2": (lambda w: patch_zip(_npz_stored(_BOMB_HEADER + bytes(100)), 22, 24,
                                                    struct.pack("<I", len(_BOMB_HEADER) + 15000 * 15000 * 3)),
                                "more than the limit"),
    "unknown-compression": (lambda w: patch_zip(_npz_stored(), 8, 10, struct.pack("<H", 99)), "cannot read"),
    "bad-crc": (lambda w: _flip(_npz_stored(), 200), "cannot read"),
    "cut-short": (lambda w: _npz_with()[:-300], "not an .npz archive"),
    "images-float-nan": (lambda w: _npz_with(images=_npy(np.full((3, 12, 16, 3), np.nan, np.float32))), "[0, 1]"),
    "focal-negative": (lambda w: _npz_with(focal=_npy(np.array(-1.0))), "focal must be positive"),
    "focal-strings": (lambda w: _npz_with(focal=_npy(np.array(["x"]))), "only plain numbers"),
    "images-one-channel": (lambda w: _npz_with(images=_npy(np.zeros((3, 12, 16, 1), np.uint8))), "channel count 1"),
    "poses-scaled": (lambda w: _npz_with(poses=_npy(orbit_c2w(3) * 2)), "not a rigid transform"),
}


def _npz_stored(images: bytes | None = None) -> bytes:
    """A valid, uncompressed tiny-NeRF .npz (images first), optionally with other ``images`` bytes."""
    members = {f"{k}.npy": _npy(v) for k, v in npz_arrays().items()}
    return zip_bytes(members | ({"images.npy": images} if images is not None else {}))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.mark.parametrize("make, expected", NPZ.values(), ids=NPZ.keys())
def test_hostile_npz_is_refused(world, make, expected):
    path = world / "scene" / "tiny.npz"
    path.parent.mkdir()
    path.write_bytes(make(world))
    assert expected in check_run(dry_run(path), world / "outside")
    assert expected in check_run(dry_run(path.parent), world / "outside")  # found inside its folder
    _marker_absent(world)


# ---------------------------------------------------------------- the downscaled-image cache


CACHE_ENTRIES = {
    "zero-bytes": lambda w: b"",
    "random-bytes": lambda w: os.urandom(1000),
    "cut-short": None,  # the real entry, cut in half
    "pickled-images": lambda w: zip_bytes({"images.npy": _npy(pickled_array(w / "unpickled"))}),
    "other-shape": lambda w: zip_bytes({"images.npy": _npy(np.zeros((2, 3, 4, 4), np.uint8))}),
    "a-folder": None,
}


@pytest.mark.parametrize("name", CACHE_ENTRIES)
def test_a_broken_cache_entry_is_rebuilt(world, tmp_path, name):
    folder = blender(world, n=3)
    cache = tmp_path / "cache"
    first = load_scene(folder, downscale=2, cache_dir=cache)
    (entry,) = (cache / "images").glob("*.npz")
    if name == "a-folder":
        entry.unlink()
        entry.mkdir()
    else:
        make = CACHE_ENTRIES[name]
        entry.write_bytes(make(world) if make else entry.read_bytes()[: entry.stat().st_size // 2])
    TRIED["hostile inputs"] += 1
    if name == "a-folder":
        with pytest.raises(Exception):  # noqa: B017 - a folder cannot be replaced by the atomic rename
            load_scene(folder, downscale=2, cache_dir=cache)
        return
    again = load_scene(folder, downscale=2, cache_dir=cache)
    assert any("downscaled and cached in" in n for n in again.notes)
    assert again.splits["train"].images.equal(first.splits["train"].images)
    assert any("read from cache" in n for n in load_scene(folder, downscale=2, cache_dir=cache).notes)
    _marker_absent(world)


# ---------------------------------------------------------------- MNIST IDX files for bench classify


def idx_bytes(dims: tuple[int, ...], data: bytes | None = None) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return header + (bytes(int(np.prod(dims))) if data is None else data)


def mnist_folder(root: Path, images: bytes, gz: bool = True, labels: int = 4) -> Path:
    folder = root / "mnist"
    folder.mkdir(exist_ok=True)
    write = gzip.compress if gz else (lambda b: b)
    suffix = ".gz" if gz else ""
    (folder / f"train-images-idx3-ubyte{suffix}").write_bytes(images)
    (folder / f"train-labels-idx1-ubyte{suffix}").write_bytes(write(idx_bytes((labels,))))
    (folder / f"t10k-images-idx3-ubyte{suffix}").write_bytes(write(idx_bytes((2, 28, 28))))
    (folder / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(write(idx_bytes((2,))))
    return folder


def classify(folder: Path, tmp: Path) -> list[str]:
    return ["bench", "classify", "--dataset", "mnist", "--data", folder, "--epochs", "1", "--seeds", "1",
            "--hidden", "8", "--T", "1", "--tb", tmp / "tb"]


IDX = {  # train images file, train labels count, expected message
    "corrupt-gzip": (lambda: b"\x1f\x8b\x08\x00" + os.urandom(200), 4, "cannot read"),
    "not-gzip": (lambda: os.urandom(200), 4, "cannot read"),
    "gzip-cut-short": (lambda: gzip.compress(idx_bytes((4, 28, 28)))[:-30], 4, "cannot read"),
    "zero-images": (lambda: gzip.compress(idx_bytes((0, 28, 28))), 0, "hold no pixels"),
    "zero-images-4-labels": (lambda: gzip.compress(idx_bytes((0, 28, 28))), 4, "do not match"),
    "zero-pixel-images": (lambda: gzip.compress(idx_bytes((4, 0, 28))), 4, "hold no pixels"),
    "declares-3.1-GB": (lambda: gzip.compress(idx_bytes((4_000_000, 28, 28), b"")), 4, "more than the"),
    "more-data-than-declared": (lambda: gzip.compress(idx_bytes((4, 28, 28)) + bytes(10_000)), 4, "more data"),
    "less-data-than-declared": (lambda: gzip.compress(idx_bytes((4, 28, 28), bytes(100))), 4, "cut short"),
    "no-dimensions": (lambda: gzip.compress(b"\x00\x00\x08\x00"), 4, "bad magic"),
    "labels-as-images": (lambda: gzip.compress(idx_bytes((4,))), 4, "do not match"),
}


@pytest.mark.parametrize("make, labels, expected", IDX.values(), ids=IDX.keys())
def test_hostile_idx_is_refused(world, tmp_path, make, labels, expected):
    folder = mnist_folder(world, make(), labels=labels)
    assert expected in check_run(classify(folder, tmp_path), world / "outside")


def test_plain_idx_shorter_than_its_header_is_refused(world, tmp_path):
    folder = mnist_folder(world, idx_bytes((4, 28, 28), bytes(10)), gz=False)
    assert "file holds 10" in check_run(classify(folder, tmp_path), world / "outside")


# ---------------------------------------------------------------- fuzzing the parsers

HOSTILE_TEXT = ["../outside/secret.png", "/etc/passwd", "train/../../outside/secret", "train/r_0\x00", "", ".",
                "train", "train/r_0.png/x", "~/x.png", "\\..\\x.png", "a" * 5000]
RAW_NUMBERS = ["7" * 5000, "-" + "9" * 400, "1e999", "-1e999", "NaN", "Infinity", "1e-400", "-0", "0"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(HOSTILE_TEXT) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
# a JSON fragment: a value, a raw number Python's json would choke on, or deep nesting
fragments = st.one_of(
    json_values.map(json.dumps),
    st.sampled_from(RAW_NUMBERS),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
)


def _fuzz_world() -> tuple[tempfile.TemporaryDirectory, Path]:
    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name)
    (root / "outside").mkdir()
    iio.imwrite(root / "outside" / "secret.png", smooth_image(12, 16, 4, 0))
    return tmp, root


def _fuzz_json(make_scene, name: str, keys: list[str]):
    """Replace one top-level or per-frame key's value by a hostile fragment, or the whole file by bytes."""

    @FUZZ
    @given(st.one_of(
        st.tuples(st.sampled_from(keys), st.sampled_from(["top", "frame 0", "frame 1"]), fragments),
        st.binary(max_size=200).map(lambda raw: (None, None, raw)),
    ))
    def run(case):
        key, where, fragment = case
        path = folder / name
        if key is None:
            path.write_bytes(fragment)
        else:
            meta = json.loads(pristine)
            (meta if where == "top" else meta["frames"][int(where[-1])])[key] = "@HOLE@"
            path.write_text(json.dumps(meta).replace('"@HOLE@"', fragment))
        check_run(dry_run(folder), root / "outside", expect="either")

    tmp, root = _fuzz_world()
    with tmp:
        folder = make_scene(root)
        pristine = (folder / name).read_text()
        run()


def test_fuzzed_blender_json():
    _fuzz_json(lambda root: blender(root, n=2), "transforms_train.json",
               ["camera_angle_x", "frames", "file_path", "transform_matrix"])


def test_fuzzed_ngp_json():
    _fuzz_json(lambda root: ngp(root, n=2), "transforms.json",
               ["fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y", "aabb_scale", "scale",
                "offset", "camera_model", "k1", "file_path", "transform_matrix", "frames"])


npy_headers = st.fixed_dictionaries({
    "descr": st.sampled_from(["<f8", "<f4", ">f8", "<i8", "|u1", "|b1", "|O", "<U3", "<c16", "f8,i4", "(2,)f8",
                              "<m8", "zz"]),
    "fortran_order": st.sampled_from([False, True, 0, "no"]),
    "shape": st.one_of(st.lists(st.integers(-2, 40), max_size=3).map(tuple),
                       st.tuples(st.integers(0, 2**64), st.just(17)), st.just((3, 17)), st.just("(3, 17)")),
})
npy_files = st.one_of(
    st.tuples(npy_headers, st.binary(max_size=500)).map(lambda hd: npy_bytes(*hd)),
    st.lists(st.floats(width=64), min_size=51, max_size=51).map(lambda v: _npy(np.array(v).reshape(3, 17))),
    st.tuples(st.integers(0, 600), st.integers(0, 255)).map(lambda at: _flip(_npy(llff_rows()), min(at[0], 535))),
    st.integers(0, 536).map(lambda n: _npy(llff_rows())[:n]),
)


def llff_rows() -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        return np.load(llff(Path(tmp)) / "poses_bounds.npy")


@FUZZ
@given(npy_files)
def test_fuzzed_poses_bounds(data):
    tmp, root = _fuzz_world()
    with tmp:
        folder = llff(root)
        (folder / "poses_bounds.npy").write_bytes(data)
        check_run(dry_run(folder), root / "outside", expect="either")


npz_members = st.dictionaries(
    st.sampled_from(["images.npy", "poses.npy", "focal.npy", "images", "other.npy"]),
    st.one_of(npy_files, st.binary(max_size=100), st.sampled_from([_npy(v) for v in npz_arrays().values()])),
    max_size=4,
)


@FUZZ
@given(npz_members, st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.integers(0, 5000),
       st.integers(-1, 5000))
def test_fuzzed_npz(members, method, flip, cut):
    data = zip_bytes({f"{k}.npy": _npy(v) for k, v in npz_arrays().items()} | members, method)
    data = _flip(data, flip % len(data))
    data = data[:cut] if cut >= 0 else data
    tmp, root = _fuzz_world()
    with tmp:
        (root / "scene").mkdir()
        (root / "scene" / "tiny.npz").write_bytes(data)
        check_run(dry_run(root / "scene" / "tiny.npz"), root / "outside", expect="either")


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(smooth_image(12, 16, 4 if fmt == "PNG" else 3, 1)).save(buffer, fmt)
    return buffer.getvalue()


ENCODED = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP")}


@FUZZ
@given(st.sampled_from(sorted(ENCODED)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4),
       st.integers(-1, 10**6))
def test_fuzzed_image_files(fmt, flips, cut):
    data = bytearray(ENCODED[fmt])
    for at, xor in flips:
        data[at % len(data)] ^= xor
    data = bytes(data[:cut] if cut >= 0 else data)
    tmp, root = _fuzz_world()
    with tmp:
        folder = blender(root, n=2, size=(12, 16))
        for i in range(2):  # the same broken bytes for both views (else sizes or channels might differ)
            (folder / "train" / f"r_{i}.png").write_bytes(data if fmt != "JPEG" or i else ENCODED[fmt])
        check_run(dry_run(folder), root / "outside", expect="either")


# ---------------------------------------------------------------- decompression bombs: peak memory of a real run

# The child reports its own peak RSS, VmHWM: getrusage's ru_maxrss (RUSAGE_SELF or RUSAGE_CHILDREN) would
# include the RSS of this pytest process, which Linux carries over into a child through fork and exec.
CHILD = """
import json, sys
from spiknerf.cli import main

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

report = {}
for name, argv in json.loads(sys.argv[1]):
    code = main(argv)
    report[name] = [code, peak()]
print(json.dumps(report))
"""


def png_bomb(path: Path, side: int = 12000) -> None:
    """A real PNG of ``side x side`` black RGB pixels (a few MB that decode to hundreds)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, parts = zlib.compressobj(1), bytes(1 + 3 * side), []
    parts += [packer.compress(row) for _ in range(side)]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(parts) + packer.flush()) + chunk(b"IEND", b""))


def npz_bomb(path: Path, side: int = 15000) -> None:
    """An .npz whose images member inflates to side x side x 3 bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in npz_arrays(1).items():
            if key != "images":
                archive.writestr(f"{key}.npy", _npy(value))
        with archive.open("images.npy", "w", force_zip64=True) as f:
            f.write(npy_bytes({"descr": "|u1", "fortran_order": False, "shape": (1, side, side, 3)}))
            row = bytes(side * 3)
            for _ in range(side):
                f.write(row)


def idx_bomb(path: Path, count: int) -> None:
    """A gzipped IDX of ``count`` 28 x 28 images that really inflates to that size."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(idx_bytes((count, 28, 28), b""))
        block = bytes(28 * 28 * 1000)
        for _ in range(count // 1000):
            f.write(block)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_decompression_bombs_stay_within_a_few_hundred_mb(world, tmp_path):
    outside = world / "outside"
    valid = blender(world, n=2)
    png = blender(world / "png", n=2)
    png_bomb(png / "train" / "r_1.png")
    (world / "npz").mkdir()
    npz_bomb(world / "npz" / "bomb.npz")
    idx = mnist_folder(world, b"")
    # 300 MB of pixels: more than a fifth of the 1 GiB budget set below
    idx_bomb(idx / "train-images-idx3-ubyte.gz", 400_000)
    runs = [("valid scene", dry_run(valid)), ("png 12000x12000", dry_run(png)),
            ("npz 15000x15000x3", dry_run(world / "npz" / "bomb.npz")), ("idx 400000 images", classify(idx, tmp_path))]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "SPIKNERF_MAX_MEMORY": "1G"}
    before = snapshot(outside)
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps([(n, [str(a) for a in v]) for n, v in runs])],
                           capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.splitlines()[-1])
    errors = [line for line in child.stderr.splitlines() if line]
    TRIED["hostile inputs"] += 3
    assert [report[n][0] for n, _ in runs] == [0, 2, 2, 2] and len(errors) == 3, child.stderr
    assert all(line.startswith("error: ") for line in errors) and "Traceback" not in child.stderr
    baseline = report["valid scene"][1]
    peak = max(rss for _, rss in report.values())
    print(f"\npeak RSS: baseline {baseline / 2**20:.0f} MiB, with the bombs {peak / 2**20:.0f} MiB")
    assert peak - baseline < 64 * 2**20 and peak < 700 * 2**20, report
    assert snapshot(outside) == before
