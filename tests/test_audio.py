"""Decoding: every format and layout to mono float32 at the requested rate; every bad input named."""

from __future__ import annotations

import csv
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearai import audio
from hearai.errors import AudioError, ConfigError, HearaiError
from tests.conftest import BAD_INPUTS, bad_file, dominant_frequency, sine

# (container, subtype, suffix, how close the decoded RMS must be to the written one)
FORMATS = [
    ("WAV", "PCM_U8", ".wav", 0.02),
    ("WAV", "PCM_16", ".wav", 1e-3),
    ("WAV", "PCM_24", ".wav", 1e-3),
    ("WAV", "PCM_32", ".wav", 1e-3),
    ("WAV", "FLOAT", ".wav", 1e-3),
    ("WAV", "DOUBLE", ".wav", 1e-3),
    ("WAVEX", "PCM_24", ".wav", 1e-3),
    ("WAVEX", "FLOAT", ".wav", 1e-3),
    ("FLAC", "PCM_16", ".flac", 1e-3),
    ("FLAC", "PCM_24", ".flac", 1e-3),
    ("OGG", "VORBIS", ".ogg", 0.05),
    ("MP3", "MPEG_LAYER_III", ".mp3", 0.05),
]


@pytest.mark.parametrize("container,subtype,suffix,tolerance", FORMATS)
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_every_format_and_rate_decodes_to_the_same_tone(tmp_path, container, subtype, suffix, tolerance, rate):
    path = tmp_path / f"tone{suffix}"
    sf.write(path, sine(1000.0, 1.0, rate), rate, format=container, subtype=subtype)
    wave = audio.load(path, sample_rate=16_000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    # MP3 encoders add a short delay/padding; every other codec keeps the exact length.
    assert abs(len(wave) - 16_000) <= (1500 if container == "MP3" else 1)
    assert dominant_frequency(wave, 16_000) == pytest.approx(1000.0, abs=2.0)
    middle = wave[2000:-2000]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), abs=tolerance)


def test_channels_are_averaged(tmp_path):
    left = sine(440.0, 0.5, 16_000)
    stereo = np.stack([left, -left], axis=1)  # opposite phases cancel exactly
    sf.write(tmp_path / "cancel.wav", stereo, 16_000, subtype="FLOAT")
    assert np.abs(audio.load(tmp_path / "cancel.wav", sample_rate=16_000)).max() == 0.0
    quad = np.stack([left, np.zeros_like(left), left, np.zeros_like(left)], axis=1)
    sf.write(tmp_path / "quad.wav", quad, 16_000, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(tmp_path / "quad.wav", sample_rate=16_000), left / 2, atol=1e-7)


def test_info_reads_the_header(tmp_path):
    sf.write(tmp_path / "x.flac", np.zeros((22050, 2), dtype=np.float32), 44100, subtype="PCM_24")
    header = audio.info(tmp_path / "x.flac")
    assert (header.sample_rate, header.channels, header.frames) == (44100, 2, 22050)
    assert (header.format, header.subtype, header.duration) == ("FLAC", "PCM_24", 0.5)


def test_stream_blocks_concatenate_to_load(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "long.wav", rng.standard_normal((44100 * 12, 2)).astype(np.float32) * 0.1, 44100)
    whole = audio.load(tmp_path / "long.wav", sample_rate=16_000)
    blocks = list(audio.stream(tmp_path / "long.wav", sample_rate=16_000, block_seconds=1.0))
    assert len(blocks) >= 12 and all(len(b) <= 16_800 for b in blocks)  # resampler delay shifts a few ms
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_streaming_a_long_file_uses_constant_memory(tmp_path):
    path = tmp_path / "ten_minutes.wav"
    with sf.SoundFile(path, "w", 44100, 1, subtype="PCM_16") as f:
        for _ in range(600):
            f.write(sine(300.0, 1.0, 44100, 0.3))
    tracemalloc.start()
    total = sum(len(block) for block in audio.stream(path, sample_rate=16_000, block_seconds=5.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 600 * 16_000
    # The whole file at 16 kHz float32 is 38 MB; streaming holds a few 5-s blocks at most.
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_raises_audio_error_naming_file_and_cause(tmp_path, kind):
    path = bad_file(kind, tmp_path)
    with pytest.raises(AudioError) as caught:
        audio.load(path, sample_rate=16_000)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert BAD_INPUTS[kind] in message
    assert isinstance(caught.value, HearaiError)
    with pytest.raises(AudioError, match=BAD_INPUTS[kind].split(" (")[0]):
        list(audio.stream(path, sample_rate=16_000, block_seconds=0.5))


def test_bad_rates_are_config_errors(tmp_path):
    sf.write(tmp_path / "ok.wav", sine(440.0, 0.1, 16_000), 16_000)
    for rate in (0, -8000, 16000.5):
        with pytest.raises(ConfigError, match="sample_rate"):
            audio.load(tmp_path / "ok.wav", sample_rate=rate)
    with pytest.raises(ConfigError, match="block_seconds"):
        next(audio.stream(tmp_path / "ok.wav", sample_rate=16_000, block_seconds=0))


def test_find_audio_files_expands_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/readme.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = audio.find_audio_files(tmp_path / "a")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b/y.FLAC", "a/x.wav"]
    with pytest.raises(AudioError, match="not found"):
        audio.find_audio_files(tmp_path / "missing")


def test_every_urbansound8k_sample_clip_loads(us8k_root):
    with open(us8k_root / "metadata" / "UrbanSound8K.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 14
    layouts = set()
    for row in rows:
        path = us8k_root / "audio" / f"fold{row['fold']}" / row["slice_file_name"]
        header = audio.info(path)
        layouts.add((header.sample_rate, header.channels, header.subtype))
        wave = audio.load(path, sample_rate=16_000)
        expected_seconds = float(row["end"]) - float(row["start"])
        assert len(wave) / 16_000 == pytest.approx(expected_seconds, abs=0.01), path.name
        assert np.isfinite(wave).all() and np.abs(wave).max() > 0
    assert len(layouts) >= 4, layouts  # the sample really spans rates, channel counts and encodings


@pytest.mark.slow
def test_every_esc50_clip_loads(esc50_root, esc50_rows):
    assert len(esc50_rows) == 2000
    for row in esc50_rows:
        wave = audio.load(esc50_root / "audio" / row["filename"], sample_rate=16_000)
        assert wave.shape == (80_000,), row["filename"]


# --- hostile and damaged headers -------------------------------------------------------


def _pcm_wav(path: Path, *, declared_rate: int, frames: int = 48_000) -> Path:
    """A 16-bit mono WAV of silence whose header declares ``declared_rate``."""
    fmt = struct.pack("<HHIIHH", 1, 1, declared_rate, (declared_rate * 2) & 0xFFFFFFFF, 2, 16)
    data = np.zeros(frames, np.int16).tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_a_truncated_mp3_decodes_the_same_finite_audio_every_time(tmp_path):
    """soundfile's blocks() handed back unwritten buffer slots after a short read: garbage as audio."""
    full = tmp_path / "tone.mp3"
    sf.write(full, sine(440.0, 6.0, 16_000, amplitude=0.3), 16_000, format="MP3", subtype="MPEG_LAYER_III")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    decoded = []
    for value in (7.0, -3.0, np.nan, 1e30):
        junk = np.full(4_000_000, value, dtype=np.float32)  # freed memory the decoder's buffer may reuse
        del junk
        decoded.append(audio.load(cut, sample_rate=16_000))
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:])
    assert np.isfinite(decoded[0]).all() and np.abs(decoded[0]).max() < 0.35
    assert 30_000 < len(decoded[0]) < 60_000  # the real audio in the first half, not the header's 96,000 frames
    assert len(audio.load(full, sample_rate=16_000)) == 96_000


def test_a_flac_of_unknown_length_decodes_to_its_real_end(tmp_path):
    path = tmp_path / "unknown.flac"
    sf.write(path, sine(440.0, 3.0, 16_000), 16_000)
    data = bytearray(path.read_bytes())
    data[8 + 13] &= 0xF0  # STREAMINFO total_samples (36 bits) := 0, "unknown"
    data[8 + 14 : 8 + 18] = bytes(4)
    path.write_bytes(bytes(data))
    wave = audio.load(path, sample_rate=16_000)
    assert len(wave) == 48_000 and np.allclose(wave, sine(440.0, 3.0, 16_000), atol=1e-4)
    # Its header says nothing of its length: info counts the frames (it said 2**63 - 1, and the
    # server refused the file as "576460752303424 s of audio").
    assert audio.info(path).frames == 48_000 and audio.info(path).duration == pytest.approx(3.0)


def test_pcm_beyond_the_sample_bound_is_refused_as_files_are():
    """Finite 1e38 float PCM passed the NaN check; the network was then blamed for its scores."""
    with pytest.raises(AudioError, match="the PCM holds samples beyond ±10000"):
        audio.decode_pcm(np.full(100, 1e38, dtype="<f4").tobytes(), pcm_format="f32le")
    assert audio.decode_pcm(np.full(100, 9999.0, dtype="<f4").tobytes(), pcm_format="f32le").max() == 9999.0


def test_a_pipe_a_dangling_link_and_a_link_loop_are_named_for_what_they_are(tmp_path):
    """A FIFO was 'file is empty (0 bytes)', a link loop 'file not found'."""
    import os

    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    for name, message in [("pipe.wav", "not a regular file (a pipe, socket or device)"),
                          ("loop.wav", "a symbolic link that leads nowhere (broken, or a loop)"),
                          ("dangling.wav", "a symbolic link that leads nowhere")]:
        with pytest.raises(AudioError, match=re.escape(f"{tmp_path / name}: {message}")):
            audio.load(tmp_path / name, sample_rate=16_000)


@pytest.mark.parametrize("rate", [2, 500, 999, 1_000_000, 2_000_000_000])  # 2 Hz: 48,000 frames -> 384 M samples
def test_a_header_rate_outside_1_to_768_khz_is_refused_before_decoding(tmp_path, rate):
    path = _pcm_wav(tmp_path / "odd.wav", declared_rate=rate)
    with pytest.raises(AudioError, match=f"declares a sample rate of {rate} Hz, outside the 1000-768000 Hz"):
        audio.load(path, sample_rate=16_000)
    assert len(audio.load(_pcm_wav(tmp_path / "ok.wav", declared_rate=8_000), sample_rate=16_000)) == 96_000


def test_float_samples_far_beyond_full_scale_are_refused(tmp_path):
    wave = sine(440.0, 1.0, 16_000)
    wave[5000] = 1e30
    sf.write(tmp_path / "loud.wav", wave, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="sample 1e\\+30 at frame 5000 is beyond ±10000"):
        audio.load(tmp_path / "loud.wav", sample_rate=16_000)
    wave[5000] = 1.5  # a little over full scale is still audio
    sf.write(tmp_path / "hot.wav", wave, 16_000, subtype="FLOAT")
    assert audio.load(tmp_path / "hot.wav", sample_rate=16_000).max() == pytest.approx(1.5)


FUZZ_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                "mp3": ("MP3", "MPEG_LAYER_III")}
FUZZ_CASES_PER_FORMAT = 40
FUZZ_PEAK_BYTES = 64 * 1024 * 1024  # what decoding a damaged 1-s file may allocate (Python and NumPy)


def _mutations(data: bytes, rng: np.random.Generator, count: int) -> list[bytes]:
    """Truncations anywhere, and the header's first 64 bytes overwritten or bit-flipped at random."""
    out = []
    for k in range(count):
        if k % 3 == 0:
            out.append(data[: int(rng.integers(1, len(data)))])
        else:
            damaged = bytearray(data)
            for _ in range(int(rng.integers(1, 6))):
                at = int(rng.integers(0, min(64, len(damaged))))
                damaged[at] = int(rng.integers(0, 256)) if k % 3 == 1 else damaged[at] ^ (1 << int(rng.integers(0, 8)))
            out.append(bytes(damaged))
    return out


@pytest.mark.parametrize("kind", sorted(FUZZ_FORMATS))
def test_fuzzed_files_give_audio_errors_or_finite_bounded_audio(tmp_path, esc50_root, kind):
    """Hostile-input fuzz: no traceback, no NaN, no allocation above FUZZ_PEAK_BYTES."""
    clip = audio.load(esc50_root / "audio" / "1-100032-A-0.flac", sample_rate=16_000)[:16_000]
    fmt, subtype = FUZZ_FORMATS[kind]
    original = tmp_path / f"clip.{kind}"
    sf.write(original, clip, 16_000, format=fmt, subtype=subtype)
    rng = np.random.default_rng(sorted(FUZZ_FORMATS).index(kind))
    outcomes = {"refused": 0, "decoded": 0}
    for k, data in enumerate(_mutations(original.read_bytes(), rng, FUZZ_CASES_PER_FORMAT)):
        path = tmp_path / f"fuzz-{k}.{kind}"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            wave = audio.load(path, sample_rate=16_000)
        except (AudioError, ConfigError):
            outcomes["refused"] += 1
        else:
            outcomes["decoded"] += 1
            assert np.isfinite(wave).all() and np.abs(wave).max() <= 1e4, path
            assert len(wave) < 16_000 * 30, (path, len(wave))
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < FUZZ_PEAK_BYTES, (path, peak)
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == FUZZ_CASES_PER_FORMAT, outcomes
