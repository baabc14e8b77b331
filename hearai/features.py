"""Waveform to log-mel (dB) or MFCC features, and fixed-size windows over a clip's features.

``FeatureConfig`` is the single description of the features a model sees; the model artifact stores
it whole, so inference can never compute other features than training did. The transforms are
``torch.nn.Module``s (batched, CPU or GPU) that agree with librosa's ``melspectrogram`` +
``power_to_db`` and ``mfcc`` called with the same parameters (tests hold them to 0.01 dB).
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from hearai import audio
from hearai.errors import ConfigError
from hearai.fsutil import atomic_path
from hearai.validation import choice, positive_float, positive_int

_WINDOWS = {
    "hamming": torch.hamming_window,
    "hann": torch.hann_window,
    "blackman": torch.blackman_window,
}


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter of the featurizer, serializable to JSON.

    The defaults describe the DCASE-2016-style front end: a Hamming-windowed STFT, 150 mel bands,
    log power in dB, cut into 2-s windows every 1 s.
    """

    sample_rate: int = 16_000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 320
    window: Literal["hamming", "hann", "blackman"] = "hamming"
    center: bool = True
    pad_mode: Literal["constant", "reflect"] = "constant"
    power: float = 2.0
    n_mels: int = 150
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney"] | None = "slaney"
    kind: Literal["logmel", "mfcc"] = "logmel"
    ref: float = 1.0
    amin: float = 1e-10
    top_db: float | None = None
    n_mfcc: int = 40
    window_seconds: float = 2.0
    window_hop_seconds: float = 1.0
    short_clip_pad: Literal["repeat", "zeros"] = "repeat"

    def __post_init__(self) -> None:
        positive_int(self, "sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc")
        positive_float(self, "power", "ref", "amin", "window_seconds", "window_hop_seconds")
        choice(self, "window", tuple(_WINDOWS))
        choice(self, "pad_mode", ("constant", "reflect"))
        choice(self, "mel_scale", ("slaney", "htk"))
        choice(self, "mel_norm", ("slaney", None))
        choice(self, "kind", ("logmel", "mfcc"))
        choice(self, "short_clip_pad", ("repeat", "zeros"))
        if not isinstance(self.center, bool):
            raise ConfigError(f"FeatureConfig.center must be true or false, got {self.center!r}")
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
    def window_samples(self) -> int:
        """Samples a clip needs to fill one window; shorter clips are padded to this length."""
        return self.window_frames * self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Frames the STFT produces for ``n_samples`` of audio."""
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


def hz_to_mel(frequencies: np.ndarray, *, scale: str) -> np.ndarray:
    """Hertz to mels on the Slaney (linear below 1 kHz, log above) or HTK scale."""
    f = np.asarray(frequencies, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(mels: np.ndarray, *, scale: str) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
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
    unit area in Hz, so a band's response does not grow with its width.
    """
    fft_freqs = np.linspace(0.0, config.sample_rate / 2, 1 + config.n_fft // 2)
    hz_edges = mel_band_edges(config)
    widths = np.diff(hz_edges)
    distance = hz_edges[:, None] - fft_freqs[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if config.mel_norm == "slaney":
        weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
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


_BANDS_PER_BLOCK = 16


def _band_blocks(basis: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split the filterbank into groups of adjacent bands with the FFT bins each group touches.

    A mel filter spans only a few bins, so a dense (n_mels x bins) product wastes ~90 % of its
    multiply-adds on zeros. One small dense product per group of 16 bands does ~10x less work,
    and stays a plain matmul on every device. Returns (first band, end band, first bin, end bin).
    """
    blocks = []
    for b0 in range(0, len(basis), _BANDS_PER_BLOCK):
        b1 = min(b0 + _BANDS_PER_BLOCK, len(basis))
        used = np.flatnonzero(basis[b0:b1].any(axis=0))
        k0, k1 = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        blocks.append((b0, b1, k0, k1))
    return blocks


class LogMel(nn.Module):
    """Waveforms (..., samples) to log-mel power in dB (..., n_mels, frames).

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(...))`` with the same
    parameters; ``top_db`` clips each waveform of the batch relative to its own maximum.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        # Kept in float64: sidelobe cancellation 80+ dB down is sensitive to the window's precision.
        window = _WINDOWS[config.window](config.win_length, periodic=True, dtype=torch.float64)
        left = (config.n_fft - config.win_length) // 2
        padded = nn.functional.pad(window, (left, config.n_fft - config.win_length - left))
        self.register_buffer("window", padded, persistent=False)
        basis = mel_filterbank(config)
        self.register_buffer("mel_basis", torch.from_numpy(basis), persistent=False)
        self._blocks = _band_blocks(basis)
        # Per (dtype, device): the window and the filterbank blocks, cast once.
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, list[torch.Tensor]]] = {}

    def power_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The windowed STFT's power (|X|^power), shape (..., 1 + n_fft // 2, frames)."""
        power = self._frame_power(waveform.reshape(-1, waveform.shape[-1]))
        return power.transpose(1, 2).reshape(*waveform.shape[:-1], *power.shape[:0:-1])

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel-filtered power (or magnitude, for power=1) spectrogram, before the log."""
        mel = self._apply_filterbank(self._frame_power(waveform.reshape(-1, waveform.shape[-1])))
        return mel.reshape(*waveform.shape[:-1], *mel.shape[-2:])

    def _frame_power(self, flat: torch.Tensor) -> torch.Tensor:
        """(batch, samples) to (batch, frames, bins) power."""
        spectrum = torch.fft.rfft(self._frames(flat) * self._cast(flat)[0])
        power = (spectrum * spectrum.conj()).real
        return power if self.config.power == 2.0 else power.pow(self.config.power / 2.0)

    def _frames(self, flat: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.center:
            half = c.n_fft // 2
            flat = nn.functional.pad(flat.unsqueeze(1), (half, half), mode=c.pad_mode).squeeze(1)
        if flat.shape[-1] < c.n_fft:
            raise ConfigError(
                f"a waveform of {flat.shape[-1]} samples is shorter than n_fft ({c.n_fft}) "
                "with center=False"
            )
        return flat.unfold(-1, c.n_fft, c.hop_length)

    def _cast(self, like: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            basis = self.mel_basis.to(device=like.device, dtype=like.dtype)
            blocks = [basis[b0:b1, k0:k1].contiguous() for b0, b1, k0, k1 in self._blocks]
            self._cache[key] = (self.window.to(device=like.device, dtype=like.dtype), blocks)
        return self._cache[key]

    def _apply_filterbank(self, power: torch.Tensor) -> torch.Tensor:
        """(batch, frames, bins) power to (batch, n_mels, frames) mel energies."""
        batch, frames, bins = power.shape
        # Bins as rows: each block reads a contiguous row range, so no block copies its input.
        by_bin = power.reshape(batch * frames, bins).T.contiguous()
        blocks = self._cast(power)[1]
        mel = torch.cat([w @ by_bin[k0:k1] for w, (_, _, k0, k1) in zip(blocks, self._blocks)])
        return mel.reshape(-1, batch, frames).transpose(0, 1).contiguous()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        db = 10.0 * torch.log10(torch.clamp(self.power_mel(waveform), min=c.amin))
        db = db - 10.0 * math.log10(max(c.amin, c.ref))
        if c.top_db is not None:
            peak = db.amax(dim=(-2, -1), keepdim=True)
            db = torch.maximum(db, peak - c.top_db)
        return db


class MFCC(nn.Module):
    """Waveforms (..., samples) to MFCCs (..., n_mfcc, frames): orthonormal DCT-II of log-mel dB."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.logmel = LogMel(config)
        self.register_buffer(
            "dct", torch.from_numpy(dct_matrix(config.n_mfcc, config.n_mels)), persistent=False
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        logmel = self.logmel(waveform)
        return torch.matmul(self.dct.to(logmel.dtype), logmel)


def build_featurizer(config: FeatureConfig) -> nn.Module:
    """The transform ``config.kind`` names: ``LogMel`` or ``MFCC``."""
    return MFCC(config) if config.kind == "mfcc" else LogMel(config)


def pad_short_clip(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Pad a clip shorter than one window up to exactly one window (``config.window_samples``).

    ``short_clip_pad="repeat"`` tiles the clip end to end (a 0.3-s bark becomes a train of barks,
    so the window is filled with the sound, not silence); ``"zeros"`` appends digital silence.
    Clips of at least one window are returned unchanged.
    """
    need = config.window_samples
    if len(waveform) >= need:
        return waveform
    if len(waveform) == 0:
        raise ConfigError("cannot pad an empty waveform")
    if config.short_clip_pad == "repeat":
        return np.resize(waveform, need).astype(np.float32, copy=False)
    return np.pad(waveform, (0, need - len(waveform))).astype(np.float32, copy=False)


def window_starts(n_frames: int, config: FeatureConfig) -> list[int]:
    """First frame of each window over ``n_frames`` of features.

    Windows start every ``window_hop_frames``. When more than half a hop of the clip would be left
    past the last window, one more window aligned with the clip's end covers it, so no sound at
    the end of a clip is ignored. A clip must hold at least one window (see ``pad_short_clip``).
    """
    size, hop = config.window_frames, config.window_hop_frames
    if n_frames < size:
        raise ConfigError(f"{n_frames} frames hold no {size}-frame window; pad the clip first")
    starts = list(range(0, n_frames - size + 1, hop))
    if n_frames - (starts[-1] + size) > hop // 2:
        starts.append(n_frames - size)
    return starts


def cut_windows(features: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Cut a clip's features (n_features, frames) into windows (n_windows, n_features, window_frames)."""
    starts = window_starts(features.shape[-1], config)
    return torch.stack([features[..., s : s + config.window_frames] for s in starts])


class FeatureExtractor:
    """A ``FeatureConfig`` made runnable: waveforms or files in, clip features and windows out."""

    def __init__(self, config: FeatureConfig, *, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.transform = build_featurizer(config).to(self.device).eval()

    def clip(self, waveform: np.ndarray) -> torch.Tensor:
        """One clip's features (n_features, frames) on the CPU, short clips padded first."""
        wave = pad_short_clip(np.asarray(waveform, dtype=np.float32), self.config)
        with torch.inference_mode():
            return self.transform(torch.from_numpy(wave).to(self.device)).cpu()

    def windows(self, waveform: np.ndarray) -> torch.Tensor:
        """One clip as model inputs: (n_windows, n_features, window_frames)."""
        return cut_windows(self.clip(waveform), self.config)

    def batch(self, waveforms: list[np.ndarray]) -> list[torch.Tensor]:
        """Features of several clips; clips of equal length share one batched transform."""
        padded = [pad_short_clip(np.asarray(w, dtype=np.float32), self.config) for w in waveforms]
        out: list[torch.Tensor] = [torch.empty(0)] * len(padded)
        by_length: dict[int, list[int]] = {}
        for index, wave in enumerate(padded):
            by_length.setdefault(len(wave), []).append(index)
        with torch.inference_mode():
            for indices in by_length.values():
                stacked = torch.from_numpy(np.stack([padded[i] for i in indices])).to(self.device)
                for i, row in zip(indices, self.transform(stacked).cpu()):
                    out[i] = row
        return out

    def files(self, paths: Iterable[str | Path], *, workers: int = 0, progress: bool = False) -> Iterator[torch.Tensor]:
        """Yield each file's clip features, in input order.

        ``workers=0`` decodes and featurizes here, one file at a time (the fastest on one core).
        ``workers=N`` spreads files over N processes with one torch thread each: the decode and
        transform glue holds the GIL often enough that threads do not scale, processes do
        (``bench/featurize.py`` measures both). A bad file raises its ``AudioError`` here.
        """
        paths = [Path(p) for p in paths]
        with tqdm(total=len(paths), desc="featurizing", unit="clip", disable=not progress) as bar:
            if workers <= 0 or len(paths) < 2 * _FILES_PER_TASK:
                for path in paths:
                    yield self.clip(audio.load(path, sample_rate=self.config.sample_rate))
                    bar.update()
                return
            context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has threads
            with context.Pool(workers, initializer=_start_worker, initargs=(self.config.to_dict(),)) as pool:
                for features in pool.imap(_featurize_in_worker, paths, chunksize=_FILES_PER_TASK):
                    yield torch.from_numpy(features)
                    bar.update()


_FILES_PER_TASK = 8
_worker_extractor: FeatureExtractor | None = None


def _start_worker(config: dict[str, Any]) -> None:
    global _worker_extractor
    torch.set_num_threads(1)
    _worker_extractor = FeatureExtractor(FeatureConfig.from_dict(config))


def _featurize_in_worker(path: Path) -> np.ndarray:
    assert _worker_extractor is not None, "worker used before _start_worker"
    return _worker_extractor.clip(audio.load(path, sample_rate=_worker_extractor.config.sample_rate)).numpy()


def write_feature_file(
    paths: list[Path], config: FeatureConfig, out: str | Path, *, workers: int = 0, progress: bool = True,
) -> tuple[Path, int]:
    """Featurize files into one safetensors file of model-ready windows.

    Tensors: ``windows`` (n, n_features, window_frames) float32 and ``clip_index`` (n,) int64
    pointing into the ``files`` list stored, with the ``feature_config``, as JSON metadata.
    Returns the path and the number of windows.
    """
    extractor = FeatureExtractor(config)
    windows, owners = [], []
    for index, features in enumerate(extractor.files(paths, workers=workers, progress=progress)):
        cut = cut_windows(features, config)
        windows.append(cut)
        owners.append(torch.full((len(cut),), index, dtype=torch.int64))
    tensors = {"windows": torch.cat(windows).contiguous(), "clip_index": torch.cat(owners)}
    metadata = {"feature_config": json.dumps(config.to_dict()), "files": json.dumps([str(p) for p in paths])}
    target = Path(out)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target, len(tensors["windows"])
