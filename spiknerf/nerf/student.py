"""Spiking student fields (Spik-NeRF): the teacher's encoding, a spiking MLP over T steps.

The encoding (hash grid or positional encoding) is an analog input: the first
layer turns it into a current once and presents it at every one of the T
steps. Hidden layers are spiking neurons from :mod:`spiknerf.neurons`; density
and colour come from non-spiking readouts averaged over T. The view direction
enters the colour branch as an extra input current computed once per sample,
and so does the encoding again (a skip, as in the NeRF MLP; the fast student's
``color_skip=False`` leaves it out), so the colour layers read the trunk's
spikes plus analog currents. The layers that read the analog encoding and the
view direction stay multiply-accumulate; every other layer is spike-driven.

:class:`StudentSettings` holds what a run chooses about its student (the
``--neuron``, ``--T``, ... options, saved in the run's ``config.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf.kernels import CpuCompiled
from spiknerf.nerf.encodings import HashGrid, PositionalEncoding, SphericalHarmonics
from spiknerf.nerf.fields import SceneBox, trunc_exp
from spiknerf.neurons import RESETS, SURROGATES, SpikeReadout, SpikingLinear
from spiknerf.neurons.dynamics import MAX_COMPILED_STEPS

NEURON_CHOICES = ("ternary", "binary", "signed-ternary")
MAX_T = 64  # a spiking layer holds T copies of its activations
MAX_COLOR_HIDDEN = 1024  # a config.json may come from a stranger: it must not size layers past memory


@dataclass
class StudentSettings:
    """The student's neurons (and the fast student's colour skip): ``spiknerf train``'s student options.

    The neurons integrate their input current without the 1/τ input decay
    (``decay_input=False``): the same dynamics with the decay folded into the
    weights, so that default-initialised layers start close enough to the
    threshold to fire. A ternary neuron fires 1 at θ and 2 at θ + Δv (Δv = θ
    unless set), and its soft reset subtracts θ S, so that what a step does not
    spend carries to the next: at T = 2 a constant current then gives spike
    counts 0 to 4, where a hard reset gives 0, 1, 2 or 4.
    """

    neuron: str = field(default="ternary", metadata={"choices": NEURON_CHOICES, "help": "student neuron"})
    T: int = field(default=2, metadata={"help": "student time steps"})
    threshold: float = field(default=0.25, metadata={"help": "student firing threshold θ; ternary neurons fire 2 "
                                                               "at θ + Δv"})
    delta_v: float | None = field(default=None, metadata={"help": "Δv (default: θ, so that the levels are uniform)"})
    reset: str = field(default="soft", metadata={
        "choices": RESETS, "help": "student membrane reset: soft (subtract θ·S: the residue carries) or hard (to 0)"})
    surrogate: str = field(default="atan", metadata={"choices": SURROGATES, "help": "student surrogate gradient"})
    learnable_threshold: bool = field(default=False, metadata={"help": "LTMD threshold tanh(w) per layer"})
    color_hidden: int = field(default=64, metadata={"help": "fast student: width of its spiking colour layers"})
    color_skip: bool = field(default=True, metadata={
        "flag": "--no-color-skip", "help": "fast student: its colour branch reads the trunk's spikes and the view "
                                           "direction only, not the encoding again (less energy, less accuracy)"})

    def checks(self) -> list[tuple[bool, str]]:
        """(holds, what to say if not) for each range the options must respect (see ``TrainConfig.validate``)."""
        return [
            (1 <= self.T <= MAX_T, f"--T must be in 1..{MAX_T} (got {self.T})"),
            (0 < self.threshold < 1, f"--threshold must be in (0, 1) (got {self.threshold})"),
            (self.delta_v is None or self.delta_v > 0, f"--delta-v must be > 0 (got {self.delta_v})"),
            (1 <= self.color_hidden <= MAX_COLOR_HIDDEN,
             f"--color-hidden must be in 1..{MAX_COLOR_HIDDEN} (got {self.color_hidden})"),
        ]

    def layer_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of every spiking layer of a student built with these settings."""
        return dict(neuron=self.neuron.replace("-", "_"), T=self.T, learnable_threshold=self.learnable_threshold,
                    surrogate=self.surrogate, decay_input=False, reset=self.reset, v_threshold=self.threshold,
                    delta_v=self.threshold if self.delta_v is None else self.delta_v)


class SpikingNGPField(nn.Module):
    """Fast preset student: hash grid -> spiking trunk -> density readout; spiking colour branch -> rgb readout.

    The colour branch's first layer reads the trunk's spikes plus two analog currents computed once per
    sample: the view direction's and the encoding's (``skip_current``). At T = 2 a ternary trunk unit driven
    by a constant current has only a handful of possible spike trains (five spike counts at most, see
    ``StudentSettings``), too coarse to carry fine colour on its own: in exploratory runs with the
    earlier hard reset the skip roughly halved the distilled student's gap to its teacher on both scenes.
    The colour branch's width (``color_hidden``, ``--color-hidden``) trades accuracy for energy and step time
    both ways: its two spiking layers are most of the student's work a sample (docs/benchmarks.md,
    ``bench_spiknerf.py --color-widths``).
    The skip also carries position past the spikes, and so hides part of what ternary spikes add over
    binary ones. ``color_skip=False`` (``--no-color-skip``) leaves it out, so that colour as well as density
    passes through spikes: both students lose accuracy and spend less energy, binary more than ternary
    (docs/benchmarks.md, ``bench_spiknerf.py --spike-only``).
    """

    def __init__(self, aabb: Tensor, neuron: str = "ternary", T: int = 2, n_levels: int = 12, log2_table: int = 16,
                 max_resolution: int | tuple[int, int, int] = 512, hidden: int = 64, color_hidden: int = 64,
                 color_skip: bool = True, contract: bool = False, **neuron_kwargs) -> None:
        super().__init__()
        self.box = SceneBox(aabb, contract)
        self.encoding = HashGrid(n_levels=n_levels, log2_table=log2_table, max_resolution=max_resolution)
        self.dir_encoding = SphericalHarmonics()
        self.trunk = SpikingLinear(self.encoding.out_dim, hidden, neuron, T, **neuron_kwargs)
        self.density_head = SpikeReadout(hidden, 1)
        self.dir_current = nn.Linear(self.dir_encoding.out_dim, color_hidden)
        self.skip_current = nn.Linear(self.encoding.out_dim, color_hidden) if color_skip else None
        self.color1 = SpikingLinear(hidden, color_hidden, neuron, T, spike_input=True, **neuron_kwargs)
        self.color2 = SpikingLinear(color_hidden, color_hidden, neuron, T, spike_input=True, **neuron_kwargs)
        self.color_head = SpikeReadout(color_hidden, 3)

    def density(self, x: Tensor) -> Tensor:
        u, inside = self.box.normalize(x)
        return _ngp_density(self, self.encoding(u), inside)[0]

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        u, inside = self.box.normalize(x)
        return _ngp_layers_for(self)(self, self.encoding(u), inside, d)


class SpikingNeRFField(nn.Module):
    """Paper and mlp preset student: the NeRF MLP (8 x 256 or 4 x 128, skip, view branch) with spiking hidden
    layers.

    The skip connection re-injects the encoding as an extra current (a MAC
    layer, computed once) into the spiking layer ``skip``.
    """

    def __init__(self, aabb: Tensor, neuron: str = "ternary", T: int = 2, depth: int = 8, width: int = 256,
                 skip: int = 4, pos_freqs: int = 10, dir_freqs: int = 4, contract: bool = False,
                 **neuron_kwargs) -> None:
        super().__init__()
        self.box = SceneBox(aabb, contract)
        self.pos_encoding = PositionalEncoding(3, pos_freqs)
        self.dir_encoding = PositionalEncoding(3, dir_freqs)
        self.skip = skip
        in_dim = self.pos_encoding.out_dim
        self.layers = nn.ModuleList(
            SpikingLinear(in_dim if i == 0 else width, width, neuron, T, spike_input=i > 0, **neuron_kwargs)
            for i in range(depth)
        )
        self.skip_current = nn.Linear(in_dim, width)
        self.sigma_head = SpikeReadout(width, 1)
        self.feature = SpikingLinear(width, width, neuron, T, spike_input=True, **neuron_kwargs)
        self.dir_current = nn.Linear(self.dir_encoding.out_dim, width // 2)
        self.view = SpikingLinear(width, width // 2, neuron, T, spike_input=True, **neuron_kwargs)
        self.rgb_head = SpikeReadout(width // 2, 3)

    def _trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, inside = self.box.normalize(x)
        e = self.pos_encoding(u * 2.0 - 1.0)
        s = e
        for i, layer in enumerate(self.layers):
            s = layer(s, current=self.skip_current(e) if i == self.skip else None)
        return F.softplus(self.sigma_head(s)[:, 0] - 1.0) * inside, s

    def density(self, x: Tensor) -> Tensor:
        return self._trunk(x)[0]

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        sigma, s = self._trunk(x)
        s = self.view(self.feature(s), current=self.dir_current(self.dir_encoding(d)))
        return sigma, torch.sigmoid(self.rgb_head(s))


def _ngp_density(student: SpikingNGPField, e: Tensor, inside: Tensor) -> tuple[Tensor, Tensor]:
    """The fast student's density and its trunk's spikes, from the encoding ``e``."""
    s = student.trunk(e)
    return trunc_exp(student.density_head(s)[:, 0] - 1.0) * inside, s


def _ngp_layers(student: SpikingNGPField, e: Tensor, inside: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """The fast student's density and colour from the encoding ``e``: everything after the hash grid."""
    sigma, s = _ngp_density(student, e, inside)
    current = student.dir_current(student.dir_encoding(d))
    if student.skip_current is not None:
        current = current + student.skip_current(e)
    s = student.color1(s, current=current)
    return sigma, torch.sigmoid(student.color_head(student.color2(s)))


# The fast student's training step through its spiking layers, compiled as one graph: its linear layers,
# neurons, readouts and their backward fuse into a few loops around the matmuls, where eager autograd runs each
# op, and each neuron's fused node, as a call of its own (the student's step against the teacher's:
# docs/benchmarks.md, "A busy machine"). The batch size is symbolic from the first call (``CpuCompiled``). The
# NeRF students (mlp and paper presets) stay eager: their steps are bound by wide matmuls, and tracing their
# deeper unrolled layers costs a short run more compile time than it saves; a long run's gain is not measured.
_ngp_layers_kernel = CpuCompiled(_ngp_layers, dynamic="batch")


def _ngp_layers_for(student: SpikingNGPField) -> Callable:
    """The compiled layers for a training step (the student training, autograd recording), else the eager ones.

    Evaluation stays eager: it runs the fused neuron nodes without autograd, and the op counters and the
    reparameterization hook the layers' calls, which a compiled graph would not make one by one. So do
    sequences longer than the compiled neurons unroll (``MAX_COMPILED_STEPS``).
    """
    if student.training and torch.is_grad_enabled() and student.trunk.T <= MAX_COMPILED_STEPS:
        return _ngp_layers_kernel
    return _ngp_layers
