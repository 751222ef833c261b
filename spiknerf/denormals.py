"""Denormal floats flushed to zero on the CPU while a spiknerf command runs.

A float32 below about 1.2e-38 in magnitude is denormal, and x86 CPUs take a slow path for each
operation that reads or writes one. Trained models hold a few: a frozen teacher's MLP weights, the
Adam moments of units that stopped learning. One denormal weight puts the slow path into every row
of a matrix product, so a distilled student's step, which runs its frozen teacher at every sample,
and the evaluation and rendering of any trained model took it on every call
(docs/notes/2026-11-29-cpu-threads.md, "Denormal floats"). The CPU's flush-to-zero and
denormals-are-zero modes (``torch.set_flush_denormal``) treat them as 0: that changes values below
1.2e-38 only, far under anything a loss, a density or a colour resolves, and Adam's second moment
already underflows to 0 for gradients that small. The modes govern the thread's double arithmetic as
well, Python's own floats included: inside a command a number below 2.2e-308 in a scene's JSON reads
as 0 (and is refused where 0 is).

The modes are per thread, and a new thread starts with its creator's. In a command's own process
:func:`flushed` is entered before the job does any torch work, that is before the first parallel
region starts OpenMP's threads, which then all inherit the modes. A caller that runs commands in
its own process (the tests) has its threads started already: there the job's main thread flushes
and the others do not, and the calling thread's mode is restored after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def flushing() -> bool:
    """Whether this thread flushes denormals now: half the smallest normal float32 comes out 0."""
    import torch

    return bool(torch.tensor(torch.finfo(torch.float32).tiny) * 0.5 == 0)


@contextmanager
def flushed() -> Iterator[None]:
    """Run with denormals flushed to zero in this thread and the threads it starts meanwhile (where the CPU
    has no such modes, nothing changes); this thread's mode is restored after."""
    import torch

    before = flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
