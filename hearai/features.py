"""Waveform to log-mel (dB) or MFCC features, and fixed-size windows over a clip's features.

The transforms are ``torch.nn.Module``s (batched, CPU or GPU) computing what a ``FeatureConfig``
(``hearai.featureconfig``) describes; they agree with librosa's
``melspectrogram`` + ``power_to_db`` and ``mfcc`` called with the same parameters (tests hold them
to 0.01 dB). Where windows start is ``hearai.windows``'s to say.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from hearai import audio
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig, dct_matrix, mel_filterbank
from hearai.fsutil import atomic_path
from hearai.windows import pad_short_clip, window_starts

_WINDOWS = {
    "hamming": torch.hamming_window,
    "hann": torch.hann_window,
    "blackman": torch.blackman_window,
}


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


class MatmulStft(nn.Module):
    """Windowed STFT power of signals (batch, samples) as bin-major (bins, batch * frames), by matmuls.

    One Cooley-Tukey step: frame sample n = a + n1 * b with n1 dividing both n_fft and the hop, so
    each b's samples are plain slices of the signal laid out in hop-long rows (no gather, no
    transpose of frames). A length-n2 DFT over b is one real matmul; the twiddles fold into the
    per-k2 length-n1 DFT over a (one batched matmul), evaluated only up to bin n_fft / 2. For
    n_fft = 1024 that is ~135 k multiply-adds a frame in large GEMMs, which ONNX Runtime runs
    several times faster than its DFT operator. Exported graphs use it; torch keeps
    ``torch.fft.rfft``. Agrees with it to float rounding (tests). Each frame's mean goes around the
    transform (``LogMel._frame_power`` says why).
    """

    inner: torch.Tensor
    outer: torch.Tensor
    frame_window: torch.Tensor
    window_spectrum: torch.Tensor

    def __init__(self, n_fft: int, hop: int, window: torch.Tensor) -> None:
        super().__init__()
        n = n_fft
        n1 = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0 and hop % d == 0)
        n2, bins = n // n1, n1 // 2 + 1
        self.n, self.hop, self.n1, self.n2, self.bins = n, hop, n1, n2, bins
        angle = 2 * np.pi * np.arange(n2)[:, None] * np.arange(n2)[None, :] / n2  # (k2, b)
        inner = np.stack([np.cos(angle), -np.sin(angle)], axis=1)  # (k2, re/im, b)
        a, k1 = np.arange(n1)[None, None, :], np.arange(bins)[None, :, None]
        phase = 2 * np.pi * a * (np.arange(n2)[:, None, None] / n + k1 / n1)  # (k2, k1, a): twiddle x DFT
        re, im = np.cos(phase), -np.sin(phase)
        outer = np.concatenate([np.concatenate([re, -im], axis=2), np.concatenate([im, re], axis=2)], axis=1)
        self.register_buffer("inner", torch.from_numpy(inner.reshape(2 * n2, n2)).float(), persistent=False)
        self.register_buffer("outer", torch.from_numpy(outer).float(), persistent=False)  # (k2, 2 bins, 2 n1)
        self.register_buffer("frame_window", window.float().reshape(n2, n1, 1, 1), persistent=False)
        spectrum = np.fft.fft(window.numpy())[np.arange(bins)[None, :] * n2 + np.arange(n2)[:, None]]  # (k2, k1)
        self.register_buffer("window_spectrum", torch.from_numpy(np.concatenate(
            [spectrum.real, spectrum.imag], axis=1)[:, :, None]).float(), persistent=False)  # (k2, [re | im] k1, 1)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        batch, length = flat.shape
        frames = 1 + (length - self.n) // self.hop
        rows = -(-((frames - 1) * self.hop + self.n) // self.hop)
        table = nn.functional.pad(flat, (0, max(0, rows * self.hop - length)))[:, : rows * self.hop]
        by_column = table.reshape(batch, rows, self.hop).permute(2, 0, 1)  # (hop, batch, rows)
        starts = [divmod(self.n1 * b, self.hop) for b in range(self.n2)]
        x = torch.stack([by_column[col : col + self.n1, :, row : row + frames] for row, col in starts])
        means = nn.functional.avg_pool1d(flat[:, None], self.n, self.hop)[:, 0, :frames]  # (batch, frames)
        y = (self.inner @ ((x - means) * self.frame_window).reshape(self.n2, -1)).reshape(self.n2, 2 * self.n1, -1)
        z = self.outer @ y + self.window_spectrum * means.reshape(1, 1, -1)  # (k2, [re | im] x k1, batch * frames)
        power = z[:, : self.bins].square() + z[:, self.bins :].square()
        return power.permute(1, 0, 2).reshape(self.bins * self.n2, -1)[: self.n // 2 + 1]  # bin k1 * n2 + k2


class LogMel(nn.Module):
    """Waveforms (..., samples) to log-mel power in dB (..., n_mels, frames), or its natural log (``lnmel``).

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(...))`` with the same
    parameters; ``top_db`` clips each waveform of the batch relative to its own maximum.
    ``kind="lnmel"`` gives ``(ln(mel + amin) + log_shift) / log_divisor`` instead, after the
    pre-emphasis and the (symmetric, Kaldi-scale) filters the config names: EfficientAT's front end.
    ``matmul_dft`` computes the spectrum with ``MatmulStft`` (for ONNX export) instead of FFT.
    """

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self, config: FeatureConfig, *, matmul_dft: bool = False) -> None:
        super().__init__()
        self.config = config
        # Kept in float64: sidelobe cancellation 80+ dB down is sensitive to the window's precision.
        window = _WINDOWS[config.window](config.win_length, periodic=config.periodic_window, dtype=torch.float64)
        left = (config.n_fft - config.win_length) // 2
        padded = nn.functional.pad(window, (left, config.n_fft - config.win_length - left))
        self.register_buffer("window", padded, persistent=False)
        self.matmul_stft = MatmulStft(config.n_fft, config.hop_length, padded) if matmul_dft else None
        basis = mel_filterbank(config)
        self.register_buffer("mel_basis", torch.from_numpy(basis), persistent=False)
        self._blocks = _band_blocks(basis)
        # Per (dtype, device): the window and the filterbank blocks, cast once.
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]] = {}

    def power_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The windowed STFT's power (|X|^power), shape (..., 1 + n_fft // 2, frames)."""
        power = self._frame_power(self._emphasized(waveform.reshape(-1, waveform.shape[-1])))
        return power.transpose(1, 2).reshape(*waveform.shape[:-1], *power.shape[:0:-1])

    def _emphasized(self, flat: torch.Tensor) -> torch.Tensor:
        """y[n] = x[n+1] - c x[n] (``preemphasis`` c; one sample shorter), or the signal as it is."""
        c = self.config.preemphasis
        return flat[:, 1:] - c * flat[:, :-1] if c else flat

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel-filtered power (or magnitude, for power=1) spectrogram, before the log."""
        flat = self._emphasized(waveform.reshape(-1, waveform.shape[-1]))
        if self.matmul_stft is not None:
            by_bin = self.matmul_stft(self._padded(flat).float())
            by_bin = by_bin if self.config.power == 2.0 else by_bin.pow(self.config.power / 2.0)
            mel = self._filter_by_bin(by_bin.to(flat.dtype), flat.shape[0])
        else:
            mel = self._apply_filterbank(self._frame_power(flat))
        return mel.reshape(*waveform.shape[:-1], *mel.shape[-2:])

    def _frame_power(self, flat: torch.Tensor) -> torch.Tensor:
        """(batch, samples) to (batch, frames, bins) power.

        Each frame's mean m goes around the transform: FFT(w x) = FFT(w (x - m)) + m FFT(w), the same
        spectrum, but a large offset never passes through the FFT, whose rounding would otherwise
        fill every bin with noise at about 1e-7 of it (then two FFT implementations, torch's and the
        exported graph's, would disagree on a constant input).
        """
        frames = self._frames(flat)
        means = frames.mean(dim=-1, keepdim=True)
        window, _, spectrum_of_window = self._cast(flat)
        spectrum = torch.fft.rfft((frames - means) * window) + means * spectrum_of_window
        power = (spectrum * spectrum.conj()).real
        return power if self.config.power == 2.0 else power.pow(self.config.power / 2.0)

    def _frames(self, flat: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self._padded(flat).unfold(-1, c.n_fft, c.hop_length)

    def _padded(self, flat: torch.Tensor) -> torch.Tensor:
        """Centre padding (when ``center``), and the check that one frame fits."""
        c = self.config
        if c.center:
            half = c.n_fft // 2
            flat = nn.functional.pad(flat.unsqueeze(1), (half, half), mode=c.pad_mode).squeeze(1)
        if flat.shape[-1] < c.n_fft:
            raise ConfigError(
                f"a waveform of {flat.shape[-1]} samples is shorter than n_fft ({c.n_fft}) "
                "with center=False"
            )
        return flat

    def _cast(self, like: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """The window, the filterbank blocks and the window's own spectrum (computed in float64), cast to
        ``like``'s type and device once."""
        key = (like.dtype, like.device)
        if key not in self._cache:
            basis = self.mel_basis.to(device=like.device, dtype=like.dtype)
            blocks = [basis[b0:b1, k0:k1].contiguous() for b0, b1, k0, k1 in self._blocks]
            complex_type = torch.complex128 if like.dtype == torch.float64 else torch.complex64
            spectrum = torch.fft.rfft(self.window).to(device=like.device, dtype=complex_type)
            self._cache[key] = (self.window.to(device=like.device, dtype=like.dtype), blocks, spectrum)
        return self._cache[key]

    def _apply_filterbank(self, power: torch.Tensor) -> torch.Tensor:
        """(batch, frames, bins) power to (batch, n_mels, frames) mel energies."""
        batch, frames, bins = power.shape
        # Bins as rows: each block reads a contiguous row range, so no block copies its input.
        return self._filter_by_bin(power.reshape(batch * frames, bins).T.contiguous(), batch)

    def _filter_by_bin(self, by_bin: torch.Tensor, batch: int) -> torch.Tensor:
        """(bins, batch * frames) power to (batch, n_mels, frames) mel energies."""
        blocks = self._cast(by_bin)[1]
        mel = torch.cat([w @ by_bin[k0:k1] for w, (_, _, k0, k1) in zip(blocks, self._blocks)])
        return mel.reshape(mel.shape[0], batch, -1).transpose(0, 1).contiguous()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.kind == "lnmel":
            return (torch.log(self.power_mel(waveform) + c.amin) + c.log_shift) / c.log_divisor
        db = 10.0 * torch.log10(torch.clamp(self.power_mel(waveform), min=c.amin))
        db = db - 10.0 * math.log10(max(c.amin, c.ref))
        if c.top_db is not None:
            peak = db.amax(dim=(-2, -1), keepdim=True)
            db = torch.maximum(db, peak - c.top_db)
        return db


class MFCC(nn.Module):
    """Waveforms (..., samples) to MFCCs (..., n_mfcc, frames): orthonormal DCT-II of log-mel dB."""

    dct: torch.Tensor

    def __init__(self, config: FeatureConfig, *, matmul_dft: bool = False) -> None:
        super().__init__()
        self.config = config
        self.logmel = LogMel(config, matmul_dft=matmul_dft)
        self.register_buffer(
            "dct", torch.from_numpy(dct_matrix(config.n_mfcc, config.n_mels)), persistent=False
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        logmel = self.logmel(waveform)
        return torch.matmul(self.dct.to(logmel.dtype), logmel)


def build_featurizer(config: FeatureConfig, *, matmul_dft: bool = False) -> nn.Module:
    """The transform ``config.kind`` names: ``LogMel`` or ``MFCC`` (``matmul_dft``: see ``MatmulStft``)."""
    return (MFCC if config.kind == "mfcc" else LogMel)(config, matmul_dft=matmul_dft)


def build_crop_featurizer(config: FeatureConfig, *, matmul_dft: bool = False) -> nn.Module:
    """The featurizer for window crops (``hearai.windows``): uncentred, since a crop carries its own context.

    A crop featurized by it gives exactly the frames the whole clip's features hold for its window.
    """
    return build_featurizer(replace(config, center=False), matmul_dft=matmul_dft).eval()


def decibels(features: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Log-mel features as mel power in dB (``lnmel``'s natural log undone), for rules stated in dB."""
    if config.kind == "logmel":
        return features
    if config.kind == "lnmel":
        return (features * config.log_divisor - config.log_shift) * (10.0 / math.log(10.0))
    raise ConfigError(f"{config.kind} features have no per-band level in dB")


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


def _featurize_in_worker(path: str | Path) -> np.ndarray:
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
