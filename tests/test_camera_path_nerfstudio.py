"""nerfstudio's camera_path.json: read as its viewer writes it, written by ours, and refused when hostile."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import orbit_c2w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiknerf.errors import InputError
from spiknerf.nerf.camera_path import MAX_FRAMES, MAX_SIDE, from_nerfstudio
from spiknerf.viewer.keyframes import Keyframe, camera_path_json, interpolate, save_camera_path

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
POSES = orbit_c2w(3)


def nerfstudio_file(frames: int = 3) -> dict:
    """A camera path as nerfstudio's viewer writes one (keys, order and number types as it writes them)."""
    frame = lambda c2w, fov: {"camera_to_world": c2w.reshape(-1).tolist(), "fov": fov, "aspect": 1.5}  # noqa: E731
    return {"default_fov": 50.0, "default_transition_sec": 2.0,
            "keyframes": [{"matrix": p.reshape(-1).tolist(), "fov": 50.0, "aspect": 1.5,
                           "override_transition_enabled": False, "override_transition_sec": None} for p in POSES],
            "camera_type": "perspective", "render_height": 480, "render_width": 720, "fps": 24, "seconds": 1.5,
            "is_cycle": False, "smoothness_value": 0.0,
            "camera_path": [frame(POSES[i % 3], 50.0 + i) for i in range(frames)]}


def test_a_path_as_nerfstudio_writes_it_gives_its_cameras(tmp_path):
    path = tmp_path / "camera_path.json"
    path.write_text(json.dumps(nerfstudio_file()))
    cams = from_nerfstudio(path)
    assert (cams.width, cams.height, cams.fps) == (720, 480, 24.0)
    assert torch.allclose(cams.c2w, torch.tensor(POSES[:3], dtype=torch.float32))
    focal = 240 / math.tan(math.radians(51.0) / 2)  # frame 1: fov 51 degrees across 480 rows
    assert torch.allclose(cams.intrinsics[1], torch.tensor([focal, focal, 360.0, 240.0]))


def test_our_saved_path_reads_back_as_the_path_through_its_keyframes(tmp_path):
    keys = [Keyframe(p, 40.0 + 5 * i) for i, p in enumerate(POSES)]
    data = camera_path_json(keys, 32, 24, fps=4, seconds=2.25)  # 9 frames: keyframes at frames 0, 4 and 8
    cams = from_nerfstudio(save_camera_path(tmp_path, "orbit-1", data))
    assert len(cams.c2w) == 9 and (cams.width, cams.height) == (32, 24)
    for k, i in enumerate((0, 4, 8)):
        assert np.allclose(cams.c2w[i].numpy(), POSES[k], atol=1e-5)
        assert math.isclose(float(cams.intrinsics[i, 1]), 12 / math.tan(math.radians(40 + 5 * k) / 2), rel_tol=1e-5)
    middle = interpolate(keys, 9)[2].c2w
    assert np.allclose(middle[:3, :3] @ middle[:3, :3].T, np.eye(3), atol=1e-6)  # between keyframes: a rotation


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65, "name.json", "sp ace", "nul\0"])
def test_a_path_name_from_the_browser_is_one_plain_file_name(tmp_path, name):
    with pytest.raises(InputError, match="camera path name"):
        save_camera_path(tmp_path / "paths", name, {})
    assert not (tmp_path / "paths").exists() or not any((tmp_path / "paths").iterdir())


GOOD = nerfstudio_file(1)
GOOD_FRAME = GOOD["camera_path"][0]
BAD = {
    "not JSON": "{",
    "a list": "[]",
    "no camera_path": json.dumps({k: v for k, v in GOOD.items() if k != "camera_path"}),
    "no render_height": json.dumps({k: v for k, v in GOOD.items() if k != "render_height"}),
    "empty path": json.dumps(GOOD | {"camera_path": []}),
    "path of text": json.dumps(GOOD | {"camera_path": "frames"}),
    "fisheye": json.dumps(GOOD | {"camera_type": "fisheye"}),
    "equirectangular": json.dumps(GOOD | {"camera_type": "equirectangular"}),
    "zero width": json.dumps(GOOD | {"render_width": 0}),
    "boolean width": json.dumps(GOOD | {"render_width": True}),
    "huge frame": json.dumps(GOOD | {"render_width": MAX_SIDE + 1}),
    "fractional height": json.dumps(GOOD | {"render_height": 479.5}),
    "15 numbers": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"camera_to_world": [0.0] * 15}]}),
    "text in matrix": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"camera_to_world": ["a"] * 16}]}),
    "NaN in matrix": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"camera_to_world": [math.nan] * 16}]}),
    "beyond float32": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"camera_to_world": [1e39] * 16}]}),
    "no fov": json.dumps(GOOD | {"camera_path": [{"camera_to_world": GOOD_FRAME["camera_to_world"]}]}),
    "zero fov": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"fov": 0}]}),
    "180 degrees": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"fov": 180}]}),
    "text fov": json.dumps(GOOD | {"camera_path": [GOOD_FRAME | {"fov": "wide"}]}),
    "frame of text": json.dumps(GOOD | {"camera_path": ["frame"]}),
    "zero fps": json.dumps(GOOD | {"fps": 0}),
    "too many frames": json.dumps(GOOD | {"camera_path": [GOOD_FRAME] * (MAX_FRAMES + 1)}),
    "too deep": "[" * 100000 + "]" * 100000,
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_hostile_camera_path_is_one_input_error_naming_it(tmp_path, case):
    path = tmp_path / "camera_path.json"
    path.write_text(BAD[case])
    with pytest.raises(InputError) as error:
        from_nerfstudio(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_folder_in_a_files_place_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a regular file|cannot read"):
        from_nerfstudio(tmp_path)


@FAST
@given(data=JSON)
def test_any_json_gives_cameras_or_an_error(tmp_path_factory, data):
    _cameras_or_error(tmp_path_factory, data)


@FAST
@given(changes=st.dictionaries(st.sampled_from(["camera_to_world", "fov", "aspect"]), JSON, max_size=2),
       top=st.dictionaries(st.sampled_from(["render_width", "render_height", "camera_type", "fps"]), JSON,
                           max_size=2))
def test_any_changed_frame_is_checked(tmp_path_factory, changes, top):
    _cameras_or_error(tmp_path_factory, GOOD | top | {"camera_path": [GOOD_FRAME | changes]})


def _cameras_or_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("paths") / "camera_path.json"
    path.write_text(json.dumps(data))
    try:
        cams = from_nerfstudio(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert 1 <= cams.width <= MAX_SIDE and 1 <= cams.height <= MAX_SIDE
    assert torch.isfinite(cams.c2w).all() and torch.isfinite(cams.intrinsics).all()
    assert (cams.intrinsics[:, :2] > 0).all()
