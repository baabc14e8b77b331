"""Where something rises above the background: band levels against a running per-band noise floor.

A 2-s classifier window cannot say where in it a sound starts, but the sound's level can, to a
few STFT hops. Each frame's energy in a few dozen mel bands is compared with that band's
background level (the median of the last ``floor_seconds``); the frame's *excess* is the mean excess of its
most raised bands, so a narrow-band siren over broadband rain counts as much as a broadband crash.
Hysteresis (on at ``rise_db``, staying on above ``fall_db``) and a merge gap turn frames into
segments: a train of barks or knocks is one segment. Streaming: frames are processed as samples
arrive; memory is the floor's history, bounded whatever the duration. NumPy only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from hearai.featureconfig import FeatureConfig, mel_filterbank

ANALYSIS_BANDS = 32
RAISED_BANDS = 8  # a frame's excess: the mean over its 8 most raised bands
SMOOTH_FRAMES = 3  # moving average of band levels over 3 hops: steadies noise, keeps knocks and onsets sharp
FLOOR_PERCENTILE = 50.0  # the median: impulsive backgrounds (fire, rain) keep it above their quiet gaps
FLOOR_UPDATE_FRAMES = 25
QUIETEST_DB = -90.0  # dB re a full-scale sine: anything quieter counts as digital silence


@dataclass
class Segment:
    """Seconds from the stream's start; ``offset`` is None while the sound goes on."""

    onset: float
    offset: float | None = None
    last_active: float = 0.0


class ActivityTracker:
    """Push model-rate samples, get segments opened and closed. One per stream."""

    def __init__(self, feature_config: FeatureConfig, *, rise_db: float, fall_db: float, merge_gap_seconds: float,
                 min_seconds: float, floor_seconds: float) -> None:
        self.rate, self.hop, self.n_fft = feature_config.sample_rate, feature_config.hop_length, feature_config.n_fft
        bands = replace(feature_config, n_mels=ANALYSIS_BANDS, kind="logmel")
        filters = mel_filterbank(bands).astype(np.float64)  # (bands, bins)
        window = np.hanning(self.n_fft)
        self._window = window
        # A full-scale sine at a band's centre reads 0 dB in that band.
        self._filters = filters / np.maximum(filters.max(axis=1, keepdims=True), 1e-12) / (window.sum() / 2) ** 2
        self.rise_db, self.fall_db = rise_db, fall_db
        self.merge_gap, self.min_seconds = merge_gap_seconds, min_seconds
        self._history: deque[np.ndarray] = deque(maxlen=max(1, round(floor_seconds * self.rate / self.hop)))
        self._recent: deque[np.ndarray] = deque(maxlen=SMOOTH_FRAMES)
        self._floor: np.ndarray | None = None
        self._pending = np.zeros(0)
        self._frames = 0  # frames analysed so far
        self.open: Segment | None = None

    @property
    def analysed_seconds(self) -> float:
        """Audio up to here has been turned into frames and decisions."""
        return self._frame_time(self._frames - 1 - SMOOTH_FRAMES // 2) + self.hop / self.rate / 2

    def push(self, samples: np.ndarray) -> list[Segment]:
        """Analyse new samples; returns the segments closed by them (``self.open`` is the current one)."""
        data = np.concatenate([self._pending, samples.astype(np.float64)])
        n = (len(data) - self.n_fft) // self.hop + 1 if len(data) >= self.n_fft else 0
        closed: list[Segment] = []
        if n:
            index = np.arange(self.n_fft)[None, :] + self.hop * np.arange(n)[:, None]
            power = np.abs(np.fft.rfft(data[index] * self._window, axis=1)) ** 2
            levels = 10 * np.log10(np.maximum(power @ self._filters.T, 10 ** (QUIETEST_DB / 10)))
            for row in levels:
                closed += self._frame(row)
        self._pending = data[n * self.hop :]
        return closed

    def finish(self) -> list[Segment]:
        """End of stream: close the open segment at the last active frame."""
        segment, self.open = self.open, None
        if segment is None:
            return []
        segment.offset = segment.last_active
        return [segment] if segment.offset - segment.onset >= self.min_seconds else []

    def _frame_time(self, frame: int) -> float:
        return (frame * self.hop + self.n_fft / 2) / self.rate

    def _frame(self, levels: np.ndarray) -> list[Segment]:
        self._recent.append(levels)
        self._history.append(levels)
        self._frames += 1
        smooth = np.mean(self._recent, axis=0)
        warming_up = len(self._history) < 2 * FLOOR_UPDATE_FRAMES
        if self._floor is None or warming_up or self._frames % FLOOR_UPDATE_FRAMES == 0:
            self._floor = np.percentile(np.asarray(self._history), FLOOR_PERCENTILE, axis=0)
        raised = np.sort(smooth - self._floor)[-RAISED_BANDS:].mean()
        centre = self._frame_time(self._frames - 1 - SMOOTH_FRAMES // 2)
        half = self.hop / self.rate / 2
        if self.open is None:
            if raised >= self.rise_db:
                self.open = Segment(onset=max(0.0, centre - half), last_active=centre + half)
            return []
        if raised >= self.fall_db:
            self.open.last_active = centre + half
            return []
        if centre - self.open.last_active <= self.merge_gap:
            return []
        segment, self.open = self.open, None
        segment.offset = segment.last_active
        return [segment] if segment.offset - segment.onset >= self.min_seconds else []
