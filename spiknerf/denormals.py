"""Denormal floats flushed to zero on the CPU, in every thread of the process.

A float32 below about 1.2e-38 in magnitude is denormal, and x86 CPUs take a slow path for each
operation that reads or writes one. Trained models hold a few: a frozen teacher's MLP weights, the
Adam moments of units that stopped learning. One denormal weight puts the slow path into every row
of a matrix product, so a distilled student's step, which runs its frozen teacher at every sample,
and the evaluation and rendering of any trained model took it on every call
(docs/notes/2026-11-29-cpu-threads.md, "Denormal floats"). The CPU's flush-to-zero and
denormals-are-zero modes (``torch.set_flush_denormal``) treat them as 0: that changes values below
1.2e-38 only, far under anything a loss, a density or a colour resolves, and Adam's second moment
already underflows to 0 for gradients that small.

The modes are per thread, and a new thread starts with its creator's: :func:`flush` must run before
the process's first parallel region starts OpenMP's threads, which then all inherit them (threads
started earlier keep their own and go on taking the slow path).
"""

from __future__ import annotations


def flush() -> bool:
    """Flush denormals to zero in this thread and every thread it starts from now on; False where the CPU
    has no such mode (then nothing changes)."""
    import torch

    return torch.set_flush_denormal(True)
