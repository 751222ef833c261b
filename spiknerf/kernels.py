"""Hot functions compiled by TorchInductor on the CPU, with an eager fallback.

On a 2-core CPU the NeRF step and the spiking neurons are bound by long chains
of elementwise integer and float ops (hashing, trilinear weights, ray marching
masks; a neuron's charge, fire and reset over T steps and its BPTT). Compiled,
each chain fuses into one C++ loop, several times faster than eager (the
neurons: docs/benchmarks.md, "Neuron core speed"). A spiking student's training
step compiles its layers after the encoding as one graph, forward and backward
(``spiknerf.nerf.student``), so that its neurons fuse with the currents and
readouts around them. Each function compiles once
per process and configuration on first use (the hash grid takes longest; torch
caches the result on disk). ``SPIKNERF_COMPILE=0`` keeps
everything eager; a failed compile (no C++ compiler, say) warns once and falls
back to eager.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

_ALL: list[CpuCompiled] = []


def cpu_kernels() -> list[CpuCompiled]:
    """Every :class:`CpuCompiled` made so far (one per hot function of the modules imported)."""
    return list(_ALL)


class CpuCompiled:
    """Call ``fn`` compiled on CPU tensors (its first tensor argument decides), eagerly otherwise.

    ``variants``: how many specialisations (dtypes, non-tensor arguments, ...) ``fn`` may compile before
    torch runs it eagerly; torch's own default (8) is too few for the neuron kinds, resets, surrogates and
    step counts that one process (the test suite, a benchmark) may use. ``dynamic``: ``True`` compiles every
    size symbolic from the start (batch sizes vary); ``"batch"`` compiles the first size of each tensor
    argument symbolic from the first call and every other size static, which is what a function
    differentiated through autograd.Functions needs (dynamo fails to trace their backward with every size
    symbolic). Left to torch, it compiled such a function twice: for the first batch's size, then symbolic
    once the size changed.
    """

    def __init__(self, fn: Callable, variants: int = 8, dynamic: bool | Literal["batch"] = True) -> None:
        self.fn = fn
        self.variants = variants
        self.dynamic = dynamic
        self.compiled: Callable | None = None
        self.enabled = os.environ.get("SPIKNERF_COMPILE", "1") != "0"
        _ALL.append(self)

    def __call__(self, *args):
        if not self.enabled or next(a for a in args if isinstance(a, Tensor)).is_cuda:
            return self.fn(*args)
        if self.compiled is None:
            self.compiled = torch.compile(self.fn, dynamic=None if self.dynamic == "batch" else self.dynamic)
        if self.dynamic == "batch":
            for a in args:
                if isinstance(a, Tensor) and a.dim():
                    torch._dynamo.maybe_mark_dynamic(a, 0)
        config, limit = torch._dynamo.config, torch._dynamo.config.recompile_limit
        try:
            config.recompile_limit = self.variants  # set and restored by hand: cheaper a call than config.patch
            return self.compiled(*args)
        except Exception as exc:  # inductor and its C++ toolchain fail in many ways; eager always works
            warnings.warn(f"compiling {self.fn.__name__} failed, running eager ({type(exc).__name__}: {exc})",
                          stacklevel=2)
            self.enabled = False
            return self.fn(*args)
        finally:
            config.recompile_limit = limit
