"""Alarms by their pattern: temporal-three and temporal-four at any tone and rate, under other sounds; nothing
from crickets or steady beeping; fused into the ear's stream as the smoke and carbon-monoxide alarms."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from hearai import audio
from hearai.detect.patterns import PatternDetector

RATE = 32_000


def beeping(freq: float, on: float, off: float, count: int, *, square: bool = False, rate: int = RATE
            ) -> np.ndarray:
    t = np.arange(int(on * rate)) / rate
    wave = np.sin(2 * np.pi * freq * t)
    beep = (np.sign(wave) if square else wave) * 0.3
    return np.concatenate([np.r_[beep, np.zeros(int(off * rate))] for _ in range(count)]).astype(np.float32)


def temporal_three(freq: float, *, square: bool = False, cycles: int = 2, rate: int = RATE) -> np.ndarray:
    cycle = np.r_[beeping(freq, 0.5, 0.5, 3, square=square, rate=rate), np.zeros(rate)]
    return np.tile(cycle, cycles).astype(np.float32)


def temporal_four(freq: float, *, square: bool = False, cycles: int = 2, rate: int = RATE) -> np.ndarray:
    cycle = np.r_[beeping(freq, 0.1, 0.1, 4, square=square, rate=rate), np.zeros(int(4.9 * rate))]
    return np.tile(cycle, cycles).astype(np.float32)


def hits_in(wave: np.ndarray, rate: int = RATE) -> list:
    detector = PatternDetector(rate)
    hits = []
    for start in range(0, len(wave), rate // 10):
        hits += detector.push(wave[start : start + rate // 10])
    return hits + detector.finish()


@pytest.mark.parametrize("freq", [520.0, 3100.0, 3400.0])
@pytest.mark.parametrize("square", [False, True])
def test_both_patterns_are_named_soon_after_their_first_beep_at_any_tone(freq, square):
    lead = np.zeros(int(2.5 * RATE), np.float32)  # quiet before: a stream that starts mid-alarm waits a cycle
    three = hits_in(np.r_[lead, temporal_three(freq, square=square)])
    assert [h.pattern for h in three] == ["temporal-three"] * 2
    assert abs(three[0].onset - 2.5) < 0.05 and three[0].decided - three[0].onset <= 4.5
    assert "3 beeps of 0.5" in three[0].explanation and f"at {freq / 1000:.1f}" in three[0].explanation
    four = hits_in(np.r_[lead, temporal_four(freq, square=square)])
    assert [h.pattern for h in four] == ["temporal-four"] * 2 and four[0].decided - four[0].onset <= 6.0


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100])
def test_any_input_rate(rate):
    wave = soxr.resample(np.r_[np.zeros(2 * RATE), temporal_three(3100.0)], RATE, rate).astype(np.float32)
    assert [h.pattern for h in hits_in(wave, rate)] == ["temporal-three"] * 2


def test_a_pattern_under_rain_at_0_db_is_heard(esc50_root):
    rain = audio.load(esc50_root / "audio" / "1-17367-A-10.flac", sample_rate=RATE)
    alarm = np.r_[np.zeros(int(1.2 * RATE)), temporal_three(3100.0, cycles=1)][: len(rain)]
    alarm = np.r_[alarm, np.zeros(len(rain) - len(alarm))]
    mixed = rain / np.sqrt(np.mean(rain**2)) * np.sqrt(np.mean(alarm**2)) + alarm
    assert [h.pattern for h in hits_in(mixed.astype(np.float32))] == ["temporal-three"]


def test_crickets_insects_and_steady_beeping_are_no_pattern(esc50_root):
    clips = sorted((esc50_root / "audio").glob("*-34.flac")) + sorted((esc50_root / "audio").glob("*-7.flac"))
    assert len(clips) == 80  # crickets and insects
    assert [p.name for p in clips if hits_in(audio.load(p, sample_rate=RATE))] == []
    assert hits_in(beeping(3100.0, 0.3, 0.3, 20)) == []  # steady beeping: an alarm, but no standard pattern
    assert hits_in(beeping(3100.0, 0.5, 0.5, 2)) == []  # two beeps are not three


def test_the_ear_names_t3_the_smoke_alarm_and_t4_the_carbon_monoxide_alarm_once_each(ear):
    from hearai.detect import DetectConfig, start_detector

    for wave, label in ((temporal_three(520.0, square=True, cycles=3), "smoke alarm"),
                        (temporal_four(3100.0, cycles=2), "carbon-monoxide alarm")):
        detector = start_detector(ear, DetectConfig(), sample_rate=16_000)
        stream = soxr.resample(np.r_[np.zeros(3 * RATE), wave, np.zeros(2 * RATE)], RATE, 16_000).astype(np.float32)
        events = [e for start in range(0, len(stream), 1600) for e in detector.push(stream[start : start + 1600])]
        alerts = [e for e in events + detector.flush() if e.offset is None]
        alarms = [e for e in alerts if e.label in ("smoke alarm", "carbon-monoxide alarm")]
        assert [e.label for e in alarms] == [label] and "beeps" in alarms[0].reason
        assert alarms[0].certainty == "very likely" and abs(alarms[0].onset - 3.0) < 0.1


def test_a_long_alarm_is_one_alert_not_one_a_cycle(ear):
    """Five cycles of T4: the network's "alarm or beeping" may come before the pattern is complete, once; after
    that the alarm's beeps are the carbon-monoxide alarm, one alert until it stops."""
    from hearai.detect import DetectConfig, start_detector

    stream = np.r_[np.zeros(3 * RATE), temporal_four(3100.0, cycles=5), np.zeros(2 * RATE)].astype(np.float32)
    detector = start_detector(ear, DetectConfig(), sample_rate=RATE)
    events = [e for start in range(0, len(stream), 3200) for e in detector.push(stream[start : start + 3200])]
    events += detector.flush()
    alerts = [(e.label, round(e.onset)) for e in events if e.offset is None]
    assert alerts in ([("carbon-monoxide alarm", 3)], [("alarm or beeping", 3), ("carbon-monoxide alarm", 3)])
    co = next(e for e in events if e.label == "carbon-monoxide alarm" and e.offset is not None)
    assert 3 + 4 * 5.8 + 0.7 - 0.1 <= co.offset <= len(stream) / RATE  # on until its last beep at least


def test_the_exported_ear_hears_the_pattern_without_torch_in_the_stream(ear, tmp_path):
    """The ONNX ear, one window at a time as a stream scores it (its batch stays free), names T3 by its pattern."""
    from hearai.detect import DetectConfig, start_detector
    from hearai.export import export_onnx
    from hearai.runtime import load_onnx

    exported = load_onnx(export_onnx(ear, tmp_path / "ear.onnx"))
    stream = np.r_[np.zeros(3 * RATE), temporal_three(3100.0), np.zeros(2 * RATE)].astype(np.float32)
    detector = start_detector(exported, DetectConfig(), sample_rate=RATE)
    events = [e for start in range(0, len(stream), 3200) for e in detector.push(stream[start : start + 3200])]
    alerts = [e for e in events + detector.flush() if e.offset is None]
    assert [(e.label, e.certainty) for e in alerts] == [("smoke alarm", "very likely")]
    assert alerts[0].reason.startswith("3 beeps of 0.5") and abs(alerts[0].onset - 3.0) < 0.1


def test_predict_names_an_alarm_by_its_pattern_and_says_why(ear, tmp_path):
    """A recording of a 520 Hz T3 (which AudioSet's labels hardly hear) is a smoke alarm to ``predict`` too;
    steady beeping is no pattern, so nothing is named by one."""
    import soundfile

    from hearai.detect import predict_file

    soundfile.write(tmp_path / "t3.flac", np.r_[np.zeros(2 * RATE), temporal_three(520.0, square=True)], RATE)
    soundfile.write(tmp_path / "beeping.flac", beeping(3100.0, 0.3, 0.3, 12), RATE)
    alarm = predict_file(ear, tmp_path / "t3.flac")
    assert (alarm["label"], alarm["certainty"]) == ("smoke alarm", "very likely")
    assert alarm["probabilities"]["smoke alarm"] == 1.0
    assert alarm["reasons"]["smoke alarm"].startswith("3 beeps of 0.5") and "temporal-three" in alarm["heard"]
    assert "reasons" not in predict_file(ear, tmp_path / "beeping.flac")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_alarm_in_a_ringing_room_is_named_at_its_first_cycle(seed):
    """A room (RT60 0.7 s, its tail as loud as the direct path) fills T4's 0.1-s gaps and rings on after each
    beep: the dips still cut the beeps, the rings make none, so both patterns are named at their first cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.7 * RATE)) / RATE
    tail = rng.normal(size=len(t)) * 10 ** (-3 * t / 0.7)
    room = np.r_[1.0, tail[1:] / np.sqrt(np.sum(tail**2))]
    alarms = ((temporal_three(3100.0), "temporal-three"), (temporal_four(520.0, square=True), "temporal-four"))
    for wave, pattern in alarms:
        dry = np.r_[np.zeros(int(2.5 * RATE)), wave]
        size = 1 << int(np.ceil(np.log2(len(dry) + len(room))))
        wet = np.fft.irfft(np.fft.rfft(dry, size) * np.fft.rfft(room, size), size)[: len(dry)].astype(np.float32)
        hits = hits_in(wet)
        assert [h.pattern for h in hits][:1] == [pattern] and abs(hits[0].onset - 2.5) < 0.05


def test_pure_tones_in_rooms_whose_echoes_cancel_part_of_each_beep_are_named_at_their_first_cycle():
    """A sine's echoes can cancel the sound straight from the horn: a beep's onset sounds louder than the rest
    of it, or its ring louder than the beep, and the room cuts each beep into pieces. Twenty rooms (RT60
    0.3-0.8 s, echoes 0-4 dB below the direct sound), T3 at 520 Hz and T4 at 520 Hz and 3.4 kHz: every alarm
    is named by its pattern at its first cycle."""
    missed = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        rt60, drr_db = rng.uniform(0.3, 0.8), rng.uniform(0.0, 4.0)
        t = np.arange(int(rt60 * RATE)) / RATE
        tail = rng.normal(size=len(t)) * 10 ** (-3 * t / rt60)
        room = np.r_[1.0, tail[1:] * np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))]
        for wave, pattern in ((temporal_three(520.0), "temporal-three"), (temporal_four(3400.0), "temporal-four"),
                              (temporal_four(520.0), "temporal-four")):
            dry = np.r_[np.zeros(int(2.5 * RATE)), wave]
            size = 1 << int(np.ceil(np.log2(len(dry) + len(room))))
            wet = np.fft.irfft(np.fft.rfft(dry, size) * np.fft.rfft(room, size), size)[: len(dry)]
            hits = hits_in(wet.astype(np.float32))
            if [h.pattern for h in hits][:1] != [pattern] or abs(hits[0].onset - 2.5) >= 0.05:
                missed.append((seed, pattern))
    assert missed == []


def test_a_wavering_pitch_or_a_beep_broken_by_noise():
    """Four short tones 0.2 s apart whose pitch wavers by 2-3 % (a hen, a bleating sheep) are no temporal-four:
    a horn holds its pitch. Three 0.5-s beeps each broken for 60 ms (noise, a room) are still temporal-three."""
    lead = np.zeros(int(2.5 * RATE), np.float32)
    wavering = np.concatenate([np.r_[beeping(f, 0.1, 0.1, 1)] for f in (1000.0, 1025.0, 990.0, 1020.0)])
    assert hits_in(np.r_[lead, wavering, np.zeros(3 * RATE, np.float32)]) == []
    broken = temporal_three(3100.0, cycles=1)
    for beep in range(3):
        cut = int((beep + 0.22) * RATE)
        broken[cut : cut + int(0.06 * RATE)] = 0.0
    assert [h.pattern for h in hits_in(np.r_[lead, broken])] == ["temporal-three"]
