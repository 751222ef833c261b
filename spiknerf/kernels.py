"""Hot functions compiled by TorchInductor on the CPU, with an eager fallback.

On a 2-core CPU the NeRF step and the spiking neurons are bound by long chains
of elementwise integer and float ops (hashing, trilinear weights, ray marching
masks; a neuron's charge, fire and reset over T steps and its BPTT). Compiled,
each chain fuses into one C++ loop, several times faster than eager (the
neurons: docs/benchmarks.md, "Neuron core speed"). Each function compiles once
per process and configuration on first use (the hash grid takes longest; torch
caches the result on disk). ``SPIKNERF_COMPILE=0`` keeps
everything eager; a failed compile (no C++ compiler, say) warns once and falls
back to eager.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
from torch import Tensor


class CpuCompiled:
    """Call ``fn`` compiled (``dynamic=True``: batch sizes vary) on CPU tensors, eagerly otherwise.

    ``variants``: how many specialisations (dtypes, non-tensor arguments, ...) ``fn`` may compile before
    torch runs it eagerly; torch's own default (8) is too few for the neuron kinds, resets, surrogates and
    step counts that one process (the test suite, a benchmark) may use.
    """

    def __init__(self, fn: Callable, variants: int = 8) -> None:
        self.fn = fn
        self.variants = variants
        self.compiled: Callable | None = None
        self.enabled = os.environ.get("SPIKNERF_COMPILE", "1") != "0"

    def __call__(self, x: Tensor, *args):
        if not self.enabled or x.is_cuda:
            return self.fn(x, *args)
        if self.compiled is None:
            self.compiled = torch.compile(self.fn, dynamic=True)
        try:
            with torch._dynamo.config.patch(recompile_limit=self.variants):
                return self.compiled(x, *args)
        except Exception as exc:  # inductor and its C++ toolchain fail in many ways; eager always works
            warnings.warn(f"compiling {self.fn.__name__} failed, running eager ({type(exc).__name__}: {exc})",
                          stacklevel=2)
            self.enabled = False
            return self.fn(x, *args)
