"""The featurizer's description and its mel math, importable without torch.

``FeatureConfig`` is the single description of the features a model sees; the model artifact stores
it whole, so inference can never compute other features than training did. This module needs only
NumPy, so the torch-free runtime (``hearai.runtime``) shares it with training; the transforms that
compute features live in ``hearai.features``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

from hearai.errors import ConfigError
from hearai.validation import at_most, choice, optional_real, positive_float, positive_int

WINDOW_FUNCTIONS = ("hamming", "hann", "blackman")

# Bounds on every size a FeatureConfig can ask for: a model file or a --feature-config from anywhere
# is checked against them before anything is allocated (docs/limits.md).
LIMITS = {"sample_rate": 192_000, "n_fft": 65_536, "hop_length": 65_536, "n_mels": 1_024, "n_mfcc": 1_024,
          "power": 4.0, "window_seconds": 60.0, "window_hop_seconds": 60.0}
MIN_SAMPLE_RATE = 1_000
MAX_WINDOW_VALUES = 4_000_000  # features in one model input window (bands x frames)


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter of the featurizer, serializable to JSON.

    The defaults describe the DCASE-2016-style front end: a Hamming-windowed STFT, 150 mel bands,
    log power in dB, cut into 2-s windows every 1 s. Other front ends are the same steps with other
    values: ``kind="lnmel"`` is the natural log of mel power plus ``amin``, shifted and divided
    (``(ln(mel + amin) + log_shift) / log_divisor``, as pretrained AudioSet networks expect);
    ``mel_scale="kaldi"`` draws the triangles on Kaldi's mel scale (1127 ln(1 + f/700)), linear in mels;
    ``preemphasis`` c filters y[n] = x[n+1] - c x[n] first (one sample shorter); ``bandwidth_hz``
    zeroes every frequency above it (the bandwidth a model's training audio had, applied to all
    audio it hears).
    """

    sample_rate: int = 16_000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 320
    window: Literal["hamming", "hann", "blackman"] = "hamming"
    periodic_window: bool = True
    center: bool = True
    pad_mode: Literal["constant", "reflect"] = "constant"
    power: float = 2.0
    n_mels: int = 150
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: Literal["slaney", "htk", "kaldi"] = "slaney"
    mel_norm: Literal["slaney"] | None = "slaney"
    kind: Literal["logmel", "mfcc", "lnmel"] = "logmel"
    ref: float = 1.0
    amin: float = 1e-10
    top_db: float | None = None
    n_mfcc: int = 40
    log_shift: float = 0.0
    log_divisor: float = 1.0
    preemphasis: float = 0.0
    bandwidth_hz: float | None = None
    window_seconds: float = 2.0
    window_hop_seconds: float = 1.0
    short_clip_pad: Literal["repeat", "zeros"] = "repeat"

    def __post_init__(self) -> None:
        positive_int(self, "sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc")
        positive_float(self, "power", "ref", "amin", "window_seconds", "window_hop_seconds", "log_divisor")
        optional_real(self, "fmin", "fmax", "top_db", "log_shift", "preemphasis", "bandwidth_hz")
        at_most(self, LIMITS)
        if self.sample_rate < MIN_SAMPLE_RATE:
            raise ConfigError(f"FeatureConfig.sample_rate must be at least {MIN_SAMPLE_RATE}, got {self.sample_rate}")
        choice(self, "window", WINDOW_FUNCTIONS)
        choice(self, "pad_mode", ("constant", "reflect"))
        choice(self, "mel_scale", ("slaney", "htk", "kaldi"))
        choice(self, "mel_norm", ("slaney", None))
        choice(self, "kind", ("logmel", "mfcc", "lnmel"))
        choice(self, "short_clip_pad", ("repeat", "zeros"))
        for flag in ("center", "periodic_window"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"FeatureConfig.{flag} must be true or false, got {getattr(self, flag)!r}")
        if not 0 <= self.preemphasis < 1:
            raise ConfigError(f"FeatureConfig.preemphasis must be in [0, 1), got {self.preemphasis}")
        if abs(self.log_shift) > 1e6 or self.log_divisor > 1e6:
            raise ConfigError("FeatureConfig.log_shift and log_divisor must be at most 1e6 in size")
        if self.bandwidth_hz is not None and not 0 < self.bandwidth_hz:
            raise ConfigError(f"FeatureConfig.bandwidth_hz must be positive or null, got {self.bandwidth_hz}")
        if self.mel_scale == "kaldi" and self.mel_norm is not None:
            raise ConfigError("FeatureConfig.mel_scale 'kaldi' has no area norm: set mel_norm to null")
        if self.kind == "lnmel" and self.top_db is not None:
            raise ConfigError("FeatureConfig.top_db applies to dB features (kind 'logmel' or 'mfcc'), not 'lnmel'")
        if self.win_length > self.n_fft:
            raise ConfigError(
                f"FeatureConfig.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})"
            )
        if not 0 <= self.fmin < self.max_frequency <= self.sample_rate / 2:
            raise ConfigError(
                f"FeatureConfig.fmin/fmax must satisfy 0 <= fmin < fmax <= sample_rate/2 "
                f"({self.sample_rate / 2:g}), got fmin={self.fmin}, fmax={self.fmax}"
            )
        if self.top_db is not None and self.top_db < 0:
            raise ConfigError(f"FeatureConfig.top_db must be >= 0 or null, got {self.top_db}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ConfigError(
                f"FeatureConfig.n_mfcc ({self.n_mfcc}) must not exceed n_mels ({self.n_mels})"
            )
        if self.window_frames * self.n_features > MAX_WINDOW_VALUES:
            raise ConfigError(f"FeatureConfig: a window of {self.window_frames} frames x {self.n_features} bands "
                              f"exceeds {MAX_WINDOW_VALUES:,} values")
        if self.window_frames < 1 or self.window_hop_frames < 1:
            raise ConfigError(
                "FeatureConfig.window_seconds and window_hop_seconds must each span at least one "
                f"hop of {self.hop_length} samples"
            )

    @property
    def max_frequency(self) -> float:
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    @property
    def n_features(self) -> int:
        """Rows of the feature matrix: mel bands for log-mel, coefficients for MFCC."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def window_frames(self) -> int:
        """Frames in one model input window (``window_seconds`` of audio)."""
        return int(round(self.window_seconds * self.frames_per_second))

    @property
    def window_hop_frames(self) -> int:
        return int(round(self.window_hop_seconds * self.frames_per_second))

    @property
    def emphasis_samples(self) -> int:
        """Samples the pre-emphasis filter takes off a signal (0 or 1)."""
        return 1 if self.preemphasis else 0

    @property
    def window_samples(self) -> int:
        """Samples a clip needs to fill one window; shorter clips are padded to this length."""
        if self.center:
            return self.window_frames * self.hop_length
        return max(self.window_frames * self.hop_length,
                   (self.window_frames - 1) * self.hop_length + self.n_fft + self.emphasis_samples)

    def n_frames(self, n_samples: int) -> int:
        """Frames the STFT produces for ``n_samples`` of audio."""
        n_samples -= self.emphasis_samples
        if self.center:
            return 1 + n_samples // self.hop_length
        return max(0, 1 + (n_samples - self.n_fft) // self.hop_length)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"FeatureConfig has no field(s) {', '.join(unknown)}")
        return cls(**data)


def hz_to_mel(frequencies: np.ndarray | float, *, scale: str) -> np.ndarray:
    """Hertz to mels on the Slaney (linear below 1 kHz, log above), HTK or Kaldi scale."""
    f = np.asarray(frequencies, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale == "kaldi":
        return 1127.0 * np.log(1.0 + f / 700.0)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(mels: np.ndarray | float, *, scale: str) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale == "kaldi":
        return 700.0 * (np.exp(m / 1127.0) - 1.0)
    linear = m * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, linear)


def mel_band_edges(config: FeatureConfig) -> np.ndarray:
    """The n_mels + 2 band edges in Hz, evenly spaced in mels; band k peaks at edge k + 1."""
    mel_edges = np.linspace(
        hz_to_mel(config.fmin, scale=config.mel_scale),
        hz_to_mel(config.max_frequency, scale=config.mel_scale),
        config.n_mels + 2,
    )
    return mel_to_hz(mel_edges, scale=config.mel_scale)


def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, 1 + n_fft // 2), float32.

    Band edges are evenly spaced in mels between fmin and fmax; with Slaney norm each triangle has
    unit area in Hz, so a band's response does not grow with its width. Kaldi's triangles are
    straight in mels rather than in Hz, and its Nyquist bin has no weight. Bins above
    ``bandwidth_hz`` get none either.
    """
    fft_freqs = np.linspace(0.0, config.sample_rate / 2, 1 + config.n_fft // 2)
    if config.mel_scale == "kaldi":
        edges, points = hz_to_mel(mel_band_edges(config), scale="kaldi"), hz_to_mel(fft_freqs, scale="kaldi")
    else:
        edges, points = mel_band_edges(config), fft_freqs
    widths = np.diff(edges)
    distance = edges[:, None] - points[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if config.mel_scale == "kaldi":
        weights[:, -1] = 0.0
    if config.mel_norm == "slaney":
        hz_edges = mel_band_edges(config)
        weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    if config.bandwidth_hz is not None:
        weights[:, fft_freqs > config.bandwidth_hz] = 0.0
    return weights.astype(np.float32)


def empty_mel_bands(config: FeatureConfig) -> int:
    """How many mel bands fall between FFT bins and so never see any energy."""
    return int((mel_filterbank(config).max(axis=1) == 0).sum())


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape (n_mfcc, n_mels): MFCC = basis @ log-mel."""
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)
