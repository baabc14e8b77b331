"""SpecAugment masks and the loudness of a log-mel window, on feature batches (batch, 1, bands, frames)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from hearai.augment.waveform import a_weighting_db
from hearai.featureconfig import FeatureConfig, mel_band_edges

_FLOOR_DB = -80.0


def mask_(x: torch.Tensor, *, axis: int, starts: torch.Tensor, widths: torch.Tensor, fill: torch.Tensor) -> None:
    """In place: for each example b, set ``widths[b]`` rows (axis -2) or columns (axis -1) from ``starts[b]``.

    ``fill`` is broadcast against one example, (bands, 1): the training data's band means, so a
    masked region looks like an average band rather than silence or a 0 dB wall.
    """
    size = x.shape[axis]
    positions = torch.arange(size, device=x.device)
    starts, widths = starts.to(x.device), widths.to(x.device)
    hit = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])  # (batch, size)
    hit = hit[:, None, :, None] if axis in (-2, 2) else hit[:, None, None, :]
    x.copy_(torch.where(hit, fill.to(x.dtype), x))


def spec_augment(x: torch.Tensor, *, generator: torch.Generator, freq_masks: int, freq_mask_bands: int,
                 time_masks: int, time_mask_frames: int, fill: torch.Tensor) -> torch.Tensor:
    """A masked copy of ``x``: each mask's width is uniform in [0, max] and its start uniform where it fits.

    The draws come from ``generator`` (on the CPU) whatever device ``x`` is on, so a run draws the same masks there.
    """
    out = x.clone()
    batch = len(x)
    for axis, count, widest in ((-2, freq_masks, freq_mask_bands), (-1, time_masks, time_mask_frames)):
        size = x.shape[axis]
        for _ in range(count):
            widths = torch.randint(0, min(widest, size) + 1, (batch,), generator=generator)
            starts = (torch.rand(batch, generator=generator) * (size - widths + 1)).long()
            mask_(out, axis=axis, starts=starts, widths=widths, fill=fill)
    return out


def logmel_loudness_db(x: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """(batch,) peak A-weighted frame power of log-mel dB windows (floor -80): mel-domain gain G."""
    weights = torch.as_tensor(_band_a_weights(config), dtype=x.dtype, device=x.device).view(-1, 1)
    frame_db = 10.0 * torch.log10((10.0 ** ((x.flatten(0, -3) + weights) / 10.0)).sum(-2).clamp_min(1e-12))
    return frame_db.amax(-1).clamp_min(_FLOOR_DB)


@functools.lru_cache(maxsize=8)
def _band_a_weights(config: FeatureConfig) -> np.ndarray:
    """A-weighting (dB) at each mel band's centre: computed once per config, not once per batch."""
    return a_weighting_db(mel_band_edges(config)[1:-1])
