"""The featurizer, step by step, on a signal whose answer is known: two pure tones.

A reader sees the waveform, its Hamming-windowed FFT spectrogram and its log-mel spectrogram, and
the two tones come back as two bright bands at the right frequencies; for an MFCC config, the
coefficients the model would see follow. The band-count comparison
shows why 150 mel bands suit a 1024-point FFT and 1000 do not: most of those bands fall between
FFT bins and stay empty.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from hearai.featureconfig import FeatureConfig, empty_mel_bands
from hearai.features import MFCC, LogMel

DEFAULT_TONES = (440.0, 2500.0)
BAND_COUNTS = (10, 150, 1000)


@dataclass(frozen=True)
class Walkthrough:
    """Every intermediate the figures draw, for one waveform."""

    waveform: np.ndarray
    config: FeatureConfig
    spectrogram_db: np.ndarray  # (bins, frames), power in dB
    logmel_db: np.ndarray  # (n_mels, frames)
    peaks_hz: list[float]
    mfcc: np.ndarray | None = None  # (n_mfcc, frames), when the config's kind is "mfcc"

    @property
    def bin_hz(self) -> float:
        return self.config.sample_rate / self.config.n_fft


def two_tones(*, frequencies: tuple[float, ...] = DEFAULT_TONES, seconds: float = 1.0,
              sample_rate: int = 16_000) -> np.ndarray:
    """The base case: a mono clip summing equal-amplitude sines (peak 0.9)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    wave = sum(np.sin(2 * np.pi * f * t) for f in frequencies)
    return (0.9 * wave / np.abs(wave).max()).astype(np.float32)


def walk(waveform: np.ndarray, config: FeatureConfig, *, n_peaks: int = 2) -> Walkthrough:
    """Featurize ``waveform`` and find its ``n_peaks`` strongest spectral peaks."""
    featurizer = LogMel(config)
    with torch.inference_mode():
        wave = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
        power = featurizer.power_spectrogram(wave).double().numpy()
        logmel = featurizer(wave).numpy()
        mfcc = MFCC(config)(wave).numpy() if config.kind == "mfcc" else None
    return Walkthrough(
        waveform=waveform,
        config=config,
        spectrogram_db=10 * np.log10(np.maximum(power, config.amin)),
        logmel_db=logmel,
        peaks_hz=spectral_peaks(power.mean(axis=1), config, n_peaks),
        mfcc=mfcc,
    )


def spectral_peaks(mean_power: np.ndarray, config: FeatureConfig, count: int) -> list[float]:
    """Frequencies of the ``count`` strongest local maxima of a power spectrum, ascending.

    Each peak is refined by a parabola through the log power of its bin and neighbours, which
    puts a pure tone well inside one bin of its true frequency.
    """
    log_power = np.log(np.maximum(mean_power, 1e-30))
    inner = np.arange(1, len(log_power) - 1)
    is_peak = (log_power[inner] > log_power[inner - 1]) & (log_power[inner] >= log_power[inner + 1])
    candidates = inner[is_peak]
    strongest = candidates[np.argsort(log_power[candidates])[::-1][:count]]
    bin_hz = config.sample_rate / config.n_fft
    peaks = []
    for k in strongest:
        left, mid, right = log_power[k - 1 : k + 2]
        curvature = left - 2 * mid + right
        offset = 0.0 if curvature == 0 else 0.5 * (left - right) / curvature
        peaks.append(float((k + offset) * bin_hz))
    return sorted(peaks)


def band_counts(waveform: np.ndarray, config: FeatureConfig,
                counts: tuple[int, ...] = BAND_COUNTS) -> list[tuple[int, int, np.ndarray]]:
    """(n_mels, empty bands, log-mel) for each band count, all else equal."""
    rows = []
    for n_mels in counts:
        variant = replace(config, n_mels=n_mels, kind="logmel")
        with torch.inference_mode():
            logmel = LogMel(variant)(torch.from_numpy(np.ascontiguousarray(waveform))).numpy()
        rows.append((n_mels, empty_mel_bands(variant), logmel))
    return rows
