"""The audio of the latest alerts, kept so that a person can say "not this sound" or "yes, that was it" of them.

A stream keeps its last ``HEARD_SECONDS`` of audio (``hearai.detect.buffer.RecentAudio``); when it raises an alert, that
audio becomes a ``HeardClip`` in the server's ``Heard`` store under an id the alert carries. The
store holds at most ``MAX_CLIPS`` (the oldest go first) and only in memory: a clip reaches the data
folder only with the correction a person makes of it.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

MAX_CLIPS = 30  # at most 30 x 5 s x 48 kHz x 4 bytes = 29 MB


@dataclass(frozen=True)
class HeardClip:
    label: str
    samples: np.ndarray  # mono float32
    rate: int
    onset: float  # the alert's onset, seconds into its stream


class Heard:
    """The latest alerts' audio by id, ``MAX_CLIPS`` at most; safe to use from the event loop and worker threads."""

    def __init__(self, max_clips: int = MAX_CLIPS) -> None:
        self.max_clips = max_clips
        self._clips: OrderedDict[str, HeardClip] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, clip: HeardClip) -> str:
        key = uuid.uuid4().hex[:12]
        with self._lock:
            self._clips[key] = clip
            while len(self._clips) > self.max_clips:
                self._clips.popitem(last=False)
        return key

    def get(self, key: str) -> HeardClip | None:
        with self._lock:
            return self._clips.get(key)
