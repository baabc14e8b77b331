"""An embedded, seedable set of synthetic sound events, and soundscapes with ground truth.

Ten classes imitate the sounds this tool exists to make visible (sirens, alarms, horns, barks,
knocks, ...). Every clip draws its pitch, timing, duration, loudness, background noise colour and
SNR at random, so the task is not trivial; the same seed always gives the same audio. It is the
default data of the demo and of fast tests, never the only data hearai is tested on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from hearai.errors import ConfigError
from hearai.fsutil import atomic_path, write_csv_atomic

Generator = Callable[[np.random.Generator, int], np.ndarray]


def _time(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(round(seconds * sr))) / sr


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack, flat sustain, linear release: no clicks at event edges."""
    env = np.ones(n)
    a, r = min(n // 2, int(attack * sr)), min(n // 2, int(release * sr))
    if a:
        env[:a] = np.linspace(0.0, 1.0, a)
    if r:
        env[-r:] = np.linspace(1.0, 0.0, r)
    return env


def _harmonics(phase: np.ndarray, amplitudes: list[float]) -> np.ndarray:
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amplitudes))


def _decay(t: np.ndarray, tau: float) -> np.ndarray:
    return np.exp(-t / tau)


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, centers: list[float], width: float) -> np.ndarray:
    """White noise filtered to Gaussian bands around ``centers`` (formants, resonances)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    gain = sum(np.exp(-0.5 * ((freqs - c) / width) ** 2) for c in centers)
    return np.fft.irfft(spectrum * gain, n)


def coloured_noise(rng: np.random.Generator, n: int, sr: int, colour: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise with unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 20.0)
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]
    noise = np.fft.irfft(spectrum / freqs**exponent, n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def siren(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Wail (slow) or yelp (fast) sweep between two pitches, with harmonics."""
    t = _time(rng.uniform(1.5, 3.5), sr)
    low, high = rng.uniform(550, 850), rng.uniform(1150, 1650)
    period = rng.uniform(1.2, 3.0) if rng.random() < 0.5 else rng.uniform(0.18, 0.35)
    sweep = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(sweep) / sr
    return _harmonics(phase, [1.0, 0.35, 0.15]) * _envelope(len(t), sr, 0.05, 0.1)


def alarm_beep(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A high square-ish tone switched on and off: smoke alarms, reversing trucks."""
    t = _time(rng.uniform(1.2, 3.0), sr)
    pitch, on = rng.uniform(2400, 3600), rng.uniform(0.08, 0.25)
    gate = (np.floor(t / on) % 2 == 0).astype(float)
    gate = np.convolve(gate, np.ones(int(0.004 * sr)) / int(0.004 * sr), mode="same")
    return _harmonics(2 * np.pi * pitch * t, [1.0, 0.0, 0.3, 0.0, 0.12]) * gate


def car_horn(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Two reedy tones a third apart, steady, with slight vibrato."""
    t = _time(rng.uniform(0.4, 1.6), sr)
    f0 = rng.uniform(330, 480)
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    partials = [1 / (k + 1) for k in range(8)]
    tones = sum(_harmonics(2 * np.pi * np.cumsum(f * vibrato) / sr, partials) for f in (f0, f0 * 1.26))
    return tones * _envelope(len(t), sr, 0.02, 0.05)


def dog_bark(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Two to four short barks: falling harmonic voice plus breath noise, fast decay."""
    barks = []
    for _ in range(rng.integers(2, 5)):
        t = _time(rng.uniform(0.1, 0.22), sr)
        f0 = rng.uniform(380, 750) * (1 - 0.35 * t / t[-1])
        voice = _harmonics(2 * np.pi * np.cumsum(f0) / sr, [1.0, 0.7, 0.5, 0.3, 0.2])
        breath = 0.3 * _shaped_noise(rng, len(t), sr, [1200.0, 2500.0], 400.0)
        shape = np.minimum(1.0, t / 0.01) * _decay(t, t[-1] / 2.5)
        barks.append((voice + breath / (np.abs(breath).max() + 1e-9)) * shape)
        barks.append(np.zeros(int(rng.uniform(0.12, 0.35) * sr)))
    return np.concatenate(barks[:-1])


def door_knock(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Two to five knocks: a click and a low wooden resonance dying in tens of milliseconds."""
    knocks = []
    resonance = rng.uniform(120, 320)
    for _ in range(rng.integers(2, 6)):
        t = _time(0.12, sr)
        body = np.sin(2 * np.pi * resonance * t) * _decay(t, rng.uniform(0.015, 0.035))
        click = _shaped_noise(rng, len(t), sr, [2000.0], 1500.0) * _decay(t, 0.003)
        knocks.append(body + 0.5 * click / (np.abs(click).max() + 1e-9))
        knocks.append(np.zeros(int(rng.uniform(0.08, 0.25) * sr)))
    return np.concatenate(knocks[:-1])


def engine_hum(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Low firing-rate harmonics with amplitude pulsing and rumble: idling engines."""
    t = _time(rng.uniform(2.0, 3.8), sr)
    f0 = rng.uniform(28, 65) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = _harmonics(phase, [1.0 / (1 + 0.3 * k) for k in range(16)])
    pulse = 1 + 0.5 * np.sin(phase * rng.choice([2, 3, 4]) / 2)
    rumble = _shaped_noise(rng, len(t), sr, [150.0], 120.0)
    return (tone * pulse / 4 + rumble / (np.abs(rumble).max() + 1e-9)) * _envelope(len(t), sr, 0.3, 0.3)


def glass_break(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A broadband crash, then many bright inharmonic partials and scattered tinkles."""
    n = int(rng.uniform(0.8, 1.8) * sr)
    t = np.arange(n) / sr
    crash = coloured_noise(rng, n, sr, "white") * _decay(t, rng.uniform(0.03, 0.08))
    out = crash
    for _ in range(rng.integers(12, 30)):
        start = int(rng.exponential(0.15) * sr) % n
        tail = t[: n - start]
        ring = np.sin(2 * np.pi * rng.uniform(2500, 7500) * tail) * _decay(tail, rng.uniform(0.01, 0.12))
        out[start:] += rng.uniform(0.1, 0.6) * ring
    return out


def speech_babble(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Voiced syllables: a jittered glottal pulse train through moving formants, 3-6 per second."""
    pieces = []
    for _ in range(rng.integers(4, 12)):
        n = int(rng.uniform(0.12, 0.3) * sr)
        f0 = rng.uniform(95, 240) * (1 + 0.01 * rng.standard_normal())
        pulses = np.zeros(n)
        pulses[(np.arange(0, n / sr, 1 / f0) * sr).astype(int)] = 1.0
        formants = [rng.uniform(300, 850), rng.uniform(900, 2300), rng.uniform(2400, 3200)]
        spectrum = np.fft.rfft(pulses)
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        gain = sum(np.exp(-0.5 * ((freqs - f) / 90.0) ** 2) / (i + 1) for i, f in enumerate(formants))
        voiced = np.fft.irfft(spectrum * gain, n)
        pieces.append(voiced * np.hanning(n))
        pieces.append(np.zeros(int(rng.uniform(0.02, 0.12) * sr)))
    return np.concatenate(pieces[:-1])


def doorbell(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Ding-dong: two struck bell tones with inharmonic partials, long decay."""
    high = rng.uniform(600, 900)
    tones = []
    for pitch in (high, high / rng.uniform(1.19, 1.34)):
        t = _time(rng.uniform(0.5, 0.9), sr)
        partials = sum(a * np.sin(2 * np.pi * pitch * r * t) for a, r in [(1, 1), (0.5, 2.76), (0.25, 5.4)])
        tones.append(partials * _decay(t, rng.uniform(0.2, 0.4)) * np.minimum(1.0, t / 0.003))
    return np.concatenate(tones)


def phone_ring(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A two-tone ring warbled at 15-25 Hz, in one or two bursts."""
    bursts = []
    for _ in range(rng.integers(1, 3)):
        t = _time(rng.uniform(0.6, 1.2), sr)
        f1 = rng.uniform(900, 1400)
        warble = 0.5 * (1 + np.sign(np.sin(2 * np.pi * rng.uniform(15, 25) * t)))
        tone = np.sin(2 * np.pi * f1 * t) * warble + np.sin(2 * np.pi * f1 * 1.25 * t) * (1 - warble)
        bursts.append(tone * _envelope(len(t), sr, 0.01, 0.02))
        bursts.append(np.zeros(int(rng.uniform(0.2, 0.4) * sr)))
    return np.concatenate(bursts[:-1])


CLASSES: dict[str, Generator] = {
    "siren": siren,
    "alarm_beep": alarm_beep,
    "car_horn": car_horn,
    "dog_bark": dog_bark,
    "door_knock": door_knock,
    "engine_hum": engine_hum,
    "glass_break": glass_break,
    "speech_babble": speech_babble,
    "doorbell": doorbell,
    "phone_ring": phone_ring,
}
LABELS: tuple[str, ...] = tuple(CLASSES)
_COLOURS = ("white", "pink", "brown")


def make_event(label: str, rng: np.random.Generator, *, sample_rate: int) -> np.ndarray:
    """One event of class ``label``, normalized to peak 1, starting and ending with sound."""
    if label not in CLASSES:
        raise ConfigError(f"unknown synthetic class {label!r}; known: {', '.join(LABELS)}")
    event = CLASSES[label](rng, sample_rate)
    return (event / (np.abs(event).max() + 1e-12)).astype(np.float32)


def mix_at_snr(background: np.ndarray, event: np.ndarray, start: int, snr_db: float) -> np.ndarray:
    """Add ``event`` into ``background`` at ``start`` (in place), scaled to ``snr_db`` over it.

    The SNR compares the event's RMS with the background's RMS over the same span. Returns the
    scaled event as added.
    """
    span = background[start : start + len(event)]
    noise_rms = np.sqrt(np.mean(span**2)) + 1e-12
    event_rms = np.sqrt(np.mean(event**2)) + 1e-12
    scaled = event * (noise_rms / event_rms) * 10 ** (snr_db / 20)
    span += scaled
    return scaled


def event_in_noise(label: str, *, seconds: float = 10.0, onset: float = 4.0, snr_db: float = 12.0, seed: int = 4,
                   sample_rate: int = 16_000) -> np.ndarray:
    """One ``label`` event at ``onset`` s over quiet pink noise (-40 dBFS): a live-alert test signal."""
    rng = np.random.default_rng(seed)
    wave = coloured_noise(rng, int(round(seconds * sample_rate)), sample_rate, "pink") * 0.01
    mix_at_snr(wave, make_event(label, rng, sample_rate=sample_rate), int(round(onset * sample_rate)), snr_db)
    return wave.astype(np.float32)


AUDIBLE_DB = -10.0
_LEVEL_FRAME_SECONDS = 0.02


def frame_power(wave: np.ndarray, sample_rate: int) -> tuple[int, np.ndarray]:
    """Mean power of consecutive 20-ms frames, and the frame length in samples."""
    frame = int(_LEVEL_FRAME_SECONDS * sample_rate)
    n = max(1, len(wave) // frame)
    return frame, np.mean(np.square(wave[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)


def audible_span(event: np.ndarray, background_power: float, sample_rate: int) -> tuple[int, int]:
    """First and last sample of the 20-ms frames where the event is within 10 dB of the background.

    That is where a listener (or a detector) can tell the sound is there: a bell's or a breaking
    glass's decay far below the background noise is not part of the event as heard.
    """
    frame, power = frame_power(event, sample_rate)
    loud = np.nonzero(power >= background_power * 10 ** (AUDIBLE_DB / 10))[0]
    if not len(loud):
        return 0, len(event)
    return int(loud[0] * frame), int(min(len(event), (loud[-1] + 1) * frame))


def make_clip(
    label: str, rng: np.random.Generator, *, sample_rate: int = 16_000, seconds: float = 4.0,
    snr_db: tuple[float, float] = (3.0, 20.0),
) -> np.ndarray:
    """A clip of ``seconds``: one ``label`` event at a random time over coloured background noise."""
    n = int(round(seconds * sample_rate))
    event = make_event(label, rng, sample_rate=sample_rate)[:n]
    background = coloured_noise(rng, n, sample_rate, str(rng.choice(_COLOURS)))
    start = int(rng.integers(0, n - len(event) + 1))
    mix_at_snr(background, event, start, rng.uniform(*snr_db))
    return _to_level(background, rng)


def _to_level(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Set a random loudness: peak between -30 and -1 dBFS."""
    peak = 10 ** (rng.uniform(-30.0, -1.0) / 20)
    return (signal * peak / (np.abs(signal).max() + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class SynthEvent:
    """One ground-truth event in a soundscape (times in seconds)."""

    file: str
    label: str
    onset: float
    offset: float


def make_soundscape(
    rng: np.random.Generator, *, sample_rate: int = 16_000, seconds: float = 30.0,
    events: int = 6, snr_db: tuple[float, float] = (6.0, 20.0), labels: tuple[str, ...] = LABELS,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """A background recording with ``events`` non-overlapping events at random known times.

    Returns the waveform and (label, onset, offset) rows; onset and offset bound the part of the
    event that is audible over the background (``audible_span``). Events are kept at least 1 s apart
    so their boundaries stay distinct.
    """
    n = int(round(seconds * sample_rate))
    background = coloured_noise(rng, n, sample_rate, str(rng.choice(_COLOURS)))
    chosen = [str(rng.choice(labels)) for _ in range(events)]
    clips = [(label, make_event(label, rng, sample_rate=sample_rate)) for label in chosen]
    rows = lay_out_events(background, clips, rng, sample_rate=sample_rate, gap_seconds=1.0, snr_db=snr_db)
    return _to_level(background, rng), rows


def lay_out_events(background: np.ndarray, events: list[tuple[str, np.ndarray]], rng: np.random.Generator, *,
                   sample_rate: int, gap_seconds: float, snr_db: tuple[float, float]) -> list[tuple[str, float, float]]:
    """Mix ``events`` (label, wave) into ``background`` in order, at random times at least ``gap_seconds`` apart.

    Each event gets an SNR drawn from ``snr_db``; returns (label, onset, offset) of its audible span.
    The synthetic and the ESC-50 soundscapes share this layout.
    """
    gap = int(gap_seconds * sample_rate)
    free = len(background) - sum(len(e) for _, e in events) - gap * (len(events) + 1)
    if free < 0:
        raise ConfigError(f"{len(events)} events do not fit in a {len(background) / sample_rate:g}-s soundscape")
    # Split the free time at random between the gaps, then lay the events out in order.
    shares = np.diff(np.concatenate([[0], np.sort(rng.integers(0, free + 1, size=len(events)))]))
    rows, position = [], gap
    for (label, event), extra in zip(events, shares):
        position += int(extra)
        noise_power = float(np.mean(np.square(background[position : position + len(event)], dtype=np.float64)))
        first, last = audible_span(mix_at_snr(background, event, position, rng.uniform(*snr_db)), noise_power,
                                   sample_rate)
        rows.append((label, (position + first) / sample_rate, (position + last) / sample_rate))
        position += len(event) + gap
    return rows


def generate_clips(
    out_dir: str | Path, *, per_class: int = 40, seed: int = 0, sample_rate: int = 16_000,
    seconds: float = 4.0, folds: int = 5, progress: bool = True,
) -> Path:
    """Write ``per_class`` clips of every class as 16-bit WAV plus ``manifest.csv`` (path,label,fold).

    Folds are assigned round-robin within each class, so each fold holds every class equally.
    Returns the manifest's path; paths inside it are relative to it.
    """
    if per_class < 1 or folds < 1:
        raise ConfigError("per_class and folds must be at least 1")
    root = Path(out_dir)
    rows = []
    jobs = [(ci, label, i) for ci, label in enumerate(LABELS) for i in range(per_class)]
    for ci, label, i in tqdm(jobs, desc="synthesizing clips", unit="clip", disable=not progress):
        rng = np.random.default_rng([seed, ci, i])
        relative = Path("audio") / label / f"{label}-{i:04d}.wav"
        _write_wav(root / relative, make_clip(label, rng, sample_rate=sample_rate, seconds=seconds), sample_rate)
        rows.append((relative.as_posix(), label, i % folds + 1))
    manifest = root / "manifest.csv"
    write_csv_atomic(manifest, ("path", "label", "fold"), rows)
    return manifest


def generate_soundscapes(
    out_dir: str | Path, *, count: int = 4, seed: int = 0, sample_rate: int = 16_000,
    seconds: float = 30.0, events: int = 6, progress: bool = True,
) -> Path:
    """Write ``count`` soundscapes and ``ground_truth.csv`` (file,label,onset,offset in seconds)."""
    root = Path(out_dir)
    rows: list[SynthEvent] = []
    for k in tqdm(range(count), desc="synthesizing soundscapes", unit="file", disable=not progress):
        rng = np.random.default_rng([seed, 1000, k])
        wave, events_found = make_soundscape(rng, sample_rate=sample_rate, seconds=seconds, events=events)
        relative = f"soundscape-{k:03d}.wav"
        _write_wav(root / relative, wave, sample_rate)
        rows += [SynthEvent(relative, label, round(on, 4), round(off, 4)) for label, on, off in events_found]
    truth = root / "ground_truth.csv"
    write_csv_atomic(truth, ("file", "label", "onset", "offset"), [(e.file, e.label, e.onset, e.offset) for e in rows])
    return truth


def _write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    with atomic_path(path) as tmp:
        sf.write(tmp, wave, sample_rate, subtype="PCM_16", format="WAV")

