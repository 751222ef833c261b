"""A small discrete-time simulator of NIR graphs, to run an exported graph as a chip's tool chain would.

Each node is stepped with forward Euler at ``dt``; where several edges end at a
node their outputs are summed (in the order of the graph's edges). An edge that
closes a cycle (found by a depth-first walk from the inputs) carries its
source's output of the previous step, zero at the first. Nodes: ``Input``,
``Output``, ``Affine``, ``Linear``, ``Scale``, ``Threshold``, ``LI``, ``I``,
``LIF`` and ``IF`` (the ones :mod:`spiknerf.export.nir_graph` writes, and their
integrate-only relatives); others are refused. Neurons fire on
``v > v_threshold`` and then reset to ``v_reset``, as NIR defines them::

    LI, LIF:  v <- (1 - dt/τ) v + (dt r/τ) x + (dt/τ) v_leak
    I, IF:    v <- v + dt r x

The leak is applied as one fused ``x + a v`` where all neurons of a node share
it, the form the student's own neurons compute.
"""

from __future__ import annotations

from collections.abc import Callable

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spiknerf.errors import InputError

STATEFUL = (nir.LI, nir.LIF, nir.I, nir.IF)
STATELESS = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Threshold)


def _t(a: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def order(graph: nir.NIRGraph) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in an order where every non-recurrent input comes first, and the recurrent (cycle-closing) edges."""
    succ: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        succ[src].append(dst)
    state: dict[str, int] = {}  # 1 on the walk's stack, 2 finished
    back: set[tuple[str, str]] = set()
    post: list[str] = []

    def visit(root: str) -> None:
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                post.append(node)
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))

    starts = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    for name in starts + list(graph.nodes):
        if name not in state:
            visit(name)
    return post[::-1], back


def _neuron_step(node: nir.NIRNode, dt: float) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """(x, v) -> (output, new v) of a stateful node."""
    if isinstance(node, (nir.LI, nir.LIF)):
        tau, r, v_leak = _t(node.tau), _t(node.r), _t(node.v_leak)
        leak, gain, rest = 1.0 - dt / tau, dt * r / tau, dt / tau * v_leak
        uniform = bool((leak == leak.flatten()[0]).all())

        def charge(x: Tensor, v: Tensor) -> Tensor:
            h = torch.add(gain * x, v, alpha=float(leak.flatten()[0])) if uniform else gain * x + leak * v
            return h + rest if bool(rest.any()) else h
    else:
        gain = dt * _t(node.r)

        def charge(x: Tensor, v: Tensor) -> Tensor:
            return v + gain * x

    if isinstance(node, (nir.LI, nir.I)):
        return lambda x, v: (charge(x, v), charge(x, v))
    threshold, v_reset = _t(node.v_threshold), _t(node.v_reset)

    def fire(x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        h = charge(x, v)
        z = h > threshold
        return z.to(h.dtype), torch.where(z, v_reset.expand_as(h), h)

    return fire


def _map(node: nir.NIRNode) -> Callable[[Tensor], Tensor]:
    if isinstance(node, (nir.Input, nir.Output)):
        return lambda x: x
    if isinstance(node, nir.Affine):
        w, b = _t(node.weight), _t(node.bias)
        return lambda x: F.linear(x, w, b)
    if isinstance(node, nir.Linear):
        w = _t(node.weight)
        return lambda x: F.linear(x, w)
    if isinstance(node, nir.Scale):
        s = _t(node.scale)
        return lambda x: x * s
    threshold = _t(node.threshold)
    return lambda x: (x > threshold).to(x.dtype)


def simulate(graph: nir.NIRGraph, inputs: dict[str, Tensor], steps: int, dt: float = 1.0) -> dict[str, Tensor]:
    """Every node's outputs ``[steps, B, ...]`` for ``inputs`` (graph input name -> ``[B, n]``, presented at each
    step, or ``[steps, B, n]``)."""
    for name, node in graph.nodes.items():
        if not isinstance(node, STATEFUL + STATELESS):
            raise InputError(f"NIR node {name!r} is a {type(node).__name__}, which this simulator does not run")
    missing = sorted(set(graph.inputs) - set(inputs))
    if missing:
        raise InputError(f"no value for the graph input {missing[0]!r}")
    names, back = order(graph)
    sources: dict[str, list[tuple[str, bool]]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        sources[dst].append((src, (src, dst) in back))
    steppers = {n: _neuron_step(graph.nodes[n], dt) for n in names if isinstance(graph.nodes[n], STATEFUL)}
    maps = {n: _map(graph.nodes[n]) for n in names if n not in steppers}
    state: dict[str, Tensor] = {}
    previous: dict[str, Tensor] = {}
    history: dict[str, list[Tensor]] = {n: [] for n in names}
    for t in range(steps):
        now: dict[str, Tensor] = {}
        for n in names:
            if n in graph.inputs:
                value = inputs[n]
                now[n] = value[t] if value.dim() == 3 else value
                history[n].append(now[n])
                continue
            parts = [(previous.get(s) if recurrent else now[s]) for s, recurrent in sources[n]]
            parts = [p for p in parts if p is not None]  # a recurrent source is silent before its first step
            if not parts:
                raise InputError(f"NIR node {n!r} has no input")
            x = parts[0]
            for p in parts[1:]:
                x = x + p
            if n in steppers:
                v = state.get(n, torch.zeros_like(x))
                now[n], state[n] = steppers[n](x, v)
            else:
                now[n] = maps[n](x)
            history[n].append(now[n])
        previous = now
    return {n: torch.stack(h) for n, h in history.items()}
