"""Denormal floats flushed to zero while a spiknerf command runs (spiknerf.denormals)."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import dataclass

import pytest

from spiknerf import cli, denormals

# In a fresh process with two threads: a product of denormals, large enough that both threads share it.
# A thread without the modes returns denormals (1e-39 * 1 == 1e-39), one with them returns 0.
_PROBE = """
import sys
from contextlib import nullcontext
from spiknerf import denormals
with denormals.flushed() if sys.argv[1] == "flushed" else nullcontext():
    import torch
    torch.set_num_threads(2)
    x = torch.full((1 << 22,), 1e-39)
    print(int((x * 1.0).count_nonzero()))
"""


@pytest.mark.parametrize(("mode", "kept"), [("flushed", False), ("plain", True)])
def test_every_thread_started_inside_flushes_denormals_to_zero(mode, kept):
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    assert (int(out.stdout) > 0) == kept


# The same product inside a job that the command runs in a fresh process of its own.
_COMMAND_PROBE = """
import dataclasses, types
import torch
from spiknerf import cli

@dataclasses.dataclass
class NoOptions:
    pass

def main(cfg):
    x = torch.full((1 << 22,), 1e-39)
    print(torch.get_num_threads(), int((x * 1.0).count_nonzero()))
    return 0

cli.import_job = lambda name: types.SimpleNamespace(EvalConfig=NoOptions, main=main)
raise SystemExit(cli.main(["eval", "--threads", "2"]))
"""


def test_a_command_runs_its_job_with_every_thread_flushing():
    out = subprocess.run([sys.executable, "-c", _COMMAND_PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "0"]


@dataclass
class _NoOptions:
    """A job without options."""


def test_the_job_runs_flushed_and_the_callers_mode_comes_back(monkeypatch):
    seen = []
    job = types.SimpleNamespace(EvalConfig=_NoOptions, main=lambda cfg: seen.append(denormals.flushing()) or 0)
    monkeypatch.setattr(cli, "import_job", lambda name: job)
    assert not denormals.flushing()
    assert cli.main(["eval"]) == 0
    assert seen == [True]
    assert not denormals.flushing()  # what the caller's own floats rely on (hypothesis checks for subnormals)
