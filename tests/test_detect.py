"""Detection: activity, the streaming detector, event tables, DCASE metrics, ``detect`` and ``listen``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from hearai import load
from hearai.data import synth
from hearai.detect import DetectConfig, FrameDetector, StreamingDetector, detect_file, read_ground_truth
from hearai.detect.activity import ActivityTracker
from hearai.detect.metrics import Alert, LabelledEvent, event_based, false_alarms_per_hour, onset_latency, segment_based
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.interface import DETECTOR_FORMATS, SAFETENSORS_FORMAT, ModelHeader, SoundModel
from hearai.train import DETECTOR_FEATURES
from tests.conftest import assert_png, hearai

RATE = 16_000


class ConstantScorer(SoundModel):
    """A stand-in model that always answers 'x' with 0.9: isolates where events are from what they are."""

    def __init__(self) -> None:
        self.header = ModelHeader(format="test", feature_config=FeatureConfig(), labels=("x", "y"), model_name="const")
        self.crops: list[np.ndarray] = []

    def run_crops(self, crops: np.ndarray) -> list[np.ndarray]:
        self.crops.extend(crops)
        return [np.tile(np.array([0.9, 0.1], dtype=np.float32), (len(crops), 1))]


def tone_burst(seconds: float, freq: float = 1000.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, rms: float = 0.01, seed: int = 0) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def run_stream(detector: StreamingDetector, wave: np.ndarray, chunk: int) -> list:
    events = []
    for i in range(0, len(wave), chunk):
        events += detector.push(wave[i : i + chunk])
    return events + detector.flush()


# --- where: activity ------------------------------------------------------------------------------


def test_activity_finds_a_tone_in_noise_to_a_few_hops():
    """Frames are 64 ms long and levels are averaged over 3 hops: boundaries land within ~3 hops (60 ms)."""
    wave = noise(8.0)
    wave[int(3.0 * RATE) : int(4.5 * RATE)] += tone_burst(1.5)
    tracker = ActivityTracker(FeatureConfig(), rise_db=6, fall_db=4.5, merge_gap_seconds=0.5, min_seconds=0.05,
                              floor_seconds=30)
    segments = tracker.push(wave) + tracker.finish()
    assert len(segments) == 1
    assert segments[0].onset == pytest.approx(3.0, abs=0.06) and segments[0].offset == pytest.approx(4.5, abs=0.06)


def test_activity_merges_gaps_shorter_than_the_merge_gap_only():
    wave = noise(10.0)
    for start in (2.0, 2.6, 5.0):  # 0.4 s apart, then 2.2 s
        wave[int(start * RATE) : int((start + 0.2) * RATE)] += tone_burst(0.2)
    tracker = ActivityTracker(FeatureConfig(), rise_db=6, fall_db=4.5, merge_gap_seconds=0.5, min_seconds=0.05,
                              floor_seconds=30)
    segments = tracker.push(wave) + tracker.finish()
    assert [(round(s.onset, 1), round(s.offset, 1)) for s in segments] == [(2.0, 2.8), (5.0, 5.2)]


@pytest.mark.parametrize("background", ["silence", "noise"])
def test_nothing_happens_in_silence_or_steady_noise(background):
    wave = np.zeros(20 * RATE, np.float32) if background == "silence" else noise(20.0, rms=0.05)
    scorer = ConstantScorer()
    assert run_stream(StreamingDetector(scorer), wave, 1600) == [] and scorer.crops == []


# --- the streaming detector ---------------------------------------------------------------------


def test_events_do_not_depend_on_chunk_size_or_input_rate():
    rng = np.random.default_rng([7, 1000, 1])
    wave, _ = synth.make_soundscape(rng, seconds=30.0, events=6)

    def closed(events):
        return [(e.onset, e.offset) for e in events if e.offset is not None]

    reference = closed(run_stream(StreamingDetector(ConstantScorer()), wave, len(wave)))
    assert len(reference) == 6
    for chunk in (333, 16_000):
        assert closed(run_stream(StreamingDetector(ConstantScorer()), wave, chunk)) == reference
    head = wave[: 12 * RATE]  # 7 samples at a time: as ragged as it gets, on a shorter stretch to stay quick
    assert closed(run_stream(StreamingDetector(ConstantScorer()), head, 7)) == closed(
        run_stream(StreamingDetector(ConstantScorer()), head, len(head)))
    import soxr

    resampled = soxr.resample(wave, RATE, 44_100)
    got = closed(run_stream(StreamingDetector(ConstantScorer(), sample_rate=44_100), resampled, 4410))
    assert len(got) == 6 and np.allclose(got, reference, atol=0.05)


def test_each_event_is_announced_at_onset_then_closed_and_within_the_latency_bound():
    wave = noise(12.0)
    wave[int(4.0 * RATE) : int(8.0 * RATE)] += tone_burst(4.0)
    detector = StreamingDetector(ConstantScorer())
    announced = []
    for i in range(0, len(wave), 800):
        for event in detector.push(wave[i : i + 800]):
            announced.append(((i + 800) / RATE, event))
    announced += [(12.0, e) for e in detector.flush()]
    (t_on, start), (t_off, end) = announced
    assert start.offset is None and start.label == "x" and start.onset == pytest.approx(4.0, abs=0.06)
    assert t_on - 4.0 <= detector.latency_bound_seconds + 0.05 and detector.latency_bound_seconds < 1.9
    assert end.offset == pytest.approx(8.0, abs=0.06) and t_off < 12.0


def test_memory_stays_bounded_on_a_long_stream():
    detector = StreamingDetector(ConstantScorer(), record=True)
    block = noise(10.0)
    block[3 * RATE : 4 * RATE] += tone_burst(1.0)
    held = []
    for _ in range(60):  # ten minutes
        detector.push(block)
        held.append(detector.buffer.held_samples)
    assert max(held[5:]) == max(held[-5:]) and max(held) < 12 * RATE
    assert len(detector._activity._history) <= 30 * RATE // 320 + 1


def test_short_streams_and_bad_chunks():
    scorer = ConstantScorer()
    wave = noise(1.2)
    wave[int(0.5 * RATE) : int(0.8 * RATE)] += tone_burst(0.3)
    events = run_stream(StreamingDetector(scorer), wave, 4000)
    assert [(e.label, e.offset is None) for e in events] == [("x", False)] or [e.label for e in events] == ["x", "x"]
    assert all(len(c) == scorer.crops[0].shape[0] for c in scorer.crops)
    detector = StreamingDetector(ConstantScorer())
    with pytest.raises(ConfigError, match="NaN"):
        detector.push(np.array([0.0, np.nan], np.float32))
    detector.flush()
    with pytest.raises(ConfigError, match="flushed"):
        detector.push(np.zeros(10, np.float32))
    with pytest.raises(ConfigError, match="does not know: rain"):
        StreamingDetector(ConstantScorer(), DetectConfig(ignore=("rain",)))
    with pytest.raises(ConfigError, match="release <= threshold"):
        DetectConfig(threshold=0.3, release=0.5)


# --- metrics: equal to sed_eval -------------------------------------------------------------------


def _random_events(rng: np.random.Generator, files: int, labels: tuple[str, ...], n: int) -> list[LabelledEvent]:
    events = []
    for _ in range(n):
        onset = float(np.round(rng.uniform(0, 50), 2))
        events.append(LabelledEvent(f"f{rng.integers(files)}.wav", str(rng.choice(labels)), onset,
                                    float(np.round(onset + rng.uniform(0.1, 4), 2))))
    return events


@pytest.mark.parametrize("seed", range(4))
def test_metrics_equal_sed_eval(seed):
    import dcase_util
    import sed_eval

    rng = np.random.default_rng(seed)
    labels = ("dog", "siren", "knock")
    reference = _random_events(rng, 3, labels, 40)
    # Estimates: jittered copies of most references, some relabelled, plus spurious events.
    estimated = []
    for e in reference:
        if rng.random() < 0.8:
            label = e.label if rng.random() < 0.85 else str(rng.choice(labels))
            onset = max(0.0, e.onset + rng.normal(0, 0.15))
            estimated.append(LabelledEvent(e.file, label, onset, max(onset + 0.05, e.offset + rng.normal(0, 0.3))))
    estimated += _random_events(rng, 3, labels, 8)

    def container(events):
        return dcase_util.containers.MetaDataContainer(
            [{"filename": e.file, "event_label": e.label, "onset": e.onset, "offset": e.offset} for e in events])

    ours_event = event_based(reference, estimated, collar=0.2, offset_ratio=0.2)
    ours_segment = segment_based(reference, estimated, segment=1.0)
    theirs_event = sed_eval.sound_event.EventBasedMetrics(list(labels), t_collar=0.2, percentage_of_length=0.2)
    theirs_segment = sed_eval.sound_event.SegmentBasedMetrics(list(labels), time_resolution=1.0)
    ref, est = container(reference), container(estimated)
    for file in sorted({e.file for e in reference} | {e.file for e in estimated}):
        theirs_event.evaluate(ref.filter(filename=file), est.filter(filename=file))
        theirs_segment.evaluate(ref.filter(filename=file), est.filter(filename=file))
    event_overall = theirs_event.results_overall_metrics()
    segment_overall = theirs_segment.results_overall_metrics()
    assert ours_event["f1"] == pytest.approx(event_overall["f_measure"]["f_measure"], abs=1e-4)
    assert ours_segment["f1"] == pytest.approx(segment_overall["f_measure"]["f_measure"], abs=1e-4)
    assert ours_segment["error_rate"] == pytest.approx(segment_overall["error_rate"]["error_rate"], abs=1e-4)


# --- the model in the loop: synthetic soundscapes -------------------------------------------------


def test_detect_on_synthetic_soundscapes_reaches_event_f1_088(synth_model, tmp_path):
    truth = synth.generate_soundscapes(tmp_path / "scapes", count=8, seed=11, progress=False)
    done = hearai("detect", str(synth_model), str(tmp_path / "scapes"), "--out", str(tmp_path / "events.csv"),
                  "--plot", str(tmp_path / "plots"), "--evaluate", str(truth), timeout=600)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert scores["files"] == 8 and scores["event_based"]["n_reference"] == 48
    # CPU training is reproducible per thread count, not across them: this model scores 0.896 trained
    # on one thread (as under make test), above 0.9 on two.
    assert scores["event_based"]["f1"] >= 0.88, scores
    assert scores["segment_based"]["f1"] >= 0.85 and scores["segment_based"]["error_rate"] <= 0.25, scores
    with open(tmp_path / "events.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "label", "onset", "offset", "confidence"]
    assert all(0 <= float(r["onset"]) < float(r["offset"]) <= 30.0 and r["label"] in synth.LABELS for r in rows)
    assert_png(tmp_path / "plots" / "soundscape-000.png")


def test_onnx_model_detects_what_the_torch_model_detects(synth_model, tmp_path):
    from hearai.runtime import load_onnx

    assert hearai("export", str(synth_model), "--onnx", str(tmp_path / "m.onnx")).returncode == 0
    truth = synth.generate_soundscapes(tmp_path / "scapes", count=1, seed=12, progress=False)
    torch_events = detect_file(load(synth_model), truth.parent / "soundscape-000.wav").events
    onnx_events = detect_file(load_onnx(tmp_path / "m.onnx"), truth.parent / "soundscape-000.wav").events
    assert [(e.label, e.onset, e.offset) for e in onnx_events] == [(e.label, e.onset, e.offset) for e in torch_events]
    assert np.allclose([e.confidence for e in onnx_events], [e.confidence for e in torch_events], atol=1e-4)
    # The CLI with an ONNX model never needs torch: run it where importing torch fails.
    no_torch = ("import sys; sys.modules['torch'] = None; from hearai.cli import main; "
                "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", no_torch, "detect", str(tmp_path / "m.onnx"),
                           str(truth.parent / "soundscape-000.wav"), "--out", str(tmp_path / "e.json"), "--plot",
                           str(tmp_path / "t.png")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "t.png")
    payload = json.loads((tmp_path / "e.json").read_text())
    assert len(payload["files"][0]["events"]) == len(torch_events) and payload["detect_config"]["threshold"] is None


# --- hearai listen --------------------------------------------------------------------------------


def _siren_stream() -> tuple[np.ndarray, float]:
    return synth.event_in_noise("siren", seconds=10.0, onset=4.0, sample_rate=RATE), 4.0


def test_listen_stdin_alerts_a_siren_within_the_stated_latency(synth_model):
    wave, onset = _siren_stream()
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    process = subprocess.Popen([sys.executable, "-m", "hearai.cli", "listen", str(synth_model), "--stdin", "--rate",
                                str(RATE), "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    banner = process.stderr.readline().decode()  # printed once the model is loaded
    assert "This model's alert latency was not measured." in banner, banner  # a model of the user's own
    lines: list[tuple[float, dict]] = []

    def read() -> None:
        for line in process.stdout:
            lines.append((time.monotonic(), json.loads(line)))

    reader = threading.Thread(target=read)
    reader.start()
    chunk = RATE // 10 * 2
    started = time.monotonic()
    for i in range(0, len(pcm), chunk):  # real-time pace: 0.1 s of audio every 0.1 s
        process.stdin.write(pcm[i : i + chunk])
        process.stdin.flush()
        time.sleep(max(0.0, started + (i + chunk) / 2 / RATE - time.monotonic()))
    process.stdin.close()
    assert process.wait(timeout=60) == 0, process.stderr.read().decode()
    reader.join()
    alerts = [(t, e) for t, e in lines if e["offset"] is None]
    assert [e["label"] for _, e in alerts] == ["siren"], lines
    wall, event = alerts[0]
    assert event["onset"] == pytest.approx(onset, abs=0.2)
    assert wall - (started + onset) <= 1.8 + 0.5  # the stated bound, plus compute and pipe slack
    assert [e["label"] for _, e in lines if e["offset"] is not None] == ["siren"]


@pytest.mark.parametrize("background", ["silence", "noise"])
def test_listen_stdin_prints_nothing_for_silence_or_noise(synth_model, background):
    wave = np.zeros(8 * RATE, np.float32) if background == "silence" else _siren_stream()[0][: 4 * RATE]
    done = subprocess.run([sys.executable, "-m", "hearai.cli", "listen", str(synth_model), "--stdin", "--rate",
                           str(RATE)], input=(wave * 32767).astype("<i2").tobytes(), capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stdout == b"", done.stderr


def test_listen_plays_a_file_and_converts_other_rates(synth_model, tmp_path):
    wave, onset = _siren_stream()
    sf.write(tmp_path / "siren.wav", np.repeat(wave[:, None], 2, axis=1), RATE, subtype="PCM_24")
    done = hearai("listen", str(synth_model), str(tmp_path / "siren.wav"))
    assert done.returncode == 0 and "ALERT  siren" in done.stdout and "ended  siren" in done.stdout, done
    import soxr

    pcm = (soxr.resample(wave, RATE, 48_000) * 2**31 * 0.9).astype("<i4").tobytes()
    done = subprocess.run([sys.executable, "-m", "hearai.cli", "listen", str(synth_model), "--stdin", "--rate",
                           "48000", "--format", "s32le", "--json"], input=pcm, capture_output=True, timeout=120)
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [e["label"] for e in events] == ["siren", "siren"] and abs(events[0]["onset"] - onset) <= 0.2


@pytest.mark.parametrize("case", ["empty-stdin", "no-rate", "zero-rate", "two-sources", "no-source", "corrupt-file",
                                  "truncated-onnx", "unknown-label", "bad-truth"])
def test_bad_input_is_one_clear_line(tiny_model, tmp_path, case):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (tmp_path / "cut.onnx").write_bytes(b"\x08\x07\x12\x04onnx" + b"\x00" * 50)
    (tmp_path / "truth.csv").write_text("file,label,onset\nx.wav,siren,1\n")
    model = str(tiny_model)
    args, stdin, expected = {
        "empty-stdin": (["listen", model, "--stdin", "--rate", "16000"], b"", "0 bytes of PCM"),
        "no-rate": (["listen", model, "--stdin"], b"\x00\x00", "--stdin needs --rate"),
        "zero-rate": (["listen", model, "--stdin", "--rate", "0"], b"\x00\x00", "between 4000 and 384000"),
        "two-sources": (["listen", model, str(tmp_path / "bad.wav"), "--stdin", "--rate", "16000"], b"",
                        "exactly one source"),
        "no-source": (["listen", model], b"", "exactly one source"),
        "corrupt-file": (["detect", model, str(tmp_path / "bad.wav")], b"", "bad.wav"),
        "truncated-onnx": (["detect", str(tmp_path / "cut.onnx"), str(tmp_path / "bad.wav")], b"", "cut.onnx"),
        "unknown-label": (["detect", model, str(tmp_path / "bad.wav"), "--ignore", "rain"], b"", "no sound 'rain'"),
        "bad-truth": (["detect", model, str(tmp_path / "bad.wav"), "--evaluate", str(tmp_path / "truth.csv")], b"",
                      "missing offset"),
    }[case]
    done = subprocess.run([sys.executable, "-m", "hearai.cli", *args], input=stdin, capture_output=True, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2 and expected in err and "Traceback" not in err, err
    assert [line for line in err.splitlines() if not line.startswith("listening (")] == [err.splitlines()[-1]], err


def test_microphone_without_portaudio_is_explained(monkeypatch):
    """Where libportaudio2 is missing, importing sounddevice raises OSError: the user gets the fix."""
    from hearai.detect import listen

    class NoPortAudio:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(ConfigError, match="apt install libportaudio2"):
        listen.microphone_chunks(device=0, rate=RATE)
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed at all
    with pytest.raises(ConfigError, match="pip install sounddevice"):
        listen.microphone_chunks(device=0, rate=RATE)


@pytest.mark.parametrize("fields, message", [
    ({"thresholds": {"siren": 0.5}}, "thresholds\\['siren'\\] must be \\[threshold, release\\], got 0.5"),
    ({"thresholds": [0.5, 0.3]}, "must map labels"),
    ({"floor_seconds": 1e9}, "floor_seconds must be at most 600"),
    ({"threshold": "x"}, "threshold must be a number or null"),
    ({"ignore": "rain"}, "ignore must be a list of labels"),
])
def test_detect_configs_from_files_are_checked(fields, message):
    """A scalar per-class threshold gave a traceback; a huge floor_seconds a huge history."""
    with pytest.raises(ConfigError, match=message):
        DetectConfig.from_dict(fields)


def test_ground_truth_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_bytes(b"file,label,onset,offset\n\xff\xfe.wav,siren,1,2\n")
    with pytest.raises(ConfigError, match="truth.csv: not a readable UTF-8 CSV file"):
        read_ground_truth(path)


def test_onset_latency_and_false_alarms_have_known_answers():
    truth = [LabelledEvent("a.wav", "dog", 1.0, 2.0), LabelledEvent("a.wav", "siren", 5.0, 9.0),
             LabelledEvent("a.wav", "dog", 12.0, 12.5), LabelledEvent("b.wav", "dog", 1.0, 2.0)]
    alerts = [Alert("a.wav", "dog", 1.1, 1.6), Alert("a.wav", "dog", 1.5, 1.9),  # the first counts: 0.6 s
              Alert("a.wav", "siren", 6.0, 6.8),  # inside the siren: 1.8 s after it began
              Alert("a.wav", "dog", 20.0, 20.5),  # belongs to no dog: not a latency
              Alert("b.wav", "siren", 1.0, 1.4)]  # wrong label: b's dog is missed
    latency = onset_latency(truth, alerts)
    assert latency["alerted"] == 2 and latency["missed"] == 2
    assert latency["median"] == pytest.approx(1.2) and latency["max"] == pytest.approx(1.8)
    assert latency["p95"] == pytest.approx(0.6 + 0.95 * 1.2)
    estimated = [LabelledEvent("a.wav", "dog", 1.2, 1.8), LabelledEvent("a.wav", "dog", 20.0, 21.0),
                 LabelledEvent("a.wav", "siren", 0.0, 0.5), LabelledEvent("b.wav", "dog", 1.9, 3.0)]
    alarms = false_alarms_per_hour(truth, estimated, seconds=1800.0)
    assert alarms == {"false_alarms": 2, "hours": 0.5, "per_hour": 4.0, "by_label": {"dog": 1, "siren": 1}}
    more = [*estimated, LabelledEvent("b.wav", "siren", 5.0, 6.0), LabelledEvent("b.wav", "siren", 8.0, 9.0)]
    assert false_alarms_per_hour(truth, more, seconds=1800.0)["by_label"] == {"siren": 3, "dog": 1}


def test_detect_file_records_when_each_alert_was_announced(tmp_path):
    wave = noise(12.0)
    wave[5 * RATE : 7 * RATE] += tone_burst(2.0)
    sf.write(tmp_path / "tone.wav", wave, RATE)
    model = ConstantScorer()
    live = detect_file(model, tmp_path / "tone.wav", live=True)
    assert [a[0] for a in live.alerts] == ["x"] and live.alerts[0][1] == pytest.approx(5.0, abs=0.1)
    bound = StreamingDetector(model).latency_bound_seconds
    assert 0 < live.alerts[0][2] - 5.0 <= bound + 0.1 + 1e-6  # announced within the bound plus one block
    offline = detect_file(model, tmp_path / "tone.wav")
    assert offline.alerts[0][2] == 10.0  # 5-s blocks: known only to the end of the block
    assert [(e.label, e.onset, e.offset) for e in live.events] == [(e.label, e.onset, e.offset) for e in offline.events]


class ToneDetector(SoundModel):
    """A stand-in detector: 'low' sounds in an 80-ms frame holding a 500-Hz tone, 'high' in one holding 3 kHz."""

    def __init__(self, thresholds: dict[str, tuple[float, float]] | None = None) -> None:
        self.header = ModelHeader(format=DETECTOR_FORMATS[SAFETENSORS_FORMAT], feature_config=DETECTOR_FEATURES,
                                  labels=("low", "high"), model_name="tones", frames_per_window=12,
                                  thresholds=thresholds or {})

    def run_crops(self, crops: np.ndarray) -> list[np.ndarray]:
        context, frame = DETECTOR_FEATURES.n_fft // 2, 4 * DETECTOR_FEATURES.hop_length  # 1280 samples: 80 ms
        frames = crops[:, context : context + 12 * frame].reshape(len(crops), 12, frame)
        spectrum = np.abs(np.fft.rfft(frames, axis=2)) / (frame / 2)  # a full-frame tone of amplitude a reads a
        scores = np.clip(spectrum[..., [40, 240]] / 0.05, 0.0, 1.0).astype(np.float32)  # 12.5-Hz bins: 500, 3000 Hz
        return [scores.max(axis=1), scores]


def _tone(seconds: float, start: float, end: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.where((t >= start) & (t < end), 0.3 * np.sin(2 * np.pi * freq * t), 0.0).astype(np.float32)


def test_frame_detector_reports_two_overlapping_sounds_within_a_frame_and_alerts_within_its_bound():
    wave = _tone(4.0, 1.5, 3.0, 500.0) + _tone(4.0, 2.0, 3.5, 3000.0)
    detector = FrameDetector(ToneDetector({"low": (0.6, 0.3)}), sample_rate=RATE)
    assert detector.latency_bound_seconds == pytest.approx(0.24 + 0.08 + 0.032)
    events, announced = [], {}
    for start in range(0, len(wave), RATE // 10):  # 0.1-s chunks, as a microphone delivers
        for event in detector.push(wave[start : start + RATE // 10]):
            events.append(event)
            announced.setdefault(event.label, detector.seconds)
    events += detector.flush()
    ended = {e.label: e for e in events if e.offset is not None}
    assert sorted(ended) == ["high", "low"] and len(events) == 4  # each sound once: one alert, one end
    assert abs(ended["low"].onset - 1.5) <= 0.08 and abs(ended["low"].offset - 3.0) <= 0.08
    assert abs(ended["high"].onset - 2.0) <= 0.08 and abs(ended["high"].offset - 3.5) <= 0.08
    for label, event in ended.items():  # alerted no later than the bound (plus one chunk) after the onset
        assert announced[label] - event.onset <= detector.latency_bound_seconds + 0.1


def test_frame_detector_keeps_quiet_on_silence_and_holds_little_audio():
    detector = FrameDetector(ToneDetector(), sample_rate=RATE, record=True)
    for _ in range(100):  # 10 s of near-silence
        assert detector.push(np.full(RATE // 10, 1e-4, dtype=np.float32)) == []
    assert detector.flush() == [] and detector.buffer.held_samples < 2 * DETECTOR_FEATURES.window_samples
    steps = np.diff(detector.times)  # every frame decided once; the stream's last window is aligned with its end
    assert len(detector.times) == 125 and np.allclose(steps[:-2], 0.08) and np.all((steps > 0.079) & (steps < 0.16))


def test_sensitivity_moves_a_sounds_thresholds_in_log_odds():
    calibrated = {"low": (0.7, 0.35)}
    assert DetectConfig(sensitivity={"low": 1}).pair("low", calibrated) == pytest.approx((0.4618, 0.1654), abs=1e-4)
    assert DetectConfig(sensitivity={"high": -1}).pair("high", calibrated) == pytest.approx((0.7311, 0.5381), abs=1e-4)
    assert DetectConfig(sensitivity={"high": 0}).pair("high", calibrated) == (0.5, 0.3)
    config = DetectConfig(sensitivity={"low": 2.5})
    assert DetectConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"sensitivity\['low'\] must be a number from -3 to 3"):
        DetectConfig(sensitivity={"low": 4})
    with pytest.raises(ConfigError, match="does not know: bark"):
        DetectConfig(sensitivity={"bark": 1}).check_labels(("low", "high"))


def test_a_stream_retuned_to_high_sensitivity_hears_a_quiet_sound_it_missed():
    quiet = 0.02 / 0.3 * _tone(3.0, 1.0, 2.0, 500.0)  # scores 0.4: under the default 0.5
    heard = []
    for sensitivity in ({}, {"low": 1.0}):
        detector = FrameDetector(ToneDetector(), sample_rate=RATE)
        detector.retune(sensitivity)
        heard.append([e.label for e in detector.push(quiet) + detector.flush()])
    assert heard == [[], ["low", "low"]]  # its start, then its end
    with pytest.raises(ConfigError, match="does not know: bark"):
        detector.retune({"bark": 1})
    assert detector.config.sensitivity == {"low": 1.0}  # a refused change leaves it as it was


def test_thresholds_come_from_the_config_then_the_model_then_the_default():
    calibrated = {"low": (0.7, 0.35)}
    assert DetectConfig().pair("low", calibrated) == (0.7, 0.35)
    assert DetectConfig().pair("high", calibrated) == (0.5, 0.3)
    assert DetectConfig(threshold=0.4).pair("low", calibrated) == (0.4, 0.3)
    assert DetectConfig(thresholds={"low": (0.9, 0.1)}, threshold=0.4).pair("low", calibrated) == (0.9, 0.1)
    with pytest.raises(ConfigError, match="release needs a threshold"):
        DetectConfig(release=0.2)


def test_timelines_draw_each_sounds_own_threshold_and_keep_the_legend_off_the_curves():
    import matplotlib.pyplot as plt

    from hearai.plots import timeline_figure

    times = np.arange(0, 10, 0.1)
    scores = np.stack([0.9 * (times > 5), 0.25 * np.ones_like(times), 0.01 * np.ones_like(times)], axis=1)
    figure = timeline_figure(times, scores, ["siren", "dog", "cat"], [("siren", 5.0, 10.0, 0.9)], title="t",
                             thresholds={"siren": 0.6, "dog": 0.18, "cat": 0.5})
    top = figure.axes[0]
    curves = {line.get_label(): line for line in top.get_lines() if not line.get_label().startswith("_")}
    assert set(curves) == {"siren", "dog"}  # the dog reaches its own 0.18; the cat never its 0.5
    dashed = [line for line in top.get_lines() if line.get_linestyle() == "--"]
    assert sorted((line.get_ydata()[0], line.get_color()) for line in dashed) == sorted(
        (threshold, curves[label].get_color()) for label, threshold in (("siren", 0.6), ("dog", 0.18)))
    figure.canvas.draw()
    legend, axes = top.get_legend().get_window_extent(), top.get_window_extent()
    assert legend.x0 >= axes.x1  # beside the curves, never over them
    plt.close(figure)
