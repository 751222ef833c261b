r"""The spiking student as a NIR graph (Neuromorphic Intermediate Representation, ``nir`` 1.0).

What the graph holds
--------------------
The student's analog front end stays on the host: the hash-grid (or positional)
encoding of the point and the encoding of the view direction are the graph's
two inputs, ``encoding`` and ``direction``, presented unchanged at each of the
T steps (the student computes its first layer's current once and presents it
at every step; the graph computes the same current at every step). Every linear
map of the student is an ``Affine`` node (weight ``[out, in]``, bias); where a
neuron reads several currents (the colour branch reads the trunk's spikes, the
view direction's current and the encoding's skip current) several edges end at
its input, and NIR sums them. The readouts are ``Affine`` nodes into the
outputs ``density`` and ``color``: the host averages each over the T steps and
applies the student's activations (density ``trunc_exp(x - 1)`` for the fast
preset, ``softplus(x - 1)`` for the NeRF MLPs, colour ``sigmoid``), as recorded in
the graph's metadata.

Time: NIR neurons are continuous-time ODEs; the graph is meant to run with
forward-Euler steps of ``dt = 1`` (metadata ``dt``). Our discrete neuron charges
``H = a V + c X`` with ``a = 1 - 1/τ``; NIR's ``τ dv/dt = (v_leak - v) + R I``
stepped at ``dt = 1`` gives ``v' = (1 - 1/τ) v + (R/τ) I``, so ``tau = τ``,
``v_leak = 0`` and ``r = c τ`` (``r = τ`` for the student, which integrates its
input without the ``1/τ`` decay). NIR fires on ``v > threshold`` and ours on
``H >= θ``: thresholds are stored one float32 step below θ, which makes the two
tests agree on every float32 potential.

Neurons
-------
* binary, hard reset: one ``LIF`` node (reset to ``v_reset = 0``): exact.
* soft reset (binary, ternary or signed ternary): NIR's spiking nodes all reset
  to a fixed potential, so the subtractive reset is built from primitives: an
  ``LI`` node holds the membrane (it never resets by itself); one ``Threshold``
  node per spike level reads it (ternary: θ and θ + Δv; signed ternary: θ on
  ``v`` and θ on ``-v`` through ``Scale(-1)``, its spike negated by another
  ``Scale(-1)``); the levels' outputs sum into the spike S ∈ {0, 1, 2} (or
  {-1, 0, 1}) wherever they are read, and a recurrent ``Linear`` of weight
  ``-a θ`` feeds S back into the ``LI`` input, which NIR delivers one step
  later. Then ``v' = a v + X - a θ S = a (v - θ S) + X``: our soft reset,
  exactly. What is lost: nothing in the arithmetic, but a chip must run ``LI``
  and ``Threshold`` nodes and a recurrent edge rather than a single neuron, and
  the potential it holds is the pre-reset one.
* ternary or signed ternary with hard reset: one ``LIF`` node per level (the
  negative level reads ``-X``), each resetting only when it fires itself. This
  is not exact: where only the lower level fires, our neuron resets to 0 but the
  upper level's node keeps its potential, so it may fire one step early later
  on. The first step is always exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
from torch import nn

from spiknerf.neurons import LIFNeuron, SpikeReadout, SpikingLinear

DT = 1.0


@dataclass
class Builder:
    """Nodes and edges of a NIR graph under construction."""

    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, node: nir.NIRNode, inputs: list[str] = ()) -> str:
        self.nodes[name] = node
        self.edges += [(src, name) for src in inputs]
        return name

    def connect(self, sources: list[str], targets: list[str]) -> None:
        self.edges += [(s, t) for s in sources for t in targets]


@dataclass
class Neurons:
    """A neuron layer as NIR nodes: every input current goes to each of ``entries``; the layer's spike is the
    sum of the outputs of ``exits``."""

    entries: list[str]
    exits: list[str]


def below(value: float) -> np.float32:
    """The largest float32 below ``value``'s float32: ``v > below(θ)`` holds exactly when ``v >= θ``."""
    return np.nextafter(np.float32(value), np.float32(-np.inf))


def neuron_constants(neuron: LIFNeuron) -> tuple[float, float, float]:
    """(τ, r, θ) of a neuron as NIR reads them at ``dt = 1``."""
    p = neuron.p
    tau = float(p.tau)
    gain = 1.0 / tau if p.decay_input else 1.0
    return tau, gain * tau, float(neuron.threshold)


def levels(neuron: LIFNeuron) -> list[tuple[int, np.float32]]:
    """(sign, threshold) of each spike level, thresholds computed as our float32 comparison computes them."""
    theta = np.float32(float(neuron.threshold))
    if neuron.p.kind == "binary":
        return [(1, theta)]
    if neuron.p.kind == "ternary":
        return [(1, theta), (1, np.float32(theta + np.float32(neuron.p.delta_v)))]
    return [(1, theta), (-1, theta)]


def add_neurons(g: Builder, name: str, neuron: LIFNeuron, size: int) -> Neurons:
    """The NIR nodes of one layer of ``size`` neurons (see the module docstring for the forms)."""
    tau, r, theta = neuron_constants(neuron)
    full = lambda v: np.full(size, v, dtype=np.float32)  # noqa: E731
    lif = lambda thr: nir.LIF(tau=full(tau), r=full(r), v_leak=full(0.0), v_threshold=full(below(thr)),  # noqa: E731
                              v_reset=full(0.0))
    if neuron.p.reset == "hard":
        if neuron.p.kind == "binary":
            return Neurons([g.add(name, lif(theta))], [name])
        entries, exits = [], []
        for k, (sign, thr) in enumerate(levels(neuron)):
            node = g.add(f"{name}_level{k}", lif(float(thr)))
            if sign > 0:
                entries.append(node)
                exits.append(node)
            else:
                entries.append(g.add(f"{name}_level{k}_in", nir.Scale(full(-1.0)), []))
                g.connect([entries[-1]], [node])
                exits.append(g.add(f"{name}_level{k}_out", nir.Scale(full(-1.0)), [node]))
        return Neurons(entries, exits)
    membrane = g.add(f"{name}_v", nir.LI(tau=full(tau), r=full(r), v_leak=full(0.0)))
    exits = []
    for k, (sign, thr) in enumerate(levels(neuron)):
        source = membrane if sign > 0 else g.add(f"{name}_level{k}_in", nir.Scale(full(-1.0)), [membrane])
        spike = g.add(f"{name}_level{k}", nir.Threshold(full(below(float(thr)))), [source])
        exits.append(spike if sign > 0 else g.add(f"{name}_level{k}_out", nir.Scale(full(-1.0)), [spike]))
    leak = 1.0 - 1.0 / tau
    if leak != 0.0:  # τ = 1 forgets the potential anyway
        weight = np.diag(full(np.float32(leak) * np.float32(-theta))).astype(np.float32)
        g.add(f"{name}_reset", nir.Linear(weight), exits)
        g.connect([f"{name}_reset"], [membrane])
    return Neurons([membrane], exits)


def affine(layer: nn.Linear) -> nir.Affine:
    weight = layer.weight.detach().cpu().float().numpy().copy()
    bias = (layer.bias.detach().cpu().float().numpy().copy() if layer.bias is not None
            else np.zeros(weight.shape[0], dtype=np.float32))
    return nir.Affine(weight=weight, bias=bias)


def add_spiking(g: Builder, name: str, layer: SpikingLinear, sources: list[str],
                currents: list[str] = ()) -> Neurons:
    """A :class:`SpikingLinear`: its synapses from ``sources`` plus the extra ``currents``, then its neurons."""
    fc = g.add(f"{name}_fc", affine(layer.fc), sources)
    neurons = add_neurons(g, name, layer.neuron, layer.fc.out_features)
    g.connect([fc, *currents], neurons.entries)
    return neurons


def add_readout(g: Builder, name: str, readout: SpikeReadout, spikes: Neurons, output: str) -> None:
    g.add(name, affine(readout.fc), spikes.exits)
    g.add(output, nir.Output(output_type={"output": np.array([readout.fc.out_features])}), [name])


def graph_input(g: Builder, name: str, size: int) -> str:
    return g.add(name, nir.Input(input_type={"input": np.array([size])}))


def student_graph(model: nn.Module, activations: dict[str, str]) -> nir.NIRGraph:
    """The NIR graph of a spiking student field (fast preset or NeRF MLP); ``activations`` name what the host
    applies to each output's mean over T (recorded in the metadata)."""
    from spiknerf.nerf.student import SpikingNeRFField, SpikingNGPField

    g = Builder()
    if isinstance(model, SpikingNGPField):
        enc = graph_input(g, "encoding", model.encoding.out_dim)
        direction = graph_input(g, "direction", model.dir_encoding.out_dim)
        trunk = add_spiking(g, "trunk", model.trunk, [enc])
        add_readout(g, "density_head", model.density_head, trunk, "density")
        currents = [g.add("dir_current", affine(model.dir_current), [direction])]
        if model.skip_current is not None:
            currents.append(g.add("skip_current", affine(model.skip_current), [enc]))
        color1 = add_spiking(g, "color1", model.color1, trunk.exits, currents)
        color2 = add_spiking(g, "color2", model.color2, color1.exits)
        add_readout(g, "color_head", model.color_head, color2, "color")
        T = model.trunk.T
    elif isinstance(model, SpikingNeRFField):
        enc = graph_input(g, "encoding", model.pos_encoding.out_dim)
        direction = graph_input(g, "direction", model.dir_encoding.out_dim)
        skip = g.add("skip_current", affine(model.skip_current), [enc])
        spikes = Neurons([enc], [enc])
        for i, layer in enumerate(model.layers):
            spikes = add_spiking(g, f"layer{i}", layer, spikes.exits, [skip] if i == model.skip else [])
        add_readout(g, "sigma_head", model.sigma_head, spikes, "density")
        feature = add_spiking(g, "feature", model.feature, spikes.exits)
        dir_current = g.add("dir_current", affine(model.dir_current), [direction])
        view = add_spiking(g, "view", model.view, feature.exits, [dir_current])
        add_readout(g, "rgb_head", model.rgb_head, view, "color")
        T = model.layers[0].T
    else:
        raise TypeError(f"not a spiking student field: {type(model).__name__}")
    metadata = {
        "producer": "spiknerf", "dt": DT, "T": T,
        "inputs": "encoding and direction, computed by the host and presented unchanged at each of the T steps",
        "outputs": "each output's mean over the T steps, then " + "; ".join(f"{k} = {v}" for k, v in
                                                                           activations.items()),
        "threshold": "stored one float32 step below θ: NIR fires on v > threshold, the student on v >= θ",
    }
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=metadata)
