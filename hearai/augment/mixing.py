"""Mixing two examples into one with a soft label: mixup and between-class (BC) learning.

BC learning (Tokozume, Ushiku and Harada, ICLR 2018) mixes clips of different classes with a
random ratio r, but weights them by their loudness so that r is the share the listener hears:
p = 1 / (1 + 10^((G1 - G2) / 20) * (1 - r) / r), mix = (p x1 + (1 - p) x2) / sqrt(p^2 + (1 - p)^2),
label r for the first class and 1 - r for the second, trained with KL divergence. The log-mel
variant applies the same weights to the two windows' mel power (what the mixed waveform's log-mel
is, cross terms aside) and returns to dB.
"""

from __future__ import annotations

import torch


def bc_weight(ratio: torch.Tensor, gain1: torch.Tensor, gain2: torch.Tensor) -> torch.Tensor:
    """The amplitude weight p of the first example, from the label ratio r and the gains in dB."""
    ratio = ratio.clamp(1e-4, 1 - 1e-4)
    return 1.0 / (1.0 + 10.0 ** ((gain1 - gain2) / 20.0) * (1.0 - ratio) / ratio)


def mix_waveforms(w1: torch.Tensor, w2: torch.Tensor, ratio: torch.Tensor, gain1: torch.Tensor,
                  gain2: torch.Tensor) -> torch.Tensor:
    """BC mix of (batch, samples) waveforms, energy-normalized."""
    p = bc_weight(ratio, gain1, gain2)[:, None]
    return (p * w1 + (1 - p) * w2) / torch.sqrt(p.square() + (1 - p).square())


def mix_logmel(x1: torch.Tensor, x2: torch.Tensor, ratio: torch.Tensor, gain1: torch.Tensor, gain2: torch.Tensor,
               *, amin: float) -> torch.Tensor:
    """BC mix of log-mel dB windows (batch, ...): the weighted sum of their mel power, back in dB."""
    p = bc_weight(ratio, gain1, gain2).view(-1, *([1] * (x1.dim() - 1)))
    w1, w2 = p.square(), (1 - p).square()
    power = (w1 * 10.0 ** (x1 / 10.0) + w2 * 10.0 ** (x2 / 10.0)) / (w1 + w2)
    return 10.0 * torch.log10(power.clamp_min(amin))


def mixup(x1: torch.Tensor, x2: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """ratio * x1 + (1 - ratio) * x2, one ratio per example."""
    r = ratio.view(-1, *([1] * (x1.dim() - 1)))
    return r * x1 + (1 - r) * x2


def soft_targets(y1: torch.Tensor, y2: torch.Tensor, ratio: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(batch, n_classes) label distributions: ``ratio`` on y1's class, the rest on y2's."""
    one_hot = torch.nn.functional.one_hot
    r = ratio[:, None].float()
    return r * one_hot(y1, n_classes).float() + (1 - r) * one_hot(y2, n_classes).float()
