"""Results files: every measured number of the project, one JSON file per table under ``docs/results/``.

A results file records what was run and where, then the rows::

    {
      "schema": 1,
      "table": "neuron_speed",                   # the file's stem
      "command": "python scripts/bench_neurons.py",
      "code": "0cc2442",                         # git commit of the code that ran ("-dirty": edited tree)
      "date": "2026-11-29",
      "machine": {"cpu": "...", "cores": 2, "torch": "2.13.0+cpu", "device": "cpu", "platform": "x86_64"},
      "source": "measured",                      # or "imported from docs/benchmarks.md at commit ..."
      "conditions": "...",                       # what may have disturbed the measurement, or null
      "settings": {...},                         # the options the run used (optional)
      "commands": [...],                         # the individual jobs the driver ran (optional)
      "summary": {...},                          # table-level figures (optional)
      "notes": [...],                            # caveats that belong to these numbers (optional)
      "rows": [{...}, ...]
    }

Drivers build a :class:`Results` with :func:`provenance` and :func:`write_results`; the
documentation is generated from the files (:mod:`spiknerf.results.docs`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from spiknerf.atomic import write_json_atomic
from spiknerf.errors import InputError
from spiknerf.paths import RESULTS_DIR, ROOT

SCHEMA = 1
MEASURED = "measured"
SHARED_MACHINE = ("other jobs shared the CPU while this ran, so its timings are indicative only; "
                  "they need a rerun on a quiet machine")
QUIET_LOAD = 0.5  # a 1-minute load average below this when a driver starts: nothing else was running
QUIET_SHARE = 0.1  # other processes busy less than this share of one core while a driver ran: a quiet machine
MIN_WATCH_S = 10.0  # a shorter watch tells too little; then the load average at the start decides


@dataclass
class Results:
    """One results table and where its numbers come from."""

    table: str
    command: str
    code: str
    date: str | None
    machine: dict[str, Any]
    source: str
    rows: list[dict[str, Any]]
    conditions: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}


REQUIRED = {"table": str, "command": str, "code": str, "machine": dict, "source": str, "rows": list}
OPTIONAL = {"date": (str, type(None)), "conditions": (str, type(None)), "settings": dict, "commands": list,
            "summary": dict, "notes": list}


def results_path(table: str, directory: Path = RESULTS_DIR) -> Path:
    return Path(directory) / f"{table}.json"


def load_results(path: str | os.PathLike) -> Results:
    """Read and check one results file; a malformed one is an :class:`InputError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{path}: not a results file of schema {SCHEMA}")
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise InputError(f"{path}: '{key}' missing or not a {kind.__name__}")
    for key, kinds in OPTIONAL.items():
        if key in data and not isinstance(data[key], kinds):
            raise InputError(f"{path}: '{key}' has the wrong type")
    if data["table"] != path.stem:
        raise InputError(f"{path}: holds table '{data['table']}', not '{path.stem}'")
    if not all(isinstance(r, dict) for r in data["rows"]):
        raise InputError(f"{path}: every row must be an object")
    unknown = set(data) - set(REQUIRED) - set(OPTIONAL) - {"schema"}
    if unknown:
        raise InputError(f"{path}: unknown keys {sorted(unknown)}")
    return Results(**{k: v for k, v in data.items() if k != "schema"})


def load_table(table: str, directory: Path = RESULTS_DIR) -> Results:
    return load_results(results_path(table, directory))


def write_results(results: Results, directory: Path = RESULTS_DIR) -> Path:
    """Write ``results`` to ``<directory>/<table>.json`` atomically; returns the path."""
    path = results_path(results.table, directory)
    write_json_atomic(path, results.to_json())
    return path


def code_version(root: Path = ROOT) -> str:
    """The commit the code comes from (``-dirty`` when tracked files differ from it), or ``unknown``."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=root,
                             capture_output=True, text=True, check=False)
    except OSError:  # no git on this machine
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def cpu_model() -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "device": name,
            "platform": platform.machine()}


class Watch(NamedTuple):
    """What the machine had done when a driver started: its load, its busy CPU seconds, this process's own."""

    wall: float
    load: float | None
    busy_s: float | None
    own_s: float


def _busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _own_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (a driver's trainings)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def watch() -> Watch:
    try:
        load: float | None = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = None
    return Watch(time.monotonic(), load, _busy_seconds(), _own_seconds())


STARTED = watch()  # on import, i.e. when a driver starts, before its own jobs add to the machine's work


def others_share(start: Watch) -> float | None:
    """The mean share of one core that processes other than this one and the children it waited for used since
    ``start``; None off Linux or over a watch too short to tell."""
    now, busy = time.monotonic(), _busy_seconds()
    if busy is None or start.busy_s is None or now - start.wall < MIN_WATCH_S:
        return None
    return max(0.0, busy - start.busy_s - (_own_seconds() - start.own_s)) / (now - start.wall)


def machine_conditions(start: Watch | None = None) -> str:
    """What the machine says about other jobs since ``start``: the load average then, and the CPU seconds
    that processes other than this driver and its children used since. The load average of a machine that
    has just finished other work stays high for minutes, so the CPU the others used while the driver ran
    decides whether it was quiet; over a watch too short to tell, the load average at the start does.
    ``start``: by default when the driver started."""
    start = start or STARTED
    if start.load is None:
        return "the machine's load was not recorded"
    said = f"the 1-minute load average was {start.load:.2f} when the driver started"
    share = others_share(start)
    if share is None:
        quiet = start.load < QUIET_LOAD
    else:
        others = share * (time.monotonic() - start.wall)
        said += f"; other processes used {others:.0f} CPU seconds while it ran ({share:.0%} of one core)"
        quiet = share < QUIET_SHARE
    return f"{said}: {'a quiet machine' if quiet else SHARED_MACHINE}"


def provenance(command: str, device: str = "cpu", conditions: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The provenance fields of a results file measured now.

    Call it when the measurements are done: ``conditions`` adds to what the machine says about other jobs
    since the driver started (:func:`machine_conditions`); ``code``: read it before long runs start, so that
    editing the tree meanwhile does not mark the runs dirty.
    """
    said = "; ".join(c for c in (conditions, machine_conditions()) if c)
    return {"command": command, "code": code or code_version(), "date": time.strftime("%Y-%m-%d"),
            "machine": machine(device), "source": MEASURED, "conditions": said}
