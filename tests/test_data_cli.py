"""``spiknerf train --dry-run``: validates the scene, prints its summary, exits 0; bad input exits 2 with one line."""

import os
import subprocess
import sys

from spiknerf.nerf.data.builtin import SceneSpec, write_scene


def dry_run(data, tmp_path, *extra):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}  # keep the user's cache untouched
    return subprocess.run([sys.executable, "-m", "spiknerf.cli", "train", "--dry-run", "--data", str(data), *extra],
                          capture_output=True, text=True, env=env, timeout=120)


def test_dry_run_prints_the_summary(tmp_path):
    folder = write_scene(tmp_path / "tiny", SceneSpec(size=16, views=9, test_views=2))
    result = dry_run(folder, tmp_path, "--downscale", "2", "--background", "black")
    assert result.returncode == 0, result.stderr
    for part in ("tiny (blender)", "train: 9 views, 8 x 8 RGBA", "test: 2 views", "near 2, far 6",
                 "background: black"):
        assert part in result.stdout, part


def test_dry_run_on_a_bad_scene_exits_2_with_one_line(tmp_path):
    folder = write_scene(tmp_path / "tiny", SceneSpec(size=16, views=2, test_views=1))
    (folder / "transforms_test.json").write_text("{ not json")
    result = dry_run(folder, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "transforms_test.json: invalid JSON" in result.stderr
