"""NCG: neuronal competition groups trained by supervised STDP (Goupy, Tirilly & Bilasco, NeurIPS 2024).

No backpropagation anywhere: one layer of integrate-and-fire neurons learns by
a local, error-modulated STDP rule on top of a fixed feature extractor.

* Features: the raw pixels in [0, 1] (the identity as the fixed extractor: no
  learned features at all, so this is the weakest setting of the method).
* First-spike coding over T steps: input i fires once, at step
  ``t_i = round((1 - x_i)(T - 1))`` (brighter fires earlier); ``x_i = 0``
  never fires. (The paper's neurons run on continuous spike times; here time
  is T steps, as for the other methods.)
* Output: ``M`` neurons per class (a competition group). Each integrates its
  input spikes, ``V[t] = Σ_{i: t_i <= t} w_i`` (no leak), and fires once, at
  the first step where ``V >= θ``. θ is fixed, a fraction of the mean final
  potential at the start (weights start uniform in [0, 1]). The decision is
  the class of the first neuron to fire; neurons firing at the same step are
  ranked by how far their potential is past threshold, and if none fires, by
  final potential.
* Intra-class winner-takes-all: in each group only the winner (first to fire)
  learns on a sample.
* S2-STDP: the winners' target firing times are set around the mean firing
  time ``t̄`` of the winners, ``t̄ - g (C-1)/C`` for the winner of the sample's
  class and ``t̄ + g / C`` for the others (``t̄ <= T - g/C``; C classes, gap g
  in steps). The error ``e = (t - t_target) / T`` scales STDP (e > 0, too
  late) or anti-STDP (e < 0, too early)::

      Δw_i = η e ·  a⁺ exp(-β w_i)          if input i fired at or before the neuron
      Δw_i = η e · -a⁻ exp(-β (1 - w_i))    if input i fired after it
      Δw_i = 0                              if input i never fired

  with weights kept in [0, 1] (multiplicative soft bounds). Samples are
  learned one at a time (online), η decays by a constant factor each epoch.
* Two-compartment thresholds (competition regulation): a neuron's threshold
  is ``θ + b_n``; the base compartment θ fires the neuron, in training and at
  inference; the regulation compartment b_n only decides, while training,
  which neuron of the sample's own group wins (and so learns). When it wins,
  its b rises by η_b θ and the other members' b fall by η_b θ / (M - 1), so a
  neuron that keeps winning loses its edge and the group's other neurons get
  to learn other patterns of the class.
  (This is our reading of the paper's mechanism; its code was not at hand.)

The input layer is a :class:`~spiknerf.neurons.SpikeLinear` on the
``[T, B, in]`` spike code, so ``count_ops`` counts its synaptic operations
(input spikes x fan-out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spiknerf.bench.classifier import Data, RunResult, evaluate
from spiknerf.neurons import SpikeLinear


@dataclass(frozen=True)
class NCGSettings:
    """Size and learning rates of the NCG layer."""

    T: int = 4
    epochs: int = 10
    per_class: int = 5
    batch_size: int = 1
    lr: float = 0.1
    a_plus: float = 1.0
    a_minus: float = 0.75
    beta: float = 1.0
    gap: float = 4.0
    threshold_fraction: float = 0.6
    regulation_lr: float = 0.005
    annealing: float = 0.9
    seed: int = 0


class NCGClassifier(nn.Module):
    """First-spike IF layer of ``classes x per_class`` neurons; ``forward`` gives class scores."""

    def __init__(self, in_features: int, classes: int, per_class: int, T: int, threshold: float,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.classes, self.per_class, self.T = classes, per_class, T
        self.fc = SpikeLinear(in_features, classes * per_class, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.rand(self.fc.weight.shape, generator=generator))
        self.fc.weight.requires_grad_(False)
        self.register_buffer("threshold", torch.full((classes * per_class,), float(threshold)))
        self.register_buffer("regulation", torch.zeros(classes * per_class))

    def spike_times(self, x: Tensor) -> Tensor:
        """Input firing step ``[B, in]`` of each feature; ``T`` where it never fires."""
        t = torch.round((1.0 - x.clamp(0, 1)) * (self.T - 1))
        return torch.where(x > 0, t, torch.full_like(t, self.T))

    def encode(self, times: Tensor) -> Tensor:
        """One-hot-in-time input spikes ``[T, B, in]``."""
        steps = torch.arange(self.T, dtype=times.dtype)[:, None, None]
        return (times[None] == steps).to(times.dtype)

    def first_spikes(self, times: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
        """Firing step ``[B, n]`` of each neuron (``T`` if silent) and its potential then (or at the end)."""
        potential = self.fc(self.encode(times)).cumsum(0)  # [T, B, n]
        above = potential >= threshold
        t = torch.where(above.any(0), above.float().argmax(0), torch.full_like(potential[0], self.T))
        at = t.clamp(max=self.T - 1).long()[None]
        return t, potential.gather(0, at)[0]

    @staticmethod
    def rank(t: Tensor, margin: Tensor) -> Tensor:
        """Score that orders neurons by firing step, then by how far their potential is past threshold."""
        return margin - t * (2 * margin.abs().max() + 1)

    def forward(self, x: Tensor) -> Tensor:
        t, v = self.first_spikes(self.spike_times(x), self.threshold)
        return self.rank(t, v - self.threshold).view(-1, self.classes, self.per_class).amax(2)


@torch.no_grad()
def stdp_step(model: NCGClassifier, x: Tensor, y: Tensor, s: NCGSettings, lr: float) -> None:
    """One S2-STDP update of the group winners on a mini-batch (updates summed over its samples)."""
    c, m, T = model.classes, model.per_class, model.T
    t_in = model.spike_times(x)
    t, v = model.first_spikes(t_in, model.threshold)
    rank = model.rank(t, v - model.threshold)
    if m > 1:  # the sample's own group competes with its regulation compartment added
        training_threshold = model.threshold + model.regulation
        t_reg, v_reg = model.first_spikes(t_in, training_threshold)
        group = (torch.arange(c * m) // m)[None] == y[:, None]  # [B, n]: members of the sample's group
        rank = torch.where(group, model.rank(t_reg, v_reg - training_threshold), rank)
    winner = rank.view(-1, c, m).argmax(2) + torch.arange(c) * m  # [B, C] neuron ids
    t_win = t.gather(1, winner)
    fired = t_win < T
    latest = T - s.gap / c
    mean_t = (t_win * fired).sum(1) / fired.sum(1).clamp_min(1)
    base = torch.where(fired.any(1), mean_t, torch.full_like(mean_t, latest)).clamp(max=latest)
    own = torch.arange(c)[None] == y[:, None]
    target = torch.where(own, base[:, None] - s.gap * (c - 1) / c, base[:, None] + s.gap / c)
    error = (t_win - target) / T  # [B, C]
    w = model.fc.weight[winner]  # [B, C, in]
    spiked = (t_in < T)[:, None, :]
    causal = (t_in[:, None, :] <= t_win[:, :, None]) & spiked
    late = (t_in[:, None, :] > t_win[:, :, None]) & spiked
    dw = (causal * (s.a_plus * torch.exp(-s.beta * w))
          - late * (s.a_minus * torch.exp(-s.beta * (1.0 - w))))
    model.fc.weight.index_add_(0, winner.flatten(), (lr * error[:, :, None] * dw).flatten(0, 1))
    model.fc.weight.clamp_(0.0, 1.0)
    if m > 1:
        own_winner = winner[torch.arange(len(y)), y]
        step = s.regulation_lr * model.threshold[0]
        change = torch.where(group, -step / (m - 1), 0.0)
        change[torch.arange(len(y)), own_winner] = step
        model.regulation += change.sum(0)


def fit_ncg(data: Data, s: NCGSettings, writer=None) -> RunResult:
    """Train an NCG layer on raw-pixel features with S2-STDP; evaluate on the test set."""
    generator = torch.Generator().manual_seed(s.seed)
    active = (data.x_train > 0).float().sum(1).mean()
    model = NCGClassifier(data.x_train.shape[1], data.classes, s.per_class, s.T,
                          s.threshold_fraction * 0.5 * float(active), generator)
    lr, seconds = s.lr, 0.0
    for epoch in range(s.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data.y_train), generator=generator)
        for i in range(0, len(order), s.batch_size):
            idx = order[i : i + s.batch_size]
            stdp_step(model, data.x_train[idx], data.y_train[idx], s, lr)
        lr *= s.annealing
        seconds += time.perf_counter() - start
        if writer is not None:
            writer.add_scalar("test/accuracy", evaluate(model, data.x_test, data.y_test)[0], epoch)
            writer.add_scalar("train/accuracy", evaluate(model, data.x_train, data.y_train)[0], epoch)
    accuracy, sops, _ = evaluate(model, data.x_test, data.y_test)
    memory = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return RunResult(accuracy, seconds, memory, 32.0, sops)
