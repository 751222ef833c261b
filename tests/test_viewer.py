"""The web viewer as a person uses it: a browser opens it, its outputs, its camera paths, and what it must not do.

One tiny run is trained for the whole file (a few steps of teacher and student
on a 16 x 16 scene, with the package's own command). The browser test drives
headless Chromium and is skipped where Chromium is not installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import viser
from conftest import eager_kernels
from PIL import Image

from spiknerf.cli import main as cli
from spiknerf.nerf.camera_path import from_nerfstudio
from spiknerf.nerf.checkpoint import latest_checkpoint, load_checkpoint
from spiknerf.nerf.data.builtin import SceneSpec, write_scene
from spiknerf.nerf.rays import frame_rays, look_at
from spiknerf.nerf.run import read_config
from spiknerf.nerf.spike_map import ray_maps, spike_map
from spiknerf.viewer import app
from spiknerf.viewer.browser import Browser, find_chromium
from spiknerf.viewer.frame import OUTPUTS, ViewCamera, render_frame
from spiknerf.viewer.gate import StepGate
from spiknerf.viewer.models import open_run

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def _eager_kernels():
    """No TorchInductor compiles: the renders here are tiny, a compile is not."""
    with pytest.MonkeyPatch.context() as patch:
        eager_kernels(patch)
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A teacher and a distilled ternary student, 8 steps each, on a 16 x 16 scene."""
    scene = write_scene(tmp_path_factory.mktemp("scene") / "tiny", SceneSpec(size=16, views=8, test_views=2))
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli(["train", "--data", str(scene), "--out", str(out), "--steps", "8", "--eval-every", "100",
                "--video-frames", "0", "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def models(run):
    return open_run(run, CPU)


@pytest.fixture
def viewer(models, tmp_path):
    """A viewer of the run served on 127.0.0.1 (any free port), stopped after the test."""
    server = app.start_server("127.0.0.1", 0)
    shown = app.SpikingViewer(server, models, tmp_path / "paths")
    yield shown
    app.stop_server(server, shown)


def camera(models, width: int = 12, height: int = 9, azimuth: float = 0.4) -> ViewCamera:
    start = models.start
    offset = start.position - start.look_at
    turn = np.array([[np.cos(azimuth), -np.sin(azimuth), 0], [np.sin(azimuth), np.cos(azimuth), 0], [0, 0, 1]])
    eye = torch.tensor(start.look_at + turn @ offset, dtype=torch.float32)
    c2w = look_at(eye, torch.tensor(start.look_at, dtype=torch.float32), torch.tensor(start.up, dtype=torch.float32))
    return ViewCamera(c2w.numpy().astype(np.float64), start.fov, width, height)


def tree(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("case", ["missing", "not a run", "a file", "no checkpoints", "port", "host", "paths inside"])
def test_a_bad_view_command_is_one_error_line_and_exit_2(run, tmp_path, capsys, case):
    (tmp_path / "plain").mkdir()
    (tmp_path / "file").write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in (".spiknerf-run", "config.json"):
        (empty / name).write_bytes((run / name).read_bytes())
    args = {"missing": ["--run", str(tmp_path / "nosuch")], "not a run": ["--run", str(tmp_path / "plain")],
            "a file": ["--run", str(tmp_path / "file")], "no checkpoints": ["--run", str(empty)],
            "port": ["--run", str(run), "--port", "70000"], "host": ["--run", str(run), "--host", "no such host!"],
            "paths inside": ["--run", str(run), "--paths", str(run / "paths")]}[case]
    before = tree(run)
    capsys.readouterr()
    assert cli(["view", *args]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert tree(run) == before


# --------------------------------------------------------------------------------------------- the server

def test_the_viewer_serves_its_page_and_no_other_file(viewer, tmp_path):
    """Requests that climb out of viser's page folder (plain, encoded, backslashed) find nothing."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the viewer must not serve this")
    page_folder = Path(viser.__file__).parent / "client" / "build"
    climb = os.path.relpath(secret, page_folder)
    port = viewer.server.get_port()
    requests = [f"/{climb}", "/" + climb.replace("/", "%2f"), "/" + climb.replace("..", "%2e%2e"),
                "/" + climb.replace("/", "\\"), "/../../../../../../etc/passwd", f"//{secret}",
                "/" + str(secret).replace("/", "%2F"), f"/{climb}?x=1", "/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/etc/passwd"]
    for path in requests:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status in (400, 403, 404), (path, response.status)
        assert b"must not serve" not in body and b"root:" not in body, path
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200 and b"<html" in response.read().lower()
    connection.close()


def test_the_viewer_only_reads_its_run(run, viewer, tmp_path):
    before = tree(run)
    for model in ("student", "teacher"):
        for output in OUTPUTS:
            viewer.choose(model=model, output=output)
            viewer.render(camera(viewer.models))
    viewer.add_keyframe(camera(viewer.models))
    saved = viewer.save_camera_path("p", 8, 6, seconds=1, fps=2)
    assert saved.parent == tmp_path / "paths"
    assert tree(run) == before


# --------------------------------------------------------------------------------------------- frames

def test_each_output_is_a_picture_and_the_maps_measure_the_frame(models):
    cam = camera(models)
    student, sampler = models.get("student")
    teacher, _ = models.get("teacher")
    pictures = {}
    for output in OUTPUTS:
        image, stats = render_frame(student, sampler, models.scene, cam, output, "student")
        assert image.shape == (9, 12, 3) and image.dtype == np.uint8
        pictures[output] = image
    assert len({p.tobytes() for p in pictures.values()}) == len(OUTPUTS)
    o, d, _ = frame_rays(torch.tensor(cam.c2w, dtype=torch.float32), cam.intrinsics(), 12, 9)
    maps = ray_maps(student, sampler, o, d, models.scene.background)
    assert torch.equal(maps.spikes, spike_map(student, sampler, o, d, models.scene.background))
    assert float(maps.energy_pj.sum()) == pytest.approx(maps.ops.energy_pj, rel=1e-6)
    assert stats.energy_ratio < 1  # the folded student's sample points cost less than the teacher's
    teacher_maps = ray_maps(teacher, sampler, o, d, models.scene.background)
    hit = teacher_maps.samples > 0
    per_sample = teacher_maps.energy_pj[hit] / teacher_maps.samples[hit]
    assert torch.allclose(per_sample, torch.full_like(per_sample, models.scene.teacher_pj), rtol=1e-5)
    assert float(teacher_maps.spikes.sum()) == 0


# --------------------------------------------------------------------------------------------- camera paths

def test_a_camera_path_recorded_in_the_viewer_renders_as_its_poses(run, viewer, tmp_path):
    """Keyframes recorded through the viewer, saved, then rendered by `spiknerf render --camera-path`: each decoded
    frame is the viewer's own rendering of the saved pose (up to the video codec), and the keyframes are frames."""
    keys = [camera(viewer.models, 16, 12, azimuth) for azimuth in (0.0, 0.5, 1.0)]
    for key in keys:
        viewer.add_keyframe(key)
    saved = viewer.save_camera_path("orbit", 16, 12, seconds=1.25, fps=4)  # 5 frames: keyframes 0, 2, 4
    video = tmp_path / "path.mp4"
    assert cli(["render", "--run", str(run), "--camera-path", str(saved), "--out", str(video), "--device",
                "cpu"]) == 0
    frames = iio.imread(video)
    cams = from_nerfstudio(saved)
    assert frames.shape == (5, 12, 16, 3)
    for i, key in zip((0, 2, 4), keys, strict=True):
        assert np.allclose(cams.c2w[i].numpy(), key.c2w, atol=1e-5)
    model, sampler = viewer.models.get("student")
    for i, frame in enumerate(frames):
        pose = ViewCamera(cams.c2w[i].numpy().astype(np.float64), keys[0].fov, 16, 12)
        direct, _ = render_frame(model, sampler, viewer.models.scene, pose, "colour")
        error = np.abs(frame.astype(float) - direct.astype(float))
        assert error.mean() < 4 and np.percentile(error, 99) < 40, (i, error.mean())


# --------------------------------------------------------------------------------------------- training turns

def test_a_render_waits_for_the_end_of_a_step_and_the_step_for_the_render():
    gate, log = StepGate(), []
    gate.between_steps()  # no render waiting: returns at once

    def render():
        with gate.turn():
            log.append("render")
            time.sleep(0.05)
            log.append("rendered")

    thread = threading.Thread(target=render)
    thread.start()
    while not gate._waiting:
        time.sleep(0.01)
    log.append("step")
    time.sleep(0.05)
    assert log == ["step"]  # the render waits while a step runs
    gate.between_steps()
    log.append("next step")
    thread.join(5)
    assert log == ["step", "render", "rendered", "next step"]
    gate.close()
    with gate.turn():  # training over: no waiting
        pass


def test_train_with_the_viewer_shows_each_model_and_trains_as_without(run, tmp_path, monkeypatch, capsys):
    """`spiknerf train --viewer` as a watched run: renders keep coming between steps (the teacher's, then the
    student's), and the run ends with the same checkpoints, bit for bit, as the same run without the viewer."""
    import spiknerf.nerf.train as train

    monkeypatch.setattr(app.SpikingViewer, "has_clients", property(lambda self: True))  # as if a browser watched
    shown, stop, threads = [], threading.Event(), []

    def watched(cfg, scene, folder):
        viewer = make_viewer(cfg, scene, folder)

        def keep_rendering():
            while not stop.is_set():
                with contextlib.suppress(RuntimeError):  # no model yet
                    shown.append(viewer.viewer.render(camera(viewer.models))[1].model)

        threads.append(threading.Thread(target=keep_rendering, daemon=True))
        threads[0].start()
        close = viewer.close

        def stop_then_close():
            stop.set()
            threads[0].join(60)
            close()

        viewer.close = stop_then_close
        return viewer

    make_viewer = train.training_viewer
    monkeypatch.setattr(train, "training_viewer", watched)
    monkeypatch.setattr(train, "evaluate_run", lambda *args, **kwargs: {})  # evaluation is not what is tested here
    monkeypatch.setattr(train, "format_table", lambda metrics: "")
    data = read_config(run).data
    out = tmp_path / "watched"
    capsys.readouterr()
    assert cli(["train", "--data", data, "--out", str(out), "--steps", "8", "--eval-every", "100",
                "--video-frames", "0", "--device", "cpu", "--viewer", "--viewer-port", "0"]) == 0
    assert re.search(r"^viewer: http://127\.0\.0\.1:\d+$", capsys.readouterr().err, re.MULTILINE)
    assert "teacher" in shown and "student" in shown and shown.index("teacher") < shown.index("student")
    for phase in ("teacher", "student"):
        watched_state = load_checkpoint(latest_checkpoint(out, phase))
        plain_state = load_checkpoint(latest_checkpoint(run, phase))
        for part in ("model", "sampler"):
            for key, value in plain_state[part].items():
                assert torch.equal(watched_state[part][key], value), (phase, part, key)
        assert torch.equal(watched_state["torch_rng"], plain_state["torch_rng"])


def test_a_bad_viewer_port_is_refused_before_the_run_folder_is_made(tmp_path, capsys):
    capsys.readouterr()
    assert cli(["train", "--out", str(tmp_path / "run"), "--viewer", "--viewer-port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--viewer-port" in err and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------- in a browser

def _region(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The luma of the part of the canvas no panel or notice covers (its left half, lower part): the page gets
    JPEG frames, whose colour is subsampled, so colours are compared by their brightness."""
    left, top, width, height = box
    part = image[top + height // 2: top + height - height // 10, left + width // 10: left + width // 2]
    return part.astype(float) @ np.array([0.299, 0.587, 0.114])


def _settled(browser: Browser, viewer, output: str, timeout: float = 180) -> tuple[np.ndarray, np.ndarray]:
    """Wait until the viewer has sent a full-resolution frame of ``output`` and the page shows it unchanged for a
    second; the screenshot and that frame, stretched over the canvas as the page stretches it."""
    deadline = time.monotonic() + timeout
    previous, previous_count = None, -1
    while time.monotonic() < deadline:
        last = viewer.last_frame
        box = browser.canvas_box()
        full = last is not None and max(last[2].width, last[2].height) == viewer.render_tab_state.viewer_res
        if full and last[2].output == output and box and box[2] > 0 and box[3] > 0:
            shot, count = browser.screenshot(), viewer.frames_rendered
            if previous is not None and np.array_equal(shot, previous) and count == previous_count:
                stretched = np.asarray(Image.fromarray(last[1]).resize((box[2], box[3]), Image.BILINEAR))
                canvas = np.zeros_like(shot)
                canvas[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = stretched[:shot.shape[0] - box[1],
                                                                                   :shot.shape[1] - box[0]]
                return shot, canvas
            previous, previous_count = shot, count
        time.sleep(1.0)
    raise TimeoutError(f"the page did not settle on a full-resolution {output} frame")


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_a_browser_shows_the_rendered_scene_and_its_spikes(viewer):
    url = f"http://127.0.0.1:{viewer.server.get_port()}"
    with Browser(find_chromium(), 800, 520) as browser:
        browser.open(url)
        shot, server = _settled(browser, viewer, "colour")
        box = browser.canvas_box()
        seen, rendered = _region(shot, box), _region(server, box)
        assert seen.std() > 8  # not blank: the scene has structure
        assert np.abs(seen - rendered).mean() < 10  # and it is the server's rendering of the browser's camera
        assert browser.click("spikes")
        spikes_shot, spikes_server = _settled(browser, viewer, "spikes")
        spikes_seen = _region(spikes_shot, box)
        assert np.abs(spikes_seen - seen).mean() > 20  # switching to the spike view changes the picture
        assert np.abs(spikes_seen - _region(spikes_server, box)).mean() < 10


def test_render_refuses_a_bad_camera_path_with_one_error_line(run, tmp_path, capsys):
    path = tmp_path / "camera_path.json"
    path.write_text('{"render_width": 8, "render_height": 6, "camera_path": [{"camera_to_world": [1, 0], "fov": 50}]}')
    capsys.readouterr()
    assert cli(["render", "--run", str(run), "--camera-path", str(path), "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0], err
    assert not (tmp_path / "v.mp4").exists()
