"""Training windows for a detector: soundscapes mixed on the fly from cached features, with strong labels.

Each example is one window of a training clip (its *event*), often moved so that it starts inside
the window (onsets to learn from), laid over a *bed* at a random SNR: a background recording
(``hearai.data.soundscapes.BACKGROUNDS``, from the training folds only), another event of a
different class (overlap), or nothing; a few examples are a bed alone. Mixing adds mel *power*
(log-mel dB back to power, summed, back to dB): the sum of two uncorrelated sounds, without
decoding audio, so a batch costs little more than reading cached windows. The frame targets follow
``hearai.data.mixer``'s rules on the mixed powers: a sound is on where it is active (within 30 dB
of its clip's loudest frame, short pauses bridged) and audible over the other sound. Test
soundscapes are mixed from audio by ``hearai.data.mixer``; this is only the fast training twin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from hearai.augment.spectrogram import spec_augment
from hearai.data.clips import ClipFeatures
from hearai.data.mixer import active_from_power
from hearai.data.soundscapes import BACKGROUNDS
from hearai.data.synth import AUDIBLE_DB
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.validation import optional_real


@dataclass(frozen=True)
class SoundscapeMix:
    """How training soundscapes are drawn: shares of each kind of bed, onset shifts, SNR and loudness ranges."""

    bed_probability: float = 0.5  # a background recording under the event
    overlap_probability: float = 0.2  # another event (another class) under it
    bed_only_probability: float = 0.1  # no event at all: what must stay quiet
    shift_probability: float = 0.5  # the event starts inside the window
    snr_db: tuple[float, float] = (-5.0, 20.0)
    gain_db: float = 10.0  # whole-window loudness, uniform in +- gain_db
    backgrounds: tuple[str, ...] = BACKGROUNDS  # the training classes whose clips serve as beds

    def __post_init__(self) -> None:
        names = ("bed_probability", "overlap_probability", "bed_only_probability", "shift_probability", "gain_db")
        optional_real(self, *names)
        for name in names[:-1]:
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"SoundscapeMix.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.bed_probability + self.overlap_probability + self.bed_only_probability > 1:
            raise ConfigError("SoundscapeMix: bed, overlap and bed-only probabilities must sum to at most 1")
        if not 0 <= self.gain_db <= 60:
            raise ConfigError(f"SoundscapeMix.gain_db must be in [0, 60], got {self.gain_db!r}")
        try:
            low, high = (float(v) for v in self.snr_db)
        except (TypeError, ValueError):
            low, high = 1.0, 0.0
        if not -60 <= low <= high <= 60:
            raise ConfigError(f"SoundscapeMix.snr_db must be [low, high] within [-60, 60] dB, got {self.snr_db!r}")
        object.__setattr__(self, "snr_db", (low, high))
        if isinstance(self.backgrounds, str) or not all(isinstance(x, str) for x in self.backgrounds):
            raise ConfigError(f"SoundscapeMix.backgrounds must be a list of labels, got {self.backgrounds!r}")
        object.__setattr__(self, "backgrounds", tuple(self.backgrounds))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "snr_db": list(self.snr_db), "backgrounds": list(self.backgrounds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoundscapeMix:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"SoundscapeMix has no field(s) {', '.join(unknown)}")
        return cls(**{**data, **({"snr_db": tuple(data["snr_db"])} if "snr_db" in data else {})})


def frame_power(features: torch.Tensor) -> torch.Tensor:
    """(..., bands, frames) log-mel dB -> (..., frames) power summed over bands."""
    return (10.0 ** (features / 10.0)).sum(dim=-2)


def mix_windows(event: torch.Tensor, event_on: torch.Tensor, bed: torch.Tensor, bed_on: torch.Tensor, *,
                snr_db: float, amin: float) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Event window over bed window (log-mel dB) at ``snr_db``, measured on the event's active frames
    against the bed under them; and where each is still heard (``hearai.data.mixer``'s audible rule)."""
    e, b = 10.0 ** (event.double() / 10.0), 10.0 ** (bed.double() / 10.0)
    pe, pb = e.sum(0), b.sum(0)
    where = event_on if bool(event_on.any()) else torch.ones_like(event_on)
    gain = float(pb[where].mean() / pe[where].mean().clamp_min(1e-30)) * 10 ** (snr_db / 10)
    gain = min(gain, 1e12)
    mixed = 10.0 * torch.log10((b + gain * e).clamp_min(amin))
    audible = 10 ** (AUDIBLE_DB / 10)
    heard_event = event_on & (gain * pe >= pb * audible)
    heard_bed = bed_on & (pb >= gain * pe * audible)
    return mixed.float(), (heard_event, heard_bed)


def active_masks(clips: ClipFeatures, feature_config: FeatureConfig) -> list[torch.Tensor]:
    """Per clip, per feature frame: is the clip's sound there (``mixer.active_from_power`` on its mel power)."""
    seconds = feature_config.hop_length / feature_config.sample_rate
    return [torch.from_numpy(active_from_power(frame_power(f.double()).numpy(), seconds)) for f in clips.features]


class SoundscapeBatches:
    """Callable: rows (batch, 2) of (clip, first frame) -> (windows (batch, 1, F, T), targets (batch, T, C)).

    ``events``: the labelled training clips (``rows`` index their windows); ``beds``: background
    recordings from the training folds, labelled where their class is one of the model's (-1: not
    a class, e.g. wind for an ESC-10 model). All randomness comes from ``generator`` (checkpointed).
    """

    def __init__(self, events: ClipFeatures, beds: ClipFeatures | None, *, feature_config: FeatureConfig,
                 mix: SoundscapeMix, n_classes: int, band_mean: torch.Tensor, seed: int,
                 spec: dict[str, int] | None = None, device: str | torch.device = "cpu") -> None:
        self.events, self.beds, self.mix, self.n_classes = events, beds, mix, n_classes
        self.frames, self.amin = feature_config.window_frames, feature_config.amin
        self.device = torch.device(device)
        self.fill = band_mean.reshape(-1, 1).to(self.device)
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)
        self._event_active = active_masks(events, feature_config)
        self._bed_active = active_masks(beds, feature_config) if beds is not None and len(beds) else []

    def __call__(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
        m, batch = self.mix, len(chunk)
        kind = rng.choice(4, size=batch, p=self._kind_shares())  # 0 none, 1 background bed, 2 other event, 3 bed only
        windows, targets = [], []
        for (clip, start), k in zip(chunk.tolist(), kind.tolist()):
            x, active = self._event_window(clip, start, shift=rng.random() < m.shift_probability, rng=rng)
            label = int(self.events.labels[clip])
            if k == 0:
                windows.append(x)
                targets.append(self._target([(label, active)]))
                continue
            bed, bed_active, bed_label = self._bed(k, label, rng)
            if k == 3:
                windows.append(bed)
                targets.append(self._target([(bed_label, bed_active)]))
                continue
            mixed, heard = mix_windows(x, active, bed, bed_active, snr_db=float(rng.uniform(*m.snr_db)),
                                       amin=self.amin)
            windows.append(mixed)
            targets.append(self._target([(label, heard[0]), (bed_label, heard[1])]))
        x = torch.stack(windows)
        x = x + torch.from_numpy(rng.uniform(-m.gain_db, m.gain_db, (batch, 1, 1))).float()
        x = x.unsqueeze(1).to(self.device)
        if self.spec:
            x = spec_augment(x, generator=self.generator, fill=self.fill, **self.spec)
        return x, torch.stack(targets).to(self.device)

    def _kind_shares(self) -> list[float]:
        m = self.mix
        bed = m.bed_probability if self._bed_active else 0.0
        only = m.bed_only_probability if self._bed_active else 0.0
        return [1 - bed - m.overlap_probability - only, bed, m.overlap_probability, only]

    def _event_window(self, clip: int, start: int, *, shift: bool, rng: np.random.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The window at ``start``; when ``shift``, its sound moved right so that it starts inside the window."""
        features, active = self.events.features[clip], self._event_active[clip]
        x, on = features[:, start : start + self.frames], active[start : start + self.frames]
        if not shift:
            return x, on
        lead = int(rng.integers(1, self.frames * 3 // 4))
        first_active = int(torch.nonzero(active).min()) if bool(active.any()) else start
        begin = max(0, min(first_active, features.shape[-1] - (self.frames - lead)))
        x = torch.full_like(x, 10 * np.log10(self.amin))
        x[:, lead:] = features[:, begin : begin + self.frames - lead]
        on = torch.zeros_like(on)
        on[lead:] = active[begin : begin + self.frames - lead]
        return x, on

    def _bed(self, kind: int, label: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
        """A background recording's window (kind 1, 3) or another class's event window (kind 2)."""
        if kind == 2:
            others = torch.nonzero(self.events.labels != label).flatten()
            if not len(others):
                others = torch.arange(len(self.events))
            clip = int(others[int(rng.integers(len(others)))])
            source, active = self.events.features[clip], self._event_active[clip]
            bed_label = int(self.events.labels[clip])
        else:
            assert self.beds is not None
            clip = int(rng.integers(len(self.beds)))
            source, active, bed_label = self.beds.features[clip], self._bed_active[clip], int(self.beds.labels[clip])
        start = int(rng.integers(0, source.shape[-1] - self.frames + 1))
        return source[:, start : start + self.frames], active[start : start + self.frames], bed_label

    def _target(self, sources: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        out = torch.zeros(self.frames, self.n_classes)
        for label, on in sources:
            if label >= 0:
                out[:, label] = torch.maximum(out[:, label], on.float())
        return out
