"""spiknerf process: tiny generated captures posed by pycolmap, video frames, and bad input."""

from __future__ import annotations

import json
import math
from collections import namedtuple

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pycolmap")

from spiknerf.capture.accuracy import pose_errors, umeyama  # noqa: E402
from spiknerf.capture.normalize import SCENE_KINDS, detect_scene_kind, frame_scene  # noqa: E402
from spiknerf.capture.photos import natural_key, read_photo  # noqa: E402
from spiknerf.capture.quality import alignment, moved, write_quality_scenes  # noqa: E402
from spiknerf.capture.scene_folder import lens  # noqa: E402
from spiknerf.capture.sfm import image_pairs  # noqa: E402
from spiknerf.capture.textured import write_capture  # noqa: E402
from spiknerf.capture.video import extract_frames, sharpness  # noqa: E402
from spiknerf.cli import main  # noqa: E402
from spiknerf.nerf.data import load_scene  # noqa: E402
from spiknerf.nerf.rays import look_at  # noqa: E402

# 8 views over 60 degrees at 240 x 180: the smallest capture pycolmap posed whole in trials
CAPTURE = {"views": 8, "width": 240, "height": 180, "supersample": 1, "arc_deg": 60.0}


def one_error(capsys) -> str:
    """The one ``error:`` line the command printed (progress bars aside), with no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def cameras_of(path) -> dict[str, np.ndarray]:
    meta = json.loads(path.read_text())
    key = "source" if "capture" in meta else "file_path"
    return {f[key].split("/")[-1]: np.array(f["transform_matrix"]) for f in meta["frames"]}


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("capture") / "shapes", **CAPTURE)


@pytest.fixture(scope="module")
def processed(capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("processed") / "scene"
    code = main(["process", "--images", str(capture / "images"), "--out", str(out)])
    assert code == 0
    return out


def test_process_poses_a_small_capture(capture, processed):
    meta = json.loads((processed / "transforms.json").read_text())
    assert meta["capture"]["registered"] == CAPTURE["views"]
    assert meta["capture"]["mean_reprojection_error_px"] < 1.0
    block = meta["spiknerf"]
    assert block["scene_kind"] in SCENE_KINDS
    lo, hi = np.array(block["aabb"][:3]), np.array(block["aabb"][3:])
    assert (lo < hi).all()
    errors = pose_errors(cameras_of(processed / "transforms.json"), cameras_of(capture / "transforms.json"))
    assert errors.cameras == CAPTURE["views"]
    # loose: 8 small views over 60 degrees leave focal length and distortion poorly told apart (a few degrees);
    # a wrong axis convention would be off by tens of degrees. The benchmark measures the real accuracy.
    assert np.median(errors.rotation_deg) < 5.0 and np.median(errors.position_rel) < 0.02
    scene = load_scene(processed)
    assert len(scene.splits["train"]) + len(scene.splits["test"]) == CAPTURE["views"]
    names = sorted(p.name for p in (processed / "images").iterdir())
    for k in (2, 4):
        shrunk = iio.imread(processed / f"images_{k}" / names[0])
        assert shrunk.shape[:2] == (scene.splits["train"].height // k, scene.splits["train"].width // k)
    assert (processed / "colmap" / "sparse" / "0" / "images.bin").is_file()
    assert not (processed / "work").exists()
    assert not [p for p in processed.parent.iterdir() if p.name.startswith(".")]


def test_process_keeps_the_pixels_and_writes_the_lens(capture, processed):
    """The images are the photos as posed (not resampled or cropped); the lens goes beside them, bending the rays."""
    meta = json.loads((processed / "transforms.json").read_text())
    for frame in meta["frames"]:
        written = iio.imread(processed / frame["file_path"])
        assert np.array_equal(written, iio.imread(capture / "images" / frame["source"]))
    assert (meta["w"], meta["h"]) == (CAPTURE["width"], CAPTURE["height"])
    f, cx, cy, k = meta["capture"]["estimated_camera"]["params"]
    assert (meta["fl_x"], meta["fl_y"], meta["cx"], meta["cy"], meta["k1"]) == (f, f, cx, cy, k)
    train = load_scene(processed).splits["train"]
    assert train.distortion is not None and train.distortion[0, 0].item() == pytest.approx(k, rel=1e-6)


def test_lens_fields_of_each_camera_model():
    camera = namedtuple("Camera", "model_name params")
    assert lens(camera("SIMPLE_RADIAL", [500.0, 200.0, 150.0, -0.02])) == {
        "fl_x": 500.0, "fl_y": 500.0, "cx": 200.0, "cy": 150.0, "k1": -0.02, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    opencv = lens(camera("OPENCV", [500.0, 510.0, 200.0, 150.0, -0.02, 0.01, 0.001, -0.002]))
    assert list(opencv.values()) == [500.0, 510.0, 200.0, 150.0, -0.02, 0.01, 0.001, -0.002]


def test_quality_scenes_differ_only_in_the_training_cameras(capture, processed, tmp_path):
    scenes = write_quality_scenes(capture, processed, tmp_path)
    true, estimated = load_scene(scenes["true"]), load_scene(scenes["estimated"])
    assert true.kind == estimated.kind and torch.equal(true.aabb, estimated.aabb)
    a, b = true.splits["test"], estimated.splits["test"]
    assert a.names == b.names and len(a) == len(range(0, CAPTURE["views"], 8))
    assert torch.equal(a.c2w, b.c2w) and torch.equal(a.intrinsics, b.intrinsics) and torch.equal(a.images, b.images)
    assert b.distortion is None or not b.distortion.any()
    assert true.splits["train"].names == estimated.splits["train"].names
    assert not torch.equal(true.splits["train"].c2w, estimated.splits["train"].c2w)


def test_held_out_cameras_are_aligned_exactly():
    """Estimated cameras that are a similarity of the true ones: the held-out true cameras land on them exactly."""
    rng = np.random.default_rng(1)
    up = torch.tensor([0.0, 0.0, 1.0])
    eyes = rng.normal(size=(10, 3)) * 3
    true = {f"v{i}": look_at(torch.tensor(e), torch.zeros(3), up).double().numpy() for i, e in enumerate(eyes)}
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    sim = np.eye(4)
    sim[:3, :3], sim[:3, 3] = 0.3 * q * np.sign(np.linalg.det(q)), rng.normal(size=3)
    estimated = {n: moved(sim, c2w) for n, c2w in true.items()}
    m = alignment(true, estimated, [f"v{i}" for i in range(1, 10)])
    assert np.allclose(moved(m, true["v0"]), estimated["v0"], atol=1e-9)


def test_process_a_video(capture, tmp_path, capsys):
    """Each view as a blurred, a sharp and a blurred frame: the sharp ones are picked and posed in sequence."""
    import imageio_ffmpeg

    video = tmp_path / "walk.mp4"
    w, h = CAPTURE["width"], CAPTURE["height"]
    writer = imageio_ffmpeg.write_frames(str(video), (w, h), fps=10, quality=10, macro_block_size=4)
    writer.send(None)
    for path in sorted((capture / "images").iterdir()):
        sharp = iio.imread(path)
        blurred = np.asarray(Image.fromarray(sharp).resize((w // 8, h // 8)).resize((w, h)))
        for frame in (blurred, sharp, blurred):
            writer.send(np.ascontiguousarray(frame))
    writer.close()
    out = tmp_path / "scene"
    assert main(["process", "--video", str(video), "--frames", str(CAPTURE["views"]), "--out", str(out)]) == 0
    assert "match (sequential)" in capsys.readouterr().err
    meta = json.loads((out / "transforms.json").read_text())
    assert [f["source"] for f in meta["frames"]] == [f"frame {3 * i + 1}" for i in range(CAPTURE["views"])]
    assert len(load_scene(out).splits["train"]) > 0


def test_video_frames_are_the_sharpest_of_even_windows(tmp_path):
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    video, windows = tmp_path / "v.mp4", 10
    writer = imageio_ffmpeg.write_frames(str(video), (64, 48), fps=10, quality=10, macro_block_size=16)
    writer.send(None)
    sharp_at = []
    for w in range(windows):
        texture = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        flat = np.full_like(texture, int(texture.mean()))
        best = w % 3
        sharp_at.append(3 * w + best)
        for i in range(3):
            writer.send(texture if i == best else flat)
    writer.close()
    work = tmp_path / "frames"
    result = extract_frames(video, work, windows, max_size=32)
    assert result.sources == [f"frame {i}" for i in sharp_at]
    assert result.size == (24, 32)
    assert sorted(p.name for p in work.iterdir()) == result.names


def test_sharpness_prefers_edges():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    blurred = np.asarray(Image.fromarray(image).resize((10, 8)).resize((50, 40)))
    assert sharpness(image) > 5 * sharpness(blurred)


def _grey_photos(folder, count, size=(180, 240)):
    folder.mkdir()
    for i in range(count):
        iio.imwrite(folder / f"{i}.png", np.full((*size, 3), 128, dtype=np.uint8))
    return folder


@pytest.mark.parametrize("case", ["no images", "one image", "flat grey", "unreadable video", "missing video",
                                  "both inputs", "no input", "mixed sizes"])
def test_bad_captures_give_one_error_line(case, tmp_path, capsys):
    out = tmp_path / "out"
    if case == "no images":
        (tmp_path / "photos").mkdir()
        args = ["--images", str(tmp_path / "photos")]
    elif case == "one image":
        args = ["--images", str(_grey_photos(tmp_path / "photos", 1))]
    elif case == "flat grey":
        args = ["--images", str(_grey_photos(tmp_path / "photos", 5))]
    elif case == "unreadable video":
        (tmp_path / "v.mp4").write_bytes(b"not a video at all" * 100)
        args = ["--video", str(tmp_path / "v.mp4")]
    elif case == "missing video":
        args = ["--video", str(tmp_path / "nothing.mp4")]
    elif case == "both inputs":
        args = ["--images", str(_grey_photos(tmp_path / "photos", 3)), "--video", str(tmp_path / "v.mp4")]
    elif case == "no input":
        args = []
    else:
        photos = _grey_photos(tmp_path / "photos", 3)
        iio.imwrite(photos / "9.png", np.full((100, 100, 3), 128, dtype=np.uint8))
        args = ["--images", str(photos)]
    assert main(["process", *args, "--out", str(out)]) == 2
    assert one_error(capsys)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-built scene left beside


def test_out_with_a_persons_files_is_refused(capture, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["process", "--images", str(capture / "images"), "--out", str(out)]) == 2
    assert "not empty" in one_error(capsys)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_photo_outside_the_folder_is_refused(tmp_path, capsys):
    photos = _grey_photos(tmp_path / "photos", 3)
    secret = tmp_path / "secret.png"
    iio.imwrite(secret, np.zeros((8, 8, 3), dtype=np.uint8))
    (photos / "link.png").symlink_to(secret)
    assert main(["process", "--images", str(photos), "--out", str(tmp_path / "out")]) == 2
    assert "outside" in one_error(capsys)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, exif=exif)
    image, focal = read_photo(path)
    assert image.shape == (40, 30, 3) and focal is None


def test_natural_order():
    assert sorted(["10.jpg", "2.jpg", "1.jpg"], key=natural_key) == ["1.jpg", "2.jpg", "10.jpg"]


def test_sequential_pairs_link_neighbours_and_close_the_loop():
    names = [f"{i}" for i in range(30)]
    pairs = image_pairs(names, "sequential", overlap=3)
    assert len(pairs) == len(set(pairs)) and all(a != b for a, b in pairs)
    assert ("0", "1") in pairs and ("5", "8") in pairs and ("0", "29") in pairs
    assert ("5", "20") not in pairs
    assert len(image_pairs(names, "exhaustive", 3)) == 30 * 29 // 2


def _ring(count: int, radius: float, height: float) -> np.ndarray:
    import torch

    eyes = [(radius * math.cos(a), radius * math.sin(a), height) for a in np.linspace(0, 2 * math.pi, count, False)]
    return np.stack([look_at(torch.tensor(e), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])).double().numpy()
                     for e in eyes])


def test_scene_kinds():
    rng = np.random.default_rng(0)
    ring = _ring(12, 4.0, 1.5)
    inner = rng.uniform(-1, 1, (500, 3))
    assert detect_scene_kind(ring, inner) == "object"
    far = rng.normal(size=(500, 3))
    far = 10 * far / np.linalg.norm(far, axis=1, keepdims=True)
    assert detect_scene_kind(ring, np.concatenate([inner, far])) == "unbounded"
    import torch

    front = np.stack([look_at(torch.tensor([x, -4.0, y]), torch.tensor([x / 2, 0.0, y / 2]),
                              torch.tensor([0.0, 0.0, 1.0])).double().numpy()
                      for x in (-1.0, 0.0, 1.0) for y in (-0.5, 0.5)])
    assert detect_scene_kind(front, inner) == "forward"
    arc = ring[:3]  # a quarter turn around the object: the views differ by up to 60 degrees
    assert detect_scene_kind(arc, inner) == "object"


def test_framing_puts_up_on_z_and_the_object_in_the_box():
    rng = np.random.default_rng(0)
    c2w = _ring(12, 4.0, 1.5)
    points = rng.uniform(-1, 1, (800, 3))
    # the same cameras and points as COLMAP might give them: rotated, scaled, moved, OpenCV axes
    angle = 0.7
    r = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    scale, shift = 3.0, np.array([5.0, -2.0, 1.0])
    moved = c2w.copy()
    moved[:, :3, :3] = r @ c2w[:, :3, :3] @ np.diag([1.0, -1.0, -1.0])
    moved[:, :3, 3] = scale * c2w[:, :3, 3] @ r.T + shift
    w2c = np.linalg.inv(moved)[:, :3, :]
    framing = frame_scene(w2c, scale * points @ r.T + shift)
    assert framing.scene_kind == "object"
    up = framing.c2w[:, :3, 1].mean(0)
    assert up[2] / np.linalg.norm(up) > 0.999
    lo, hi = framing.aabb[:3], framing.aabb[3:]
    inside = ((framing.points >= lo) & (framing.points <= hi)).all(1)
    assert inside.mean() > 0.95 and np.abs(framing.aabb).max() == pytest.approx(1.0)
    errors = pose_errors(dict(enumerate(framing.c2w)), dict(enumerate(c2w)))
    assert errors.rotation_deg.max() < 1e-6 and errors.position_rel.max() < 1e-9


def test_an_unbounded_scene_is_boxed_around_its_cameras():
    rng = np.random.default_rng(0)
    far = rng.normal(size=(500, 3))
    points = np.concatenate([rng.uniform(-1, 1, (500, 3)), 10 * far / np.linalg.norm(far, axis=1, keepdims=True)])
    c2w = _ring(12, 4.0, 1.5) @ np.diag([1.0, -1.0, -1.0, 1.0])  # COLMAP's OpenCV axes
    framing = frame_scene(np.linalg.inv(c2w)[:, :3, :], points)
    assert framing.scene_kind == "unbounded"
    assert framing.aabb.tolist() == [-1.0] * 3 + [1.0] * 3
    centres = framing.c2w[:, :3, 3]
    assert np.linalg.norm(centres, axis=1).max() == pytest.approx(1.0)
    assert (np.abs(framing.points) > 1).any(1).mean() > 0.3  # the background lies beyond the box


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    target = 2.5 * source @ q.T + np.array([1.0, 2.0, 3.0])
    s, r, t = umeyama(source, target)
    assert s == pytest.approx(2.5) and np.allclose(r, q) and np.allclose(t, [1, 2, 3])


def test_registered_images_needed():
    from spiknerf.capture.process import needed

    assert needed(8, 0.5) == 4 and needed(25, 0.5) == 13
    assert needed(4, 0.5) == 3 and needed(25, 0.1) == 3  # never fewer than three views


@pytest.mark.parametrize("option", [["--min-registered", "0"], ["--min-registered", "1.5"], ["--frames", "2"],
                                    ["--max-size", "8"], ["--threads", "0"]])
def test_option_values_are_checked(option, tmp_path, capsys):
    photos = _grey_photos(tmp_path / "photos", 3)
    assert main(["process", "--images", str(photos), "--out", str(tmp_path / "out"), *option]) == 2
    assert option[0] in one_error(capsys)
