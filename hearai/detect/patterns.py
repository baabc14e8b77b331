"""Alarms by their pattern: the temporal-three (smoke and fire) and temporal-four (carbon monoxide) signals.

Smoke and fire alarms sound ISO 8201's temporal-three pattern: 0.5 s on, 0.5 s off, three times,
then 1.5 s off, repeating; carbon-monoxide alarms the temporal-four pattern: four 0.1-s beeps 0.1 s
apart, then 5 s off. Most sound a piezo horn near 3.1 kHz, the low-frequency alarms for people with
hearing loss a 520 Hz square wave. No other household sound keeps such a rhythm on one steady tone.

``ToneTracker`` finds, every 10 ms, the strongest tone between 400 Hz and 4.5 kHz that stands
``PROMINENCE_DB`` above the spectrum around it, and cuts beeps where that tone holds (gaps of one
frame bridged, as noise breaks a beep). A room rings on after each beep: a tone that dips by
``DIP_DB`` and comes back is a new beep (the room filled the gap), and a tone still fading after a
beep ended is its ring, no new beep. ``PatternDetector`` matches the newest beeps against each
pattern: the beep lengths and the times from one beep's start to the next within tolerances wide
enough for real alarms in real rooms and even among themselves, one pure tone (its pitch held within
``HELD_PITCH``, standing ``PURE_TONE_DB`` out) for all, quiet on that tone before the first and after
the last (so steady or irregular beeping is no pattern; other sounds' tones neither make nor break
one). Pieces of one tone broken apart for less than a pattern's ``join`` are one of its beeps. A
room's echoes can cancel part of a pure tone, cutting each short beep into pieces its own way; as the
room treats every beep alike, a ``periodic`` pattern is also heard where the level at its tone
repeats at its period, as often as it beeps. NumPy only, streaming, any input rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BAND_HZ = (400.0, 4500.0)
FRAME_SECONDS, HOP_SECONDS = 0.032, 0.01
PROMINENCE_DB = 12.0  # a tone's peak over the median of the band's spectrum
FALL_DB = 12.0  # a beep ends where its tone falls this far below the beep's loudest frame
DIP_DB = 6.0  # or where it dipped this far and came back to its loudest: the next beep, its gap filled by the room
RING_SECONDS = 1.0  # this soon after a beep, its tone not back near the beep's loudest is the room ringing
SAME_TONE = 0.03  # beeps of one alarm: tones within 3 % of each other (a horn holds its pitch)
PURE_TONE_DB = 20.0  # an alarm's beeps: a tone this far over the spectrum around it, frame for frame (median)
EVEN = 1.6  # the longest start-to-start time of a pattern at most this many times its shortest
EVEN_LENGTHS = 2.5  # and its longest beep (a room lengthens some by their ring, noise shortens others)
MAX_BEEPS = 256  # beeps kept (of the last KEEP_SECONDS): bounds memory whatever the stream holds
KEEP_SECONDS = 30.0
RANGE_DB = 30.0  # a tone this far below the loudest one of the last seconds is residue, not a beep
DECAY_DB_PER_FRAME = 0.06  # how fast that loudest level is forgotten (6 dB a second)
JOIN = 0.15  # pieces of a temporal-three beep broken apart for less than this (s; its gaps are 0.5 s)
COVER = 0.7  # and sounding this share of the joined beep's time (fragments of noise do not)
HELD_PITCH = 0.01  # a horn's beeps: their pitch within 1 % of each other
HELD_PITCH_HZ = 8.0  # or 8 Hz (a low tone's pitch is read less finely in 32-ms frames)
HISTORY_SECONDS = 2.0  # the spectra kept for a burst's level (a temporal-four's burst lasts under 1.5 s)
SMOOTH_FRAMES = 4  # its level smoothed over 40 ms: a cricket's pulses flutter from frame to frame
REPEATS = 0.6  # the correlation of a burst's level with itself one period later
FLOOR_DBFS = -80.0  # and none softer than this


@dataclass(frozen=True)
class AlarmPattern:
    """A temporal pattern: ``beeps`` beeps, their lengths and the times from one's start to the next's
    (``period``) within their ranges (seconds), quiet for at least ``quiet`` seconds before the first and
    after the last."""

    name: str
    beeps: int
    beep: tuple[float, float]
    period: tuple[float, float]
    quiet: float
    cycle: float  # seconds from one pattern's start to the next
    join: float = 0.0  # pieces of one tone this close (s) are one beep, broken by the room or the noise
    periodic: bool = False  # or its burst's level repeating at its period, however the room cut its beeps

    def explain(self, beeps: list[Beep]) -> str:
        mean = float(np.mean([b.seconds for b in beeps]))
        tone = float(np.median([b.frequency for b in beeps]))
        return (f"{len(beeps)} beeps of {mean:.2f} s at {tone / 1000:.2f} kHz, then {self.quiet:g} s quiet "
                f"({self.name})")


# ISO 8201 / NFPA 72 give +-10 %; real alarms differ more, and in rooms ring on (a beep lasts longer, to
# the next one's start at most, when the room fills a short gap), so the ranges are wider.
TEMPORAL_THREE = AlarmPattern("temporal-three", 3, beep=(0.3, 0.8), period=(0.75, 1.35), quiet=1.0, cycle=4.0,
                              join=JOIN)
TEMPORAL_FOUR = AlarmPattern("temporal-four", 4, beep=(0.05, 0.3), period=(0.14, 0.3), quiet=2.0, cycle=5.8,
                             periodic=True)
PATTERNS = {p.name: p for p in (TEMPORAL_THREE, TEMPORAL_FOUR)}


@dataclass(frozen=True)
class Beep:
    start: float
    end: float
    frequency: float
    prominence_db: float  # how far its tone stood out of the spectrum around it (median over its frames)
    peak_db: float = 0.0  # its loudest frame's level (dB, on the tracker's scale)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class PatternHit:
    """A pattern heard: its first beep's start, when it was decided, and why."""

    pattern: str
    onset: float
    decided: float
    explanation: str
    tone: float  # Hz: the alarm's beeps' frequency


@dataclass
class _Open:
    start: float
    peak_db: float
    frequencies: list[float] = field(default_factory=list)
    prominences: list[float] = field(default_factory=list)
    missed: int = 0
    last: float = 0.0
    trough_db: float = np.inf  # the lowest level since its loudest frame, and when
    trough_time: float = 0.0

    def beep(self) -> Beep:
        """As far as it has sounded; a frame spans FRAME_SECONDS, so its tone started up to a frame before
        the first frame's hop."""
        shift = (FRAME_SECONDS - HOP_SECONDS) / 2
        return Beep(self.start + shift, self.last + shift, float(np.median(self.frequencies)),
                    float(np.median(self.prominences)), self.peak_db)


class ToneTracker:
    """Samples at ``rate`` in, beeps out: runs of 10-ms frames holding one prominent tone in ``BAND_HZ``."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.size = int(round(FRAME_SECONDS * rate))
        self.hop = int(round(HOP_SECONDS * rate))
        self.window = np.hanning(self.size)
        freqs = np.fft.rfftfreq(self.size, 1 / rate)
        self.band = np.flatnonzero((freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], rate / 2 - 1)))
        self.freqs = freqs
        self._pending = np.zeros(0)
        self._frames = 0  # frames analysed
        self._open: _Open | None = None
        self._rings: list[tuple[float, float, float]] = []  # the last beeps' (tone, loudest level, end)
        self._recent_db = -np.inf
        self._history = np.ones((int(HISTORY_SECONDS / HOP_SECONDS), len(self.band)))  # the last frames' power
        # the power a full-scale sine puts in its peak bins: levels are read against it
        self.floor_db = 10 * np.log10((self.window.sum() / 2) ** 2) + FLOOR_DBFS

    def push(self, samples: np.ndarray) -> list[Beep]:
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.float64)])
        count = max(0, (len(data) - self.size) // self.hop + 1)
        beeps: list[Beep] = []
        if count and len(self.band) > 2:
            frames = np.lib.stride_tricks.sliding_window_view(data, self.size)[:: self.hop][:count]
            power = np.abs(np.fft.rfft(frames * self.window, axis=1))[:, self.band] ** 2 + 1e-20
            for row in power:
                self._history[self._frames % len(self._history)] = row
                beeps += self._frame(row)
        self._pending = data[count * self.hop :]
        return beeps

    def finish(self) -> list[Beep]:
        return self._close() if self._open else []

    @property
    def seconds(self) -> float:
        """How much of the stream was analysed."""
        return self._frames * HOP_SECONDS

    @property
    def sounding(self) -> Beep | None:
        """The beep still sounding, if any, as far as it has sounded."""
        return None if self._open is None else self._open.beep()

    def power(self, frequency: float, start: float, end: float) -> np.ndarray:
        """The power of ``frequency`` in each frame from ``start`` to ``end`` (s), as far as still kept."""
        shift = (FRAME_SECONDS - HOP_SECONDS) / 2
        first = max(int(round((start - shift) / HOP_SECONDS)), self._frames - len(self._history), 0)
        last = min(int(round((end - shift) / HOP_SECONDS)), self._frames - 1)
        k = int(np.abs(self.freqs[self.band] - frequency).argmin())
        rows = self._history[np.arange(first, last + 1) % len(self._history)]
        return rows[:, max(0, k - 1) : k + 2].sum(axis=1)

    def _frame(self, power: np.ndarray) -> list[Beep]:
        time = self._frames * HOP_SECONDS
        self._frames += 1
        k = int(power.argmax())
        peak = power[max(0, k - 1) : k + 2].sum()
        level = 10 * np.log10(peak)
        # A tone stands out of its spectrum, and is not a faint residue far below the loudest of late.
        self._recent_db = max(level, self._recent_db - DECAY_DB_PER_FRAME)
        prominence = level - 10 * np.log10(np.median(power) * 3)
        tonal = prominence >= PROMINENCE_DB and level >= max(self._recent_db - RANGE_DB, self.floor_db) \
            and 0 < k < len(power) - 1  # a peak, not the band's edge on a slope of noise
        frequency = self._peak_frequency(power, k)
        beep = self._open
        holds = beep is not None and tonal and same_tone(frequency, float(np.median(beep.frequencies))) \
            and level >= beep.peak_db - FALL_DB
        if holds:
            assert beep is not None
            if level >= beep.peak_db - DIP_DB / 2 and beep.trough_db <= beep.peak_db - DIP_DB:
                return self._split(beep, time, level, frequency, prominence)
            beep.frequencies.append(frequency)
            beep.prominences.append(prominence)
            if level > beep.peak_db:
                beep.peak_db, beep.trough_db = level, np.inf
            elif level < beep.trough_db:
                beep.trough_db, beep.trough_time = level, time
            beep.missed, beep.last = 0, time + HOP_SECONDS
            return []
        if beep is not None and beep.missed < 1:  # one frame's dropout does not end a beep
            beep.missed += 1
            return []
        ended = self._close() if beep is not None else []
        if tonal and not self._ringing(time, level, frequency):
            self._begin(time, time, level, frequency, prominence)
        return ended

    def _begin(self, start: float, time: float, level: float, frequency: float, prominence: float) -> None:
        self._open = _Open(start=start, peak_db=level, frequencies=[frequency], prominences=[prominence],
                           last=time + HOP_SECONDS)

    def _split(self, beep: _Open, time: float, level: float, frequency: float, prominence: float) -> list[Beep]:
        """The tone dipped and came back: the beep ended at the dip, and the next one starts there."""
        beep.last = beep.trough_time
        ended = self._close()
        self._begin(beep.trough_time, time, level, frequency, prominence)
        return ended

    def _ringing(self, time: float, level: float, frequency: float) -> bool:
        """A tone on the last beep's, soon after it and far below its loudest: the room ringing on."""
        return any(time - end < RING_SECONDS and same_tone(frequency, tone) and level < peak - DIP_DB / 2
                   for tone, peak, end in self._rings)

    def _peak_frequency(self, power: np.ndarray, k: int) -> float:
        """The tone's frequency, between bins: a parabola through the log power around the peak bin."""
        if 0 < k < len(power) - 1:
            a, b, c = np.log(power[k - 1 : k + 2])
            shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        else:
            shift = 0.0
        return float(self.freqs[self.band[k]] + shift * self.rate / self.size)

    def _close(self) -> list[Beep]:
        """The open beep, ended; none if it never came near the loudest of a beep on its tone just before
        (the room ringing on, its tone bent by the noise at its start)."""
        beep, self._open = self._open, None
        assert beep is not None
        tone = float(np.median(beep.frequencies))
        if any(beep.start - end < RING_SECONDS and same_tone(tone, ringing) and beep.peak_db < peak - DIP_DB
               for ringing, peak, end in self._rings):
            return []
        self._rings = [*self._rings[-7:], (tone, beep.peak_db, beep.last)]
        return [beep.beep()]


class PatternDetector:
    """Push samples at ``rate``; get a ``PatternHit`` each time one of ``patterns`` completes (quiet after it)."""

    def __init__(self, rate: int, patterns: tuple[AlarmPattern, ...] = (TEMPORAL_THREE, TEMPORAL_FOUR)) -> None:
        self.tones = ToneTracker(rate)
        self.patterns = patterns
        self.beeps: list[Beep] = []
        self._pending: list[tuple[AlarmPattern, list[Beep]]] = []  # matched, waiting for the quiet after them
        self._heard: set[tuple[str, float]] = set()  # (pattern, first beep's start) of the hits so far

    @property
    def seconds(self) -> float:
        return self.tones.seconds

    def push(self, samples: np.ndarray) -> list[PatternHit]:
        return self._hits(self.tones.push(samples), final=False)

    def finish(self) -> list[PatternHit]:
        return self._hits(self.tones.finish(), final=True)

    def _hits(self, beeps: list[Beep], *, final: bool) -> list[PatternHit]:
        shortest = min(p.beep[0] for p in self.patterns) / 2
        for beep in (b for b in beeps if b.seconds >= shortest):
            self.beeps = [b for b in self.beeps if b.end >= beep.start - KEEP_SECONDS][-MAX_BEEPS + 1 :] + [beep]
            self._pending = [(p, group) for p, group in self._pending if not _breaks(beep, p, group)]
            for pattern in self.patterns:
                group = self._ended_by(pattern, beep)
                if group and (pattern.name, group[0].start) not in self._heard:
                    # (a later piece of its last beep replaces it)
                    self._pending = [(p, g) for p, g in self._pending if p != pattern or g[0].start != group[0].start]
                    self._pending.append((pattern, group))
        hits = []
        for pattern, group in list(self._pending):
            last = group[-1]
            if self._sounding(group) - last.end < pattern.quiet:
                self._pending.remove((pattern, group))  # beeping goes on: steady beeping, not this pattern
            elif self.seconds - last.end >= pattern.quiet or final:
                self._pending.remove((pattern, group))
                self._heard = {(name, start) for name, start in self._heard if start >= self.seconds - KEEP_SECONDS}
                self._heard.add((pattern.name, group[0].start))
                hits.append(PatternHit(pattern.name, group[0].start, last.end + pattern.quiet, pattern.explain(group),
                                       float(np.median([b.frequency for b in group]))))
        return hits

    def tone_sounded(self, tone: float, start: float, end: float) -> bool:
        """Whether a beep on ``tone`` sounded at some time between ``start`` and ``end`` (s)."""
        sounding = self.tones.sounding
        return any(same_tone(b.frequency, tone) and b.start < end and b.end > start for b in self.beeps) \
            or (sounding is not None and same_tone(sounding.frequency, tone) and sounding.start < end)

    def _ended_by(self, pattern: AlarmPattern, last: Beep) -> list[Beep]:
        """The pattern's beeps if ``last`` completes it, quiet on their tone before them; else none.

        Fragments far shorter than the pattern's beeps (an onset's click, a reverberant flutter in a gap)
        are neither beeps of it nor a break in its quiet; nor are tones of other sounds."""
        same = [b for b in _joined([b for b in self.beeps if same_tone(b.frequency, last.frequency)], pattern.join)
                if b.seconds >= pattern.beep[0] / 2]
        if not same or same[-1].end != last.end:
            return []
        if len(same) < pattern.beeps or not matches(pattern, group := same[-pattern.beeps :]):
            return self._by_period(pattern, same) if pattern.periodic else []
        earlier = [b for b in same[: -pattern.beeps] if alike(b, group)]
        before = earlier[-1].end if earlier else 0.0  # quiet since the start
        return group if group[0].start - before >= pattern.quiet else []

    def _by_period(self, pattern: AlarmPattern, same: list[Beep]) -> list[Beep]:
        """The pattern's beeps, if the burst of tone that ``same`` (pieces on one tone) ends with repeats its level
        at one of the pattern's periods as many times as the pattern beeps, quiet before it.

        The room cuts each beep into pieces its own way, but as it treats every beep alike, the level at the
        alarm's tone repeats at the alarm's period whatever the pieces."""
        gap = pattern.period[1] - pattern.beep[0]  # pieces of one burst: never further apart than this
        first = len(same) - 1
        while first > 0 and same[first].start - same[first - 1].end < gap:
            first -= 1
        burst = same[first:]
        start, end = burst[0].start, burst[-1].end
        seconds = [b.seconds for b in burst]
        tone = float(np.average([b.frequency for b in burst], weights=seconds))
        if end - start > pattern.beeps * pattern.period[1] + gap \
                or not all(held_pitch(b.frequency, tone) for b in burst) \
                or np.average([b.prominence_db for b in burst], weights=seconds) < PURE_TONE_DB:
            return []
        lags = range(int(round(pattern.period[0] / HOP_SECONDS)), int(round(pattern.period[1] / HOP_SECONDS)) + 1)
        power = self.tones.power(tone, start, end)
        if len(power) < 2 * lags.start + SMOOTH_FRAMES:
            return []
        levels = 10 * np.log10(np.convolve(power, np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES, mode="valid"))
        fits = [(_repeats(levels, lag), lag) for lag in lags if len(levels) >= 2 * lag]
        repeats, lag = max(fits)
        period = lag * HOP_SECONDS
        # its own period, not a multiple of a faster one (a cricket's chirps)
        shorter = max((_repeats(levels, k) for k in range(SMOOTH_FRAMES, lag * 3 // 4)), default=0.0)
        if repeats < REPEATS or shorter >= REPEATS \
                or not pattern.beeps - 0.7 <= (end - start) / period <= pattern.beeps + 0.6 \
                or not _alike_periods(levels, lag) \
                or not pattern.beep[0] <= _sounding_seconds(levels, lag) <= pattern.beep[1]:
            return []
        length = min(float(np.median(seconds)), period * 0.8)
        prominence = float(np.average([b.prominence_db for b in burst], weights=seconds))
        group = [Beep(start + i * period, start + i * period + length, tone, prominence, max(b.peak_db for b in burst))
                 for i in range(pattern.beeps)]
        earlier = [b for b in same[:first] if alike(b, group)]
        before = earlier[-1].end if earlier else 0.0
        return group if start - before >= pattern.quiet else []

    def _sounding(self, group: list[Beep]) -> float:
        """When a beep like ``group``'s (so far) began and is still sounding (else infinity)."""
        sounding = self.tones.sounding
        if sounding is None or not alike(sounding, group, so_far=True):
            return np.inf
        return sounding.start


def _repeats(levels: np.ndarray, lag: int) -> float:
    """How alike the levels are to themselves ``lag`` frames later (correlation), where they rise and fall
    (an unmodulated tone's levels repeat only its noise)."""
    a, b = levels[:-lag], levels[lag:]
    if np.ptp(levels) < DIP_DB or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _periods(levels: np.ndarray, lag: int) -> np.ndarray:
    """The whole periods of ``levels``, one a row."""
    return levels[: len(levels) // lag * lag].reshape(-1, lag)


def _alike_periods(levels: np.ndarray, lag: int) -> bool:
    """Each whole period of ``levels`` peaks as loud as the others after the first (the room treats each beep
    alike; the first has no echoes of one before it) and dips between (a beep and a gap, not a steady tone)."""
    periods = _periods(levels, lag)
    peaks, dips = periods.max(axis=1), periods.min(axis=1)
    return bool(np.ptp(peaks[1:]) <= DIP_DB / 2 and abs(peaks[0] - np.median(peaks[1:])) <= DIP_DB
                and np.all(peaks - dips >= DIP_DB))


def _sounding_seconds(levels: np.ndarray, lag: int) -> float:
    """How long the tone sounds in each whole period of ``levels`` (median): within FALL_DB / 2 of its peak."""
    periods = _periods(levels, lag)
    return float(np.median((periods >= periods.max(axis=1, keepdims=True) - FALL_DB / 2).sum(axis=1))) * HOP_SECONDS


def _joined(beeps: list[Beep], gap: float) -> list[Beep]:
    """Pieces of one tone less than ``gap`` apart, joined into beeps where they sound most of the time (not
    fragments of noise)."""
    out: list[Beep] = []
    sounded: list[float] = []
    for beep in beeps:
        if out and beep.start - out[-1].end < gap and abs(beep.frequency / out[-1].frequency - 1) <= HELD_PITCH \
                and sounded[-1] + beep.seconds >= COVER * (max(out[-1].end, beep.end) - out[-1].start):
            sounded[-1] += beep.seconds
            a = out[-1]
            weights = [a.seconds, beep.seconds]
            out[-1] = Beep(a.start, max(a.end, beep.end),
                           float(np.average([a.frequency, beep.frequency], weights=weights)),
                           float(np.average([a.prominence_db, beep.prominence_db], weights=weights)),
                           max(a.peak_db, beep.peak_db))
        else:
            out.append(beep)
            sounded.append(beep.seconds)
    return out


def _breaks(beep: Beep, pattern: AlarmPattern, group: list[Beep]) -> bool:
    """``beep``, like the group's, comes before the pattern's quiet after it was over."""
    return alike(beep, group) and beep.start - group[-1].end < pattern.quiet


def alike(beep: Beep, group: list[Beep], *, so_far: bool = False) -> bool:
    """``beep`` could be one more of ``group``'s: on their tone, as pure, as long within ``EVEN`` (the steady
    beeping a pattern is not; ``so_far``: a beep still sounding, long enough yet). Tones of other sounds that
    come and go near it (wind, a voice) are not."""
    lengths = [b.seconds for b in group]
    return same_tone(beep.frequency, group[-1].frequency) \
        and beep.prominence_db >= max(PURE_TONE_DB, min(b.prominence_db for b in group) - FALL_DB) \
        and beep.peak_db >= min(b.peak_db for b in group) - DIP_DB \
        and min(lengths) / EVEN <= beep.seconds <= (np.inf if so_far else max(lengths) * EVEN)


def held_pitch(a: float, b: float) -> bool:
    """Two beeps of one horn: their pitch within 1 % (or 8 Hz, as a low tone is read less finely)."""
    return abs(a - b) <= max(HELD_PITCH * b, HELD_PITCH_HZ)


def same_tone(a: float, b: float) -> bool:
    return abs(a / b - 1) <= SAME_TONE


def matches(pattern: AlarmPattern, beeps: list[Beep]) -> bool:
    """The beeps' lengths and the times from one's start to the next within the pattern's ranges and even (an
    alarm keeps time), all on one pure tone (an alarm's horn, not a voice's or a bark's harmonics)."""
    tone = float(np.median([b.frequency for b in beeps]))
    prominences = [b.prominence_db for b in beeps]
    if not all(held_pitch(b.frequency, tone) for b in beeps) or np.median(prominences) < PURE_TONE_DB \
            or min(prominences) < PURE_TONE_DB - DIP_DB:
        return False
    lengths = [b.seconds for b in beeps]
    periods = [b.start - a.start for a, b in zip(beeps, beeps[1:])]
    return (all(pattern.beep[0] <= x <= pattern.beep[1] for x in lengths)
            and max(lengths) <= EVEN_LENGTHS * min(lengths)
            and all(pattern.period[0] <= t <= pattern.period[1] and a.end <= b.start
                    for t, a, b in zip(periods, beeps, beeps[1:]))
            and max(periods) <= EVEN * min(periods))
