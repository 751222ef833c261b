"""How many CPU threads torch uses, and how its idle OpenMP threads wait.

torch's CPU operators and the TorchInductor kernels (:mod:`spiknerf.kernels`) run
their parallel regions on GNU OpenMP (libgomp) threads. Between two regions an
idle thread spins, by default for a few milliseconds, before it sleeps. On an
idle machine that keeps it ready for the next region; on a busy one (another
training, a busy loop, a browser) the spinning threads take the time slices
that the thread everyone waits for needs, and a run slows down several times
(docs/benchmarks.md, "A busy machine"). libgomp reads its wait settings once,
when torch loads it, so :func:`setup` runs in the command line's entry
(:mod:`spiknerf.cli`) before any job imports torch.

* Automatic (no ``--threads``, no ``OMP_NUM_THREADS``): one thread a core, and
  libgomp's own spin, the fastest on an idle machine. While the job runs,
  :func:`adapt` (called between training steps and rendered chunks) looks, once
  a second (:data:`ADAPT_SECONDS`), at how much of the process's cores other
  processes used (``/proc/stat`` less the CPU time of the process and its children) and runs one
  thread fewer for each core they keep busy, back up when they leave
  (:func:`next_threads`). A busy machine then costs about a core, not the run.
* A fixed count (``--threads N``, else ``OMP_NUM_THREADS``): that many threads
  throughout; with more than one, a short spin (:data:`SPIN_COUNT` rounds, tens
  of microseconds here) and then sleep, so that a core whose thread is done
  falls idle at once and the scheduler moves the thread that is still working
  (and losing its core to another process) onto it.
* ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set by the user are kept.

The number of threads changes the order of some float sums, so an automatic run
on a machine that others use gives other bits than the same run alone (as a
run on another machine does). A fixed count gives the same weights busy or
idle, and so does a command run in a process that had loaded torch before (the
tests): it keeps the thread count it was given.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from spiknerf.errors import InputError

# rounds an idle libgomp thread spins before it sleeps (libgomp's own default is 300000, a few milliseconds): about
# the gap between two operators of a step; chosen from measurements (docs/notes/2026-11-29-cpu-threads.md)
SPIN_COUNT = 1000
# how often an automatic run looks at what other processes use (seconds): over many of the scheduler's time slices,
# and soon enough after another job starts that the spinning threads lose the run little
ADAPT_SECONDS = 1.0
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
THREADS_HELP = ("CPU threads for torch (0: automatic: OMP_NUM_THREADS if set, else one a core, one fewer for each "
                "core other processes keep busy)")


@dataclass(frozen=True)
class Threading:
    """The threading a command runs with, and why; ``config.json`` of a run keeps it."""

    threads: int | None  # None: torch's default, known once torch has loaded (:func:`held`)
    threads_why: str
    wait: str  # how idle OpenMP threads wait, as the environment says it
    wait_why: str
    adapts: bool = False  # one thread fewer for each core other processes keep busy (:func:`adapt`)

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
    adapts = False
    if requested:
        threads, why_threads = requested, "--threads"
    elif user_threads:
        threads, why_threads = user_threads, "OMP_NUM_THREADS"
    elif torch_loaded:
        threads, why_threads = None, "torch's default, one a core"
    else:
        threads, why_threads, adapts = None, "automatic: one a core, one fewer for each core others keep busy", True
    if threads is not None and not torch_loaded:
        env["OMP_NUM_THREADS"] = str(threads)  # MKL and the compiled kernels read it as torch does
    own = {k: environ[k] for k in WAIT_VARIABLES if environ.get(k)}
    if own:
        wait, why_wait = " ".join(f"{k}={v}" for k, v in own.items()), "set by you"
    elif torch_loaded:
        wait, why_wait = "as the process started", "torch was loaded before the command ran"
    elif threads == 1:
        wait, why_wait = "none", "one thread: no OpenMP thread waits"
    elif adapts:
        wait, why_wait = "libgomp's default spin", "the fastest idle; the threads drop when the machine is busy"
    else:
        env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        wait = f"GOMP_SPINCOUNT={SPIN_COUNT}"
        why_wait = "spin briefly, then sleep: a busy machine costs a core, not the run"
    return Threading(threads, why_threads, wait, why_wait, adapts), env


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value >= 1 else None


def next_threads(current: int, cores: int, others: float) -> int:
    """The thread count after a look at the machine: ``others``, how many of the process's ``cores`` other
    processes kept busy (in cores' worth of CPU time over the look), while it ran ``current`` threads.

    One thread fewer for each core the others hold, at least one: dropping as soon as they hold more than half a
    core (their time slices and a spinning thread's collide), rising only once they leave a core all but free
    (three quarters), so that a neighbour's load near the line does not move the count back and forth.
    """
    free = cores - max(others, 0.0)
    if free < current - 0.5:
        return max(1, math.floor(free + 0.5))
    if free >= current + 0.75:
        return min(cores, math.floor(free + 0.25))
    return current


def _family_seconds(pid: int, tick: float) -> float:
    """CPU seconds of process ``pid``, its waited-for children and its running descendants (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
    except (OSError, ValueError, IndexError):
        return 0.0
    try:
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except (OSError, ValueError):  # a thread gone between two reads, or a kernel that does not list children
        children = []
    return seconds + sum(_family_seconds(c, tick) for c in children)


def cpu_seconds(cpus: set[int] | None = None) -> tuple[float, float] | None:
    """(busy CPU seconds of ``cpus`` (default: those this process may run on) since boot, by every process;
    this process's own CPU seconds, its descendants' included): a look at what others use is the difference of
    two. The job's own child processes, TorchInductor's compile workers above all, are not others: counted as
    others they dropped a thread on a quiet machine, and every compiled kernel then compiled again for the new
    count. ``None`` where the kernel does not say (no ``/proc/stat``: not Linux)."""
    try:
        cpus = os.sched_getaffinity(0) if cpus is None else cpus
        lines = Path("/proc/stat").read_text().splitlines()
    except (OSError, AttributeError):
        return None
    ticks = 0
    for line in lines:
        name, *fields = line.split() or [""]
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            try:
                user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
            except ValueError:  # a kernel that counts fewer kinds of time
                return None
            ticks += user + nice + system + irq + softirq
    tick = os.sysconf("SC_CLK_TCK")
    return ticks / tick, _family_seconds(os.getpid(), tick)


class LoadWatch:
    """An automatic run's thread count, looked at again each :data:`ADAPT_SECONDS` (:func:`next_threads`).

    ``look``: :func:`cpu_seconds`; ``clock``: monotonic seconds; ``apply``: set the count (``torch.set_num_threads``);
    ``say``: tell a person of a change. ``counts`` keeps the seconds run at each count.
    """

    def __init__(self, cores: int, look: Callable[[], tuple[float, float] | None] = cpu_seconds,
                 clock: Callable[[], float] = time.monotonic, apply: Callable[[int], None] | None = None,
                 say: Callable[[str], None] | None = None, period: float = ADAPT_SECONDS) -> None:
        self.cores = self.current = cores
        self.look, self.clock, self.period = look, clock, period
        self.apply = apply or _set_torch_threads
        self.say = say or _say
        self.counts: dict[int, float] = {}
        self.at, self.seen = clock(), look()

    def tick(self) -> None:
        now = self.clock()
        if self.seen is None or now - self.at < self.period:
            return
        seen = self.look()
        if seen is None:
            self.seen = None
            return
        span = now - self.at
        others = ((seen[0] - self.seen[0]) - (seen[1] - self.seen[1])) / span
        self.counts[self.current] = self.counts.get(self.current, 0.0) + span
        self.at, self.seen = now, seen
        new = next_threads(self.current, self.cores, others)
        if new != self.current:
            self.say(f"threads: {self.current} -> {new} (other processes kept {max(others, 0.0):.1f} of "
                     f"{self.cores} cores busy)")
            self.apply(new)
            self.current = new


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _say(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)  # above any progress bar, not through it


_chosen: Threading | None = None
_announced = False  # whether this command printed its threading
_watch: LoadWatch | None = None


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
    global _chosen, _announced, _watch
    import torch

    before = torch.get_num_threads()
    if choice.threads is None:
        choice = replace(choice, threads=before)
    torch.set_num_threads(choice.threads)
    _chosen, _announced = choice, False
    _watch = LoadWatch(choice.threads) if choice.adapts and choice.threads > 1 else None
    try:
        yield choice
    finally:
        _chosen, _watch = None, None
        torch.set_num_threads(before)


def adapt() -> None:
    """Between two pieces of a job's work (a training step, a rendered chunk): in an automatic run, once a second,
    one thread fewer for each core other processes keep busy (:class:`LoadWatch`). Only the job's own thread
    sets the count: OpenMP keeps it a thread (a viewer's thread renders with its own)."""
    if _watch is not None and threading.current_thread() is threading.main_thread():
        _watch.tick()


def seconds_by_threads() -> dict[int, float]:
    """How long this automatic run has run at each thread count (empty for a fixed count)."""
    return {} if _watch is None else dict(_watch.counts)


def current() -> int | None:
    """The thread count this process runs with now: an automatic run's latest (:func:`adapt`), else the choice's."""
    return _watch.current if _watch is not None else chosen().threads


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
