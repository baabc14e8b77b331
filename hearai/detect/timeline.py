"""Probabilities over time for the timeline plot: every window of a stream, cut as a whole clip is cut."""

from __future__ import annotations

import numpy as np

from hearai.detect.buffer import StreamBuffer
from hearai.interface import SoundModel
from hearai.windows import stream_window_starts


class WindowTimeline:
    """Scores each window of the stream in ``buffer`` once it has arrived (``hearai.windows.stream_window_starts``)."""

    def __init__(self, model: SoundModel, buffer: StreamBuffer) -> None:
        self.model, self.buffer = model, buffer
        self.times: list[float] = []
        self.probabilities: list[np.ndarray] = []
        self._next = 0  # first frame of the next window to score

    @property
    def needs_from(self) -> int:
        """The earliest sample a future window's crop reaches."""
        return self._next * self.buffer.config.hop_length - self.buffer.context

    def advance(self, *, final: bool) -> None:
        config, buffer = self.buffer.config, self.buffer
        starts = stream_window_starts(buffer.received, config, first=self._next, final=final)
        if not starts or not buffer.received:
            return
        if final and buffer.received < config.window_samples:
            crops = buffer.short_stream_crop()[None]
        else:
            crops = np.stack([buffer.crop(s * config.hop_length) for s in starts])
        half_window = config.window_samples / 2
        for start, p in zip(starts, self.model.window_probabilities(crops)):
            self.times.append((start * config.hop_length + half_window) / config.sample_rate)
            self.probabilities.append(p)
        self._next = starts[-1] + config.window_hop_frames
