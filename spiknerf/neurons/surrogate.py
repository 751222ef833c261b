"""Surrogate gradients for the Heaviside step, chosen by name.

A spike is ``Θ(x)`` with ``x = h - θ`` (membrane minus threshold). Its forward
value is the exact step; its backward uses the derivative ``g(x)`` of a smooth
stand-in with sharpness ``alpha``:

==================  ==========================================  =========
name                g(x)                                        alpha
==================  ==========================================  =========
rectangular         1/α  if |x| < α/2, else 0                   width 1
triangle            max(0, 1 - |x|/α) / α                       width 1
sigmoid             α σ(αx)(1 - σ(αx))                          4
atan                (α/2) / (1 + (π α x / 2)²)                  2
tanh                (α/2) (1 - tanh²(αx))                       2
straight_through    1                                           unused
==================  ==========================================  =========

``tanh`` is the surrogate whose sharpness IM-Loss raises during training: its
``alpha`` may be changed between steps (``surrogate.alpha = ...``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def _rectangular(x: Tensor, a: float) -> Tensor:
    return (x.abs() < a / 2).to(x.dtype) / a


def _triangle(x: Tensor, a: float) -> Tensor:
    return (1.0 - x.abs() / a).clamp_min(0.0) / a


def _sigmoid(x: Tensor, a: float) -> Tensor:
    s = torch.sigmoid(a * x)
    return a * s * (1.0 - s)


def _atan(x: Tensor, a: float) -> Tensor:
    return (a / 2) / (1.0 + (math.pi / 2 * a * x) ** 2)


def _tanh(x: Tensor, a: float) -> Tensor:
    return (a / 2) * (1.0 - torch.tanh(a * x) ** 2)


def _straight_through(x: Tensor, a: float) -> Tensor:
    return torch.ones_like(x)


_GRADS: dict[str, tuple[Callable[[Tensor, float], Tensor], float]] = {
    "rectangular": (_rectangular, 1.0),
    "triangle": (_triangle, 1.0),
    "sigmoid": (_sigmoid, 4.0),
    "atan": (_atan, 2.0),
    "tanh": (_tanh, 2.0),
    "straight_through": (_straight_through, 1.0),
}

SURROGATES: tuple[str, ...] = tuple(_GRADS)


def surrogate_grad(name: str) -> Callable[[Tensor, float | Tensor], Tensor]:
    """The derivative ``g(x, alpha)`` of the surrogate called ``name``."""
    return _GRADS[name][0]


class Surrogate:
    """A named surrogate derivative ``g(x)``; ``alpha`` may be changed in place.

    Args:
        name: one of ``SURROGATES`` (``"atan"``, ``"sigmoid"``, ``"triangle"``, ...).
        alpha: its sharpness; ``None`` takes the surrogate's default.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import Surrogate
        >>> Surrogate("atan").grad(torch.tensor([0.0])).tolist()  # alpha / 2 at the threshold
        [1.0]
    """

    def __init__(self, name: str = "atan", alpha: float | None = None) -> None:
        key = name.replace("-", "_")
        if key not in _GRADS:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)} (got {name!r})")
        fn, default_alpha = _GRADS[key]
        alpha = default_alpha if alpha is None else float(alpha)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 (got {alpha})")
        self.name, self._fn, self.alpha = key, fn, alpha

    def grad(self, x: Tensor) -> Tensor:
        """The surrogate derivative at ``x`` (the forward step's stand-in slope)."""
        return self._fn(x, self.alpha)

    def __repr__(self) -> str:
        return f"Surrogate({self.name!r}, alpha={self.alpha})"


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.grad(x), None


def heaviside(x: Tensor, surrogate: Surrogate) -> Tensor:
    """``Θ(x)`` (1 where x >= 0) forward, ``surrogate.grad(x)`` backward.

    Example:
        >>> import torch
        >>> from spiknerf.neurons import Surrogate, heaviside
        >>> x = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
        >>> s = heaviside(x, Surrogate("triangle", alpha=1.0)); s.tolist()
        [0.0, 1.0, 1.0]
        >>> s.sum().backward(); x.grad.tolist()
        [0.0, 1.0, 0.0]
    """
    return _Heaviside.apply(x, surrogate)
