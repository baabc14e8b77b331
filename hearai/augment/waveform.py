"""Waveform augmentation: time stretch, pitch shift, gain, coloured noise, and A-weighted loudness.

No library fits here: audiomentations does pitch shift and time stretch through librosa (numba,
scipy; tens of milliseconds per clip) and torch-audiomentations needs torchaudio, which has no CPU
build that imports beside our torch. The phase vocoder below is the textbook algorithm on
``torch.stft``; resampling is soxr's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from hearai.augment.config import AugmentConfig
from hearai.data.synth import coloured_noise

_VOCODER_FFT = 512
_VOCODER_HOP = 128
_GAIN_FFT = 1024
_GAIN_FLOOR_DB = -80.0


def a_weighting_db(frequencies: np.ndarray) -> np.ndarray:
    """IEC 61672 A-weighting in dB (0 dB at 1 kHz); very low frequencies get a large cut."""
    f2 = np.maximum(np.asarray(frequencies, dtype=np.float64), 1e-3) ** 2
    ra = 12194.0**2 * f2**2 / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20.0 * np.log10(ra) + 2.0


def loudness_db(waveforms: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(batch,) peak A-weighted frame power in dB (floor -80): the gain G of between-class mixing."""
    window = torch.hann_window(_GAIN_FFT, dtype=waveforms.dtype, device=waveforms.device)
    if waveforms.shape[-1] < _GAIN_FFT:
        waveforms = torch.nn.functional.pad(waveforms, (0, _GAIN_FFT - waveforms.shape[-1]))
    frames = waveforms.unfold(-1, _GAIN_FFT, _GAIN_FFT // 2) * window
    power = torch.fft.rfft(frames).abs().square()
    weights = 10.0 ** (a_weighting_db(np.fft.rfftfreq(_GAIN_FFT, 1.0 / sample_rate)) / 10.0)
    # Parseval on a one-sided spectrum: mean power of the windowed frame, A-weighted
    weighted = (power * torch.as_tensor(weights, dtype=power.dtype)).sum(-1) * 2 / (_GAIN_FFT * window.square().sum())
    return (10.0 * torch.log10(weighted.clamp_min(1e-12))).amax(-1).clamp_min(_GAIN_FLOOR_DB)


def time_stretch(waveform: torch.Tensor, rate: float) -> torch.Tensor:
    """Play ``rate`` times faster at the same pitch (phase vocoder); the output has len/rate samples."""
    window = torch.hann_window(_VOCODER_FFT, dtype=waveform.dtype)
    spec = torch.stft(waveform, _VOCODER_FFT, _VOCODER_HOP, window=window, return_complex=True)
    steps = torch.arange(0, spec.shape[-1], rate, dtype=torch.float64)
    spec = torch.nn.functional.pad(spec, (0, 2))
    left = steps.floor().long()
    alpha = (steps - left).to(waveform.dtype)
    magnitudes, angles = spec.abs(), spec.angle()
    magnitude = (1 - alpha) * magnitudes[:, left] + alpha * magnitudes[:, left + 1]
    expected = torch.linspace(0, math.pi * _VOCODER_HOP, spec.shape[0], dtype=waveform.dtype)[:, None]
    delta = angles[:, left + 1] - angles[:, left] - expected
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
    phase = torch.cat([angles[:, :1], (delta + expected)[:, :-1]], dim=1).cumsum(dim=1)
    length = int(round(waveform.shape[-1] / rate))
    return torch.istft(torch.polar(magnitude, phase), _VOCODER_FFT, _VOCODER_HOP, window=window, length=length)


def pitch_shift(waveform: torch.Tensor, semitones: float, sample_rate: int) -> torch.Tensor:
    """Shift pitch by ``semitones`` at the same duration."""
    return stretch_and_shift(waveform, 1.0, semitones, sample_rate)


def stretch_and_shift(waveform: torch.Tensor, rate: float, semitones: float, sample_rate: int) -> torch.Tensor:
    """Time stretch by ``rate`` and pitch shift by ``semitones`` in one vocoder pass, then resample.

    Output length is len/rate. A pitch factor f is a stretch by rate/f (the audio gets f times
    longer) played back f times faster (resampled from f * rate to rate), which restores the length.
    """
    factor = 2.0 ** (semitones / 12.0)
    length = int(round(waveform.shape[-1] / rate))
    stretched = time_stretch(waveform, rate / factor).numpy()
    shifted = soxr.resample(stretched, sample_rate * factor, sample_rate, quality="MQ") if factor != 1 else stretched
    return fit_length(torch.from_numpy(np.ascontiguousarray(shifted)), length)


def fit_length(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """Cut or zero-pad the end to exactly ``length`` samples."""
    if waveform.shape[-1] >= length:
        return waveform[..., :length]
    return torch.nn.functional.pad(waveform, (0, length - waveform.shape[-1]))


def add_noise(waveform: torch.Tensor, snr_db: float, colour: str, rng: np.random.Generator,
              sample_rate: int) -> torch.Tensor:
    """Add white, pink or brown noise ``snr_db`` below the waveform's RMS."""
    rms = float(waveform.square().mean().sqrt())
    noise = coloured_noise(rng, waveform.shape[-1], sample_rate, colour) * rms * 10 ** (-snr_db / 20)
    return waveform + torch.from_numpy(noise.astype(np.float32))


@dataclass(frozen=True)
class WaveformDraw:
    """The random choices for one crop: drawn first, so the caller knows how much audio to cut."""

    rate: float
    semitones: float | None
    gain_db: float
    noise_snr_db: float | None
    noise_colour: str
    noise_seed: int

    def source_length(self, length: int) -> int:
        """Source samples that stretch back to ``length``."""
        return int(round(length * self.rate))


def draw(config: AugmentConfig, rng: np.random.Generator) -> WaveformDraw:
    c = config
    rate = float(rng.uniform(1 - c.stretch, 1 + c.stretch)) if rng.random() < c.stretch_probability else 1.0
    pitching = rng.random() < c.pitch_probability
    semitones = float(rng.uniform(-c.pitch_semitones, c.pitch_semitones)) if pitching else None
    gain = float(rng.uniform(-c.gain_db, c.gain_db))
    snr = float(rng.uniform(*c.noise_snr_db)) if rng.random() < c.noise_probability else None
    return WaveformDraw(rate=rate, semitones=semitones, gain_db=gain, noise_snr_db=snr,
                        noise_colour=str(rng.choice(["white", "pink", "brown"])), noise_seed=int(rng.integers(2**62)))


def apply(crop: torch.Tensor, choice: WaveformDraw, *, length: int, sample_rate: int) -> torch.Tensor:
    """Stretch ``crop`` (``choice.source_length(length)`` samples) to ``length``, then pitch, gain, noise."""
    if choice.rate != 1.0 or choice.semitones is not None:
        crop = stretch_and_shift(crop, choice.rate, choice.semitones or 0.0, sample_rate)
    wave = fit_length(crop, length)
    wave = wave * 10 ** (choice.gain_db / 20)
    if choice.noise_snr_db is not None:
        rng = np.random.default_rng(choice.noise_seed)
        wave = add_noise(wave, choice.noise_snr_db, choice.noise_colour, rng, sample_rate)
    return wave
