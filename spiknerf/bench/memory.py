"""Training memory of a model, measured deterministically on any device.

The memory that grows with the number of time steps is what autograd keeps for
the backward pass. :class:`SavedTensorMeter` sums the distinct storages saved
for backward during a forward pass (each storage counted once, however many
ops save it) and keeps the largest total seen; add the bytes of parameters,
their gradients and the optimizer state for the training footprint.
Process RSS would instead mix in the interpreter, libraries and data sets.
"""

from __future__ import annotations

import torch
from torch import nn


class SavedTensorMeter:
    """Context manager around one forward pass; ``peak_bytes`` over all passes measured."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._seen: dict[int, int] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        self._seen[storage.data_ptr()] = storage.nbytes()
        return t

    def __enter__(self) -> SavedTensorMeter:
        self._seen = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self.peak_bytes = max(self.peak_bytes, sum(self._seen.values()))


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes of parameters, their gradients (assumed present) and the optimizer state."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    opt = 0
    if optimizer is not None:
        for state in optimizer.state.values():
            opt += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return 2 * params + opt
