"""Denormal floats flushed to zero in every thread of a spiknerf command (spiknerf.denormals)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spiknerf import cli, denormals

# In a fresh process with two threads: a product of denormals, large enough that both threads share it.
# A thread without the modes returns denormals (1e-39 * 1 == 1e-39), one with them returns 0.
_PROBE = """
import sys
if sys.argv[1] == "flush":
    from spiknerf import denormals
    assert denormals.flush()
import torch
torch.set_num_threads(2)
x = torch.full((1 << 22,), 1e-39)
print(int((x * 1.0).count_nonzero()))
"""


@pytest.mark.parametrize(("mode", "kept"), [("flush", False), ("plain", True)])
def test_every_thread_of_the_process_flushes_denormals_to_zero(mode, kept):
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    assert (int(out.stdout) > 0) == kept


def test_the_command_flushes_denormals_before_the_job_loads(monkeypatch):
    calls = []
    monkeypatch.setattr(denormals, "flush", lambda: calls.append("flush") or True)
    real_import = cli.import_job
    monkeypatch.setattr(cli, "import_job", lambda name: calls.append("import") or real_import(name))
    assert cli.main(["eval", "--help"]) == 0
    assert calls == ["flush", "import"]
