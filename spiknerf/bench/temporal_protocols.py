"""How each temporal task is trained and tested: batches per epoch, loss, and test metrics.

Input noise for the robustness tests is added at test time: for spike inputs
(pattern, dms) ``level`` is the probability per step and channel of an extra
spike; for analog inputs (vowels, smnist) it is the standard deviation of added
Gaussian noise in units of the training inputs' standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spiknerf.bench.tasks import DMSTask, SequenceData, pattern_task

Batch = tuple[Tensor, Tensor]

PATTERN_UPDATES_PER_EPOCH = 10
DMS_BATCHES_PER_EPOCH = 16
DMS_TEST_SAMPLES = 512
TEST_SEED_OFFSET = 10_000  # test data and noise never share a generator state with training


def add_spike_noise(x: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """Extra input spikes with probability ``level`` per step and channel."""
    return torch.maximum(x, (torch.rand(x.shape, generator=generator) < level).to(x.dtype))


def add_current_noise(x: Tensor, level: float, std: float, generator: torch.Generator) -> Tensor:
    """Gaussian noise of ``level`` input standard deviations."""
    return x + level * std * torch.randn(x.shape, generator=generator)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of ``[T, B, C]`` sequences whose argmax readout equals the label."""
    logits, _ = model(x)
    return float((logits.argmax(-1) == y).float().mean())


class PatternProtocol:
    """One frozen input and its target traces; an epoch is a few full-sequence updates. Metric: NMSE."""

    loss: Callable[[Tensor, Tensor], Tensor] = staticmethod(F.mse_loss)
    window = None
    trace = True

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.x, self.y = pattern_task(seed)
        self.n_in, self.n_out = self.x.shape[-1], self.y.shape[-1]

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(PATTERN_UPDATES_PER_EPOCH):
            yield self.x, self.y

    @torch.no_grad()
    def nmse(self, model: nn.Module, x: Tensor) -> float:
        """Mean squared error over the target variance."""
        return float(F.mse_loss(model(x)[0], self.y) / self.y.var())

    def test(self, model: nn.Module, levels: list[float]) -> dict:
        g = torch.Generator().manual_seed(TEST_SEED_OFFSET + self.seed)
        return {"nmse": self.nmse(model, self.x),
                "noise": {str(v): self.nmse(model, add_spike_noise(self.x, v, g)) for v in levels}}


class DMSProtocol:
    """Fresh batches at the trained delays; tested at those and at twice as long delays."""

    loss = staticmethod(F.cross_entropy)
    trace = False

    def __init__(self, seed: int, batch_size: int, task: DMSTask | None = None) -> None:
        self.seed, self.batch_size, self.task = seed, batch_size, task or DMSTask()
        self.n_in, self.n_out, self.window = self.task.n_in, 2, self.task.response_steps

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(DMS_BATCHES_PER_EPOCH):
            x, match, _ = self.task.batch(self.batch_size, generator)
            yield x, match

    def test(self, model: nn.Module, levels: list[float]) -> dict:
        g = torch.Generator().manual_seed(TEST_SEED_OFFSET + self.seed)
        x, match, _ = self.task.batch(DMS_TEST_SAMPLES, g)
        x_long, match_long, _ = self.task.batch(DMS_TEST_SAMPLES, g, delay_scale=2)
        return {"accuracy": accuracy(model, x, match),
                "accuracy_long_delay": accuracy(model, x_long, match_long),
                "noise": {str(v): accuracy(model, add_spike_noise(x, v, g), match) for v in levels}}


class SequenceProtocol:
    """Shuffled mini-batches of a fixed data set, optionally with Gaussian input noise while training."""

    loss = staticmethod(F.cross_entropy)
    window = None
    trace = False

    def __init__(self, seed: int, data: SequenceData, batch_size: int, augment: float = 0.0) -> None:
        self.seed, self.data, self.batch_size, self.augment = seed, data, batch_size, augment
        self.n_in, self.n_out = data.x_train.shape[-1], data.classes
        self.std = float(data.x_train.std())

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        d = self.data
        for idx in torch.randperm(d.x_train.shape[1], generator=generator).split(self.batch_size):
            yield add_current_noise(d.x_train[:, idx], self.augment, self.std, generator), d.y_train[idx]

    def test(self, model: nn.Module, levels: list[float]) -> dict:
        g = torch.Generator().manual_seed(TEST_SEED_OFFSET + self.seed)
        d = self.data
        return {"accuracy": accuracy(model, d.x_test, d.y_test),
                "noise": {str(v): accuracy(model, add_current_noise(d.x_test, v, self.std, g), d.y_test)
                          for v in levels}}


Protocol = PatternProtocol | DMSProtocol | SequenceProtocol
