"""The shared classification network and the training loop of the gradient methods.

Network (every gradient method): a :class:`~spiknerf.neurons.SpikingMLP` from
the neuron core. The pixels are a constant input current at each of the T
steps (the first layer is a MAC layer, evaluated once), ``layers`` spiking
layers of ``hidden`` neurons follow, and a non-spiking readout averages
``W s[t] + b`` over the T steps into class scores.

A method is an :class:`Objective`: the model it trains plus the loss of one
mini-batch (and optional per-epoch hooks). :func:`fit` runs the same loop for
all of them (AdamW, cosine learning-rate decay, seeded shuffling and
augmentation), measures the training memory deterministically
(:mod:`spiknerf.bench.memory`: tensors saved for backward during the loss's
forward, plus parameters, gradients and optimizer state) and reports the test
accuracy of the last epoch (no model selection on the test set).

:func:`membrane_forward` runs a network step by step with the core's pure
``charge``/``fire``/``reset`` functions and returns the membrane potentials
``H[t]`` of every spiking layer with their graph, for the methods whose loss
reads them (IM-Loss, S2NN's membrane distillation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf.bench.augment import random_shift
from spiknerf.bench.memory import SavedTensorMeter, state_bytes
from spiknerf.bench.subbit import bits_per_weight
from spiknerf.neurons import SpikingMLP, count_ops
from spiknerf.neurons.dynamics import charge, fire, reset


@dataclass(frozen=True)
class Settings:
    """Network size and training schedule shared by the gradient methods."""

    T: int = 4
    epochs: int = 30
    hidden: int = 512
    layers: int = 2
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    shift: int = 0
    seed: int = 0


@dataclass
class Data:
    """Train and test tensors of one split; ``side`` is the image side (for the shift augmentation)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    side: int
    classes: int = 10


@dataclass
class RunResult:
    """What one training run measured."""

    accuracy: float
    train_seconds: float
    peak_memory_bytes: int
    bits_per_weight: float
    sops_per_sample: float
    firing_rate: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)


def build_network(data: Data, s: Settings, neuron: str = "binary", **neuron_kwargs) -> SpikingMLP:
    """The shared SNN: pixels -> ``layers`` x ``hidden`` spiking neurons -> readout over ``T`` steps.

    The synapses feeding spiking neurons get He (Kaiming) normal weights: with
    PyTorch's default uniform init the 64 digit pixels drive almost no neuron
    past threshold, and training idles at chance for several epochs.
    """
    model = SpikingMLP(data.x_train.shape[1], s.hidden, data.classes, s.layers, neuron, s.T, **neuron_kwargs)
    for layer in model.layers:
        nn.init.kaiming_normal_(layer.fc.weight, nonlinearity="relu")
    return model


class Objective:
    """Plain BPTT with cross-entropy on the readout; methods override ``loss`` and the hooks.

    ``model`` maps pixels ``[B, in]`` to class scores: a :class:`SpikingMLP`, or
    the SpikingJelly twin of one in the side-by-side run.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self.model(x), y)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each epoch (e.g. to sharpen a surrogate)."""

    def frozen_bytes(self) -> int:
        """Bytes of tensors held during training that are not the model's (e.g. a frozen teacher)."""
        return 0


def membrane_forward(model: SpikingMLP, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Logits and the membrane potentials ``H`` ``[T, B, hidden]`` of each spiking layer, with gradients."""
    s, potentials = x, []
    for layer in model.layers:
        current = layer.fc(s)
        if current.dim() == 2:  # analog input: the same current at every step
            current = current.expand(model.T, *current.shape)
        n = layer.neuron
        theta = n.threshold
        v = torch.zeros_like(current[0])
        spikes, hs = [], []
        for t in range(model.T):
            h = charge(v, current[t], n.p)
            out, fired = fire(h, theta, n.p, n.surrogate)
            v = reset(h, out, fired, theta, n.p)
            spikes.append(out)
            hs.append(h)
        s = torch.stack(spikes)
        potentials.append(torch.stack(hs))
    return model.readout(s), potentials


def batches(data: Data, s: Settings, generator: torch.Generator):
    """Shuffled, augmented mini-batches of the training set."""
    n = len(data.y_train)
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, s.batch_size):
        idx = order[start : start + s.batch_size]
        yield random_shift(data.x_train[idx], data.side, s.shift, generator), data.y_train[idx]


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float, dict[str, float]]:
    """Test accuracy, synaptic operations per sample and firing rates, in one counted pass."""
    model.eval()
    scores: list[Tensor] = []
    ops = count_ops(_Recorder(model, scores), x)
    accuracy = float((scores[0].argmax(1) == y).float().mean())
    return accuracy, ops.sops_per_sample, {k.removeprefix("model."): v for k, v in ops.firing_rate.items()}


class _Recorder(nn.Module):
    """Wraps a model so that one ``count_ops`` pass also yields its outputs."""

    def __init__(self, model: nn.Module, out: list[Tensor]) -> None:
        super().__init__()
        self.model, self._out = model, out

    def forward(self, x: Tensor) -> Tensor:
        y = self.model(x)
        self._out.append(y)
        return y


def fit(objective: Objective, data: Data, s: Settings, writer=None) -> RunResult:
    """Train ``objective.model`` for ``s.epochs`` epochs; evaluate the last epoch on the test set."""
    model = objective.model
    generator = torch.Generator().manual_seed(s.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, s.epochs))
    meter = SavedTensorMeter()
    seconds = 0.0
    for epoch in range(s.epochs):
        objective.start_epoch(epoch, s.epochs)
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for x, y in batches(data, s, generator):
            with meter:
                loss = objective.loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            seen += len(y)
        schedule.step()
        seconds += time.perf_counter() - start
        if writer is not None:
            writer.add_scalar("train/loss", total / seen, epoch)
            writer.add_scalar("test/accuracy", evaluate(model, data.x_test, data.y_test)[0], epoch)
    accuracy, sops, rates = evaluate(model, data.x_test, data.y_test)
    memory = meter.peak_bytes + state_bytes(model, opt) + objective.frozen_bytes()
    saved = {"saved_tensor_mb": meter.peak_bytes / 2**20}  # the part that grows with T under BPTT
    return RunResult(accuracy, seconds, memory, bits_per_weight(model), sops, rates, saved)
