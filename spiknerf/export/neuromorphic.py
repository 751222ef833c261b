"""``spiknerf export nir``: the spiking student as a NIR graph for neuromorphic tool chains, checked by a round trip.

The graph (:mod:`spiknerf.export.nir_graph`) is written with ``nir.write``, read
back with ``nir.read`` and simulated (:mod:`spiknerf.export.nir_sim`) on sample
points of the first training view; the command prints how many spikes and how
close the readouts of the re-read graph agree with the student's own on the
same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import torch
from torch import Tensor, nn

from spiknerf.atomic import atomic_path
from spiknerf.errors import InputError
from spiknerf.export.nir_graph import student_graph
from spiknerf.export.nir_sim import simulate
from spiknerf.export.source import held_if_inside, open_run, output_file
from spiknerf.nerf.evaluate import sample_points
from spiknerf.nerf.run import eval_background
from spiknerf.neurons import SpikeReadout, SpikingLinear

ACTIVATIONS = {"fast": {"density": "trunc_exp(x - 1)", "color": "sigmoid(x)"},
               "mlp": {"density": "softplus(x - 1)", "color": "sigmoid(x)"},
               "paper": {"density": "softplus(x - 1)", "color": "sigmoid(x)"}}


@dataclass
class NIRConfig:
    """Export a run's spiking student as a NIR graph and check it by simulating the graph read back."""

    run: str = field(metadata={"help": "run directory"})
    out: str = field(metadata={"help": "output graph: FILE.nir (HDF5)"})
    points: int = field(default=4096, metadata={"help": "sample points of the round-trip check (0: no check)"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})


def graph_inputs(model: nn.Module, points: Tensor, dirs: Tensor) -> dict[str, Tensor]:
    """What the host feeds the graph: the encodings of the points and of the view directions."""
    if hasattr(model, "encoding"):  # fast preset: hash grid and spherical harmonics
        return {"encoding": model.encoding(model.box.normalize(points)[0]), "direction": model.dir_encoding(dirs)}
    return {"encoding": model.pos_encoding(model.box.normalize(points)[0] * 2.0 - 1.0),
            "direction": model.dir_encoding(dirs)}


def layer_names(model: nn.Module) -> dict[str, nn.Module]:
    """The student's spiking layers and readouts by their names in the graph."""
    names: dict[str, nn.Module] = {}
    for path, module in model.named_modules():
        if isinstance(module, (SpikingLinear, SpikeReadout)):
            names[path.replace("layers.", "layer")] = module
    return names


@torch.no_grad()
def student_trace(model: nn.Module, points: Tensor, dirs: Tensor) -> dict[str, Tensor]:
    """Each spiking layer's spikes and each readout's per-step output ``[T, B, n]`` of the student itself."""
    captured: dict[str, Tensor] = {}
    hooks = []
    for name, module in layer_names(model).items():
        target = module.neuron if isinstance(module, SpikingLinear) else module.fc
        hooks.append(target.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o)))
    try:
        model(points, dirs)
    finally:
        for h in hooks:
            h.remove()
    return captured


def graph_spikes(outputs: dict[str, Tensor], graph: nir.NIRGraph, name: str) -> Tensor:
    """The spikes of layer ``name`` in a simulated graph: the sum of its levels' outputs."""
    if name in outputs and isinstance(graph.nodes[name], nir.LIF):
        return outputs[name]
    k, total = 0, None
    while f"{name}_level{k}" in outputs:
        level = outputs.get(f"{name}_level{k}_out", outputs[f"{name}_level{k}"])
        total = level if total is None else total + level
        k += 1
    if total is None:
        raise KeyError(name)
    return total


@torch.no_grad()
def round_trip(model: nn.Module, graph: nir.NIRGraph, points: Tensor, dirs: Tensor) -> dict[str, Any]:
    """Spikes and readouts of ``graph`` simulated on ``points``/``dirs`` against the student's own.

    Per spiking layer: the fraction of spike values that are equal; per readout: the largest absolute difference
    of its per-step outputs; ``identical``: every spike equal, and every readout equal but for the order of its
    sums (:func:`_summation_bound`).
    """
    model = model.cpu().eval()
    points, dirs = points.cpu().float(), dirs.cpu().float()
    ours = student_trace(model, points, dirs)
    T = next(iter(ours.values())).shape[0]
    sim = simulate(graph, graph_inputs(model, points, dirs), T, dt=float(graph.metadata.get("dt", 1.0)))
    layers, readouts, identical = {}, {}, True
    for name, module in layer_names(model).items():
        if isinstance(module, SpikingLinear):
            theirs = graph_spikes(sim, graph, name)
            equal = (theirs == ours[name])
            layers[name] = {"spike_agreement": float(equal.float().mean()), "mismatches": int((~equal).sum()),
                            "spikes": int(ours[name].numel())}
            identical &= bool(equal.all())
        else:
            readouts[name] = float((sim[name] - ours[name]).abs().max())
            identical &= readouts[name] <= _summation_bound(ours[name], module.fc.in_features)
    return {"points": len(points), "T": T, "layers": layers, "readout_max_abs_diff": readouts,
            "identical": identical}


def _summation_bound(values: Tensor, fan_in: int) -> float:
    """How far two float32 sums of the same ``fan_in`` products may differ by their order alone (fan_in x the
    unit roundoff x the largest value). The student's readout takes its T steps as one product and the simulator
    one step at a time; the BLAS blocks the two shapes differently, and on some CPUs their last bits differ."""
    return fan_in * torch.finfo(torch.float32).eps * max(float(values.abs().max()), 1.0)


def write_graph(graph: nir.NIRGraph, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        nir.write(tmp, graph)


def read_graph(path: str | Path) -> nir.NIRGraph:
    """A NIR file read back; a file that is not one is an InputError naming it."""
    try:
        return nir.read(path)
    except (OSError, ValueError, KeyError, AssertionError, TypeError) as exc:
        raise InputError(f"{path}: not a readable NIR graph ({exc})") from None


def export_nir(cfg: NIRConfig) -> tuple[nir.NIRGraph, dict[str, Any] | None]:
    """Write the student of ``cfg.run`` as a NIR graph; return the graph read back and its round-trip report."""
    if cfg.points < 0:
        raise InputError(f"--points must be >= 0 (got {cfg.points})")
    source = open_run(cfg.run, "student", cfg.device, world_space=False)
    out = output_file(cfg.out, (".nir",), "NIR graph")
    graph = student_graph(source.model, ACTIVATIONS[source.config.preset])
    with held_if_inside(cfg.run, out):
        write_graph(graph, out)
    back = read_graph(out)
    if cfg.points == 0:
        return back, None
    scene = source.scene
    points, dirs = sample_points(source.model, source.sampler, scene.splits["train"], eval_background(scene),
                                 source.device, cfg.points)
    return back, round_trip(source.model, back, points, dirs)


def main(cfg: NIRConfig) -> int:
    graph, report = export_nir(cfg)
    print(f"wrote {cfg.out}: {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    if report is not None:
        for name, layer in report["layers"].items():
            print(f"  {name}: {layer['mismatches']} of {layer['spikes']} spikes differ from the student's")
        for name, diff in report["readout_max_abs_diff"].items():
            print(f"  {name}: readouts differ by at most {diff:.3g}")
        print("round trip: " + ("identical" if report["identical"] else "not identical") +
              f" on {report['points']} sample points")
    return 0
