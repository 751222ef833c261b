import json
import os
import stat

from spiknerf.atomic import current_umask, write_json_atomic


def test_an_atomic_write_replaces_the_file_with_a_plain_files_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"psnr": 1.0})
    write_json_atomic(path, {"psnr": 2.0})
    assert json.loads(path.read_text()) == {"psnr": 2.0}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
