"""How many CPU threads torch uses, and how its idle OpenMP threads wait: chosen before torch loads.

torch's CPU operators and the TorchInductor kernels (:mod:`spiknerf.kernels`) run
their parallel regions on GNU OpenMP (libgomp) threads. Between two regions an
idle thread spins, by default for a few milliseconds, before it sleeps. On an
idle machine that keeps it ready for the next region; on a busy one (another
training, a busy loop, a browser) the spinning threads take the time slices
that the thread everyone waits for needs, and a run slows down several times
(docs/benchmarks.md, "A busy machine"). libgomp reads its wait settings once,
when torch loads it, so :func:`setup` runs in the command line's entry
(:mod:`spiknerf.cli`) before any job imports torch:

* threads: ``--threads N``, else ``OMP_NUM_THREADS`` when set, else torch's own
  default (one a core);
* waiting: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` when the user set either,
  else a short spin (:data:`SPIN_COUNT` rounds, tens of microseconds here) and
  then sleep: long enough to bridge most gaps between the operators of one
  step, short enough that a core whose thread is done falls idle at once, and
  the scheduler moves the thread that is still working (and losing its core to
  another process) onto it.

The number of threads can change float sums (their order), so it is never chosen
from the machine's momentary load: the same command gives the same weights on a
busy machine as on an idle one. How threads wait changes no result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

from spiknerf.errors import InputError

# rounds an idle libgomp thread spins before it sleeps (libgomp's own default is 300000, a few milliseconds): about
# the gap between two operators of a step; chosen from measurements (docs/notes/2026-11-29-cpu-threads.md)
SPIN_COUNT = 1000
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
THREADS_HELP = "CPU threads for torch (0: automatic: OMP_NUM_THREADS if set, else one a core)"


@dataclass(frozen=True)
class Threading:
    """The threading a command runs with, and why; ``config.json`` of a run keeps it."""

    threads: int | None  # None: torch's default, known once torch has loaded (:func:`held`)
    threads_why: str
    wait: str  # how idle OpenMP threads wait, as the environment says it
    wait_why: str

    def line(self) -> str:
        """One line for a person: how many threads and why, how idle ones wait and why."""
        return f"threads: {self.threads} ({self.threads_why}); idle threads wait: {self.wait} ({self.wait_why})"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def plan(requested: int, environ: Mapping[str, str], torch_loaded: bool) -> tuple[Threading, dict[str, str]]:
    """The threading for ``--threads requested`` (0: automatic) and the environment variables to set for it.

    Pure: reads ``environ`` only. ``torch_loaded``: torch (and libgomp) are already in this process (a caller
    that runs a command in-process, such as a test), so the wait settings are whatever the process started with.
    """
    if requested < 0:
        raise InputError(f"--threads must be >= 0 (got {requested})")
    env: dict[str, str] = {}
    user_threads = _positive_int(environ.get("OMP_NUM_THREADS"))
    if requested:
        threads, why_threads = requested, "--threads"
    elif user_threads:
        threads, why_threads = user_threads, "OMP_NUM_THREADS"
    else:
        threads, why_threads = None, "torch's default, one a core"
    if threads is not None and not torch_loaded:
        env["OMP_NUM_THREADS"] = str(threads)  # MKL and the compiled kernels read it as torch does
    own = {k: environ[k] for k in WAIT_VARIABLES if environ.get(k)}
    if own:
        wait, why_wait = " ".join(f"{k}={v}" for k, v in own.items()), "set by you"
    elif torch_loaded:
        wait, why_wait = "as the process started", "torch was loaded before the command ran"
    elif threads == 1:
        wait, why_wait = "none", "one thread: no OpenMP thread waits"
    else:
        env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        wait = f"GOMP_SPINCOUNT={SPIN_COUNT}"
        why_wait = "spin briefly, then sleep: a busy machine costs a core, not the run"
    return Threading(threads, why_threads, wait, why_wait), env


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value >= 1 else None


_chosen: Threading | None = None
_announced = False  # whether this command printed its threading


def setup(requested: int, environ: MutableMapping[str, str] = os.environ) -> Threading:
    """Choose the threading of this process and put it into its environment; call before torch loads (else the
    wait settings cannot change, and the choice says so)."""
    choice, env = plan(requested, environ, "torch" in sys.modules)
    environ.update(env)
    return choice


@contextmanager
def held(choice: Threading) -> Iterator[Threading]:
    """Run with ``choice``'s threads (torch has loaded by now), yielding the choice with its count filled in;
    torch's count before is restored after, for a caller that runs commands in its own process."""
    global _chosen, _announced
    import torch

    before = torch.get_num_threads()
    if choice.threads is None:
        choice = replace(choice, threads=before)
    torch.set_num_threads(choice.threads)
    _chosen, _announced = choice, False
    try:
        yield choice
    finally:
        _chosen = None
        torch.set_num_threads(before)


def announce() -> None:
    """Print the threading on stderr, once a process: where a job's long work begins (not before its input is
    checked, so that a refusal stays one ``error:`` line)."""
    global _announced
    if not _announced:
        print(chosen().line(), file=sys.stderr)
        _announced = True


def chosen() -> Threading:
    """The threading this process runs with: the command line's choice, else (the package used from Python)
    what torch and the environment say."""
    if _chosen is not None:
        return _chosen
    import torch

    own = [f"{k}={os.environ[k]}" for k in WAIT_VARIABLES if os.environ.get(k)]
    return Threading(torch.get_num_threads(), "as torch was set up", " ".join(own) or "libgomp's default",
                     "not run through the spiknerf command")
