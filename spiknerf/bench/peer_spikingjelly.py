"""The ``lif`` network rebuilt with SpikingJelly's multi-step ``LIFNode``, for a side-by-side run.

SpikingJelly's LIF with ``v_reset = 0`` charges ``H = V + (X - V) / τ``, fires
``Θ(H - V_th)`` with the ATan surrogate ``(α/2) / (1 + (π α x / 2)²)`` and
resets hard, which is the core's binary LIF with ``decay_input=True``, hard
reset and the ``atan`` surrogate, term by term. The peer network copies the
weights of one of ours, so both start from the same point; trained by the
same loop on the same batches they should reach the same accuracy, and the
difference in time per epoch is the cost of the two LIF implementations
(SpikingJelly's pure-torch step loop against the core's single autograd node).

SpikingJelly is optional: install it without its dependencies (it declares
torchvision and torchaudio, which would pull another torch)::

    pip install --no-deps spikingjelly loguru tqdm
"""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys

from torch import Tensor, nn

from spiknerf.bench.classifier import Data, Objective, RunResult, Settings, build_network, fit
from spiknerf.neurons import SpikingMLP


def spikingjelly_available() -> bool:
    """Whether SpikingJelly's activation-based API imports."""
    try:
        from spikingjelly.activation_based import neuron, surrogate  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_spikingjelly(install: bool) -> bool:
    """Import SpikingJelly, installing it first without its dependencies (they would pull a CUDA torch) if allowed."""
    if spikingjelly_available() or not install:
        return spikingjelly_available()
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "spikingjelly", "loguru", "tqdm"]
    if subprocess.run(cmd, check=False).returncode != 0:
        print("SpikingJelly did not install; skipping the side-by-side run", file=sys.stderr)
        return False
    importlib.invalidate_caches()
    return spikingjelly_available()


class SpikingJellyMLP(nn.Module):
    """``model``'s layers and weights, with SpikingJelly LIF neurons in place of the core's."""

    def __init__(self, model: SpikingMLP) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron, surrogate

        self.T = model.T
        self.fcs = nn.ModuleList(copy.deepcopy(layer.fc) for layer in model.layers)
        self.neurons = nn.ModuleList()
        for layer in model.layers:
            n = layer.neuron
            if n.p.kind != "binary" or n.p.reset != "hard" or n.surrogate.name != "atan":
                raise ValueError("the SpikingJelly peer mirrors binary LIF neurons with hard reset and atan")
            self.neurons.append(neuron.LIFNode(
                tau=n.p.tau, decay_input=n.p.decay_input, v_threshold=n.v_threshold, v_reset=0.0,
                surrogate_function=surrogate.ATan(alpha=n.surrogate.alpha), detach_reset=n.p.detach_reset,
                step_mode="m"))
        self.readout = copy.deepcopy(model.readout)

    def forward(self, x: Tensor) -> Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self)  # SpikingJelly neurons keep their state between calls
        s = x
        for fc, lif in zip(self.fcs, self.neurons, strict=True):
            i = fc(s)
            if i.dim() == 2:
                i = i.expand(self.T, *i.shape)
            s = lif(i)
        return self.readout(s)


def warm_up(model: nn.Module, data: Data, batch: int) -> None:
    """One untimed forward and backward, so that the core's neuron kernels compile (once per process)
    before the clock starts; the gradients are dropped and the weights left as they were."""
    model(data.x_train[:batch]).sum().backward()
    model.zero_grad(set_to_none=True)


def side_by_side(data: Data, s: Settings) -> tuple[RunResult, RunResult]:
    """Train the ``lif`` network and its SpikingJelly twin from the same weights: (ours, theirs)."""
    ours = build_network(data, s, "binary")
    theirs = SpikingJellyMLP(ours)
    for model in (ours, theirs):
        warm_up(model, data, s.batch_size)
    return fit(Objective(ours), data, s), fit(Objective(theirs), data, s)
