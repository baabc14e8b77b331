"""Featurizer: librosa parity (<= 0.01 dB), config validation, windows over clips."""

from __future__ import annotations

from dataclasses import replace

import librosa
import numpy as np
import pytest
import torch

from hearai import audio
from hearai.featureconfig import FeatureConfig
from hearai.features import MFCC, FeatureExtractor, LogMel, build_featurizer, cut_windows
from tests.conftest import sine

TOLERANCE_DB = 0.01


def librosa_logmel(wave: np.ndarray, c: FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
        window=c.window, center=c.center, pad_mode=c.pad_mode, power=c.power, n_mels=c.n_mels,
        fmin=c.fmin, fmax=c.fmax, htk=c.mel_scale == "htk", norm=c.mel_norm,
    )
    return librosa.power_to_db(mel, ref=c.ref, amin=c.amin, top_db=c.top_db)


def librosa_mfcc(wave: np.ndarray, c: FeatureConfig) -> np.ndarray:
    return librosa.feature.mfcc(S=librosa_logmel(wave, c), n_mfcc=c.n_mfcc, dct_type=2, norm="ortho")


def ours(wave: np.ndarray, c: FeatureConfig, dtype: torch.dtype = torch.float32) -> np.ndarray:
    with torch.inference_mode():
        return build_featurizer(c)(torch.from_numpy(wave).to(dtype)).double().numpy()


def synthetic_signal(rate: int) -> np.ndarray:
    """A chirp, two tones, a click train and faint noise: energy across the whole band."""
    t = np.arange(3 * rate) / rate
    chirp = np.sin(2 * np.pi * (100 * t + (rate / 2.5 - 100) / 6 * t**2))
    tones = 0.3 * np.sin(2 * np.pi * 700 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
    clicks = np.zeros_like(t)
    clicks[:: rate // 7] = 1.0
    noise = 1e-3 * np.random.default_rng(0).standard_normal(len(t))
    return (0.4 * chirp + tones + clicks + noise).astype(np.float32)


@pytest.fixture(scope="module")
def esc50_clips(esc50_root, esc50_rows):
    """Eight real clips from eight different classes and all five folds."""
    picked = [row for row in esc50_rows if int(row["target"]) % 7 == 0][::5][:8]
    return [audio.load(esc50_root / "audio" / row["filename"], sample_rate=16_000) for row in picked]


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_logmel_matches_librosa_on_esc50_clips(esc50_clips, mel_scale):
    c = FeatureConfig(mel_scale=mel_scale, top_db=80.0)
    for wave in esc50_clips:
        assert np.abs(ours(wave, c) - librosa_logmel(wave, c)).max() <= TOLERANCE_DB


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_logmel_without_top_db_matches_librosa_in_float64(esc50_clips, mel_scale):
    # With no top_db floor, bins 100+ dB below a frame's peak are float32 FFT rounding noise;
    # in float64 every bin agrees.
    c = FeatureConfig(mel_scale=mel_scale, top_db=None)
    for wave in esc50_clips:
        assert np.abs(ours(wave, c, torch.float64) - librosa_logmel(wave, c)).max() <= TOLERANCE_DB


CONFIGS = {
    "default-16k": FeatureConfig(top_db=80.0),
    "htk-22k": FeatureConfig(
        sample_rate=22_050, n_fft=2048, win_length=2048, hop_length=512, mel_scale="htk", top_db=80.0
    ),
    "hann-short-window-reflect": FeatureConfig(
        window="hann", win_length=640, pad_mode="reflect", n_mels=64, top_db=80.0
    ),
    "no-center-magnitude": FeatureConfig(center=False, power=1.0, n_mels=40, fmin=50.0, fmax=7000.0, top_db=80.0),
    "unnormalized-ref": FeatureConfig(
        mel_norm=None, ref=10.0, amin=1e-5, top_db=60.0, sample_rate=44_100, n_fft=2048, win_length=2048,
        hop_length=441,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logmel_matches_librosa_on_synthetic_signals(name):
    c = CONFIGS[name]
    wave = synthetic_signal(c.sample_rate)
    assert np.abs(ours(wave, c) - librosa_logmel(wave, c)).max() <= TOLERANCE_DB


@pytest.mark.parametrize("rate", [16_000, 22_050])
def test_mfcc_matches_librosa(esc50_clips, rate):
    c = FeatureConfig(kind="mfcc", n_mfcc=40, sample_rate=rate, top_db=80.0)
    resampled = [audio.resample(w, orig_rate=16_000, target_rate=rate) for w in esc50_clips[:3]]
    for wave in [synthetic_signal(rate), *resampled]:
        assert np.abs(ours(wave, c) - librosa_mfcc(wave, c)).max() <= TOLERANCE_DB


def test_batch_equals_one_by_one_and_top_db_is_per_clip():
    c = FeatureConfig(top_db=40.0)
    loud, quiet = sine(1000.0, 2.0, 16_000, 0.9), sine(300.0, 2.0, 16_000, 0.001)
    batch = ours(np.stack([loud, quiet]), c)
    np.testing.assert_allclose(batch[0], ours(loud, c), atol=1e-4)
    np.testing.assert_allclose(batch[1], ours(quiet, c), atol=1e-4)
    for clip in batch:
        assert clip.max() - clip.min() == pytest.approx(40.0, abs=1e-3)


def test_a_tone_lands_in_the_mel_band_that_covers_it():
    c = FeatureConfig()
    logmel = ours(sine(1000.0, 1.0, 16_000), c)
    centres = librosa.mel_frequencies(n_mels=c.n_mels + 2, fmax=8000.0)[1:-1]
    assert abs(centres[logmel.mean(axis=1).argmax()] - 1000.0) < 30.0


def test_output_shapes():
    c = FeatureConfig()
    assert LogMel(c)(torch.zeros(3, 16_000)).shape == (3, 150, 51)
    assert MFCC(replace(c, kind="mfcc"))(torch.zeros(2, 2, 32_000)).shape == (2, 2, 40, 101)
    assert c.n_frames(16_000) == 51 and (c.window_frames, c.window_hop_frames) == (100, 50)


def test_extractor_windows_cover_a_clip():
    c = FeatureConfig()
    extractor = FeatureExtractor(c)
    windows = extractor.windows(sine(600.0, 4.5, 16_000))
    assert windows.shape == (4, 150, 100)
    features = extractor.clip(sine(600.0, 4.5, 16_000))
    torch.testing.assert_close(windows[3], features[:, 126:226])
    torch.testing.assert_close(cut_windows(features, c), windows)
    short = extractor.windows(sine(600.0, 0.32, 16_000))
    assert short.shape == (1, 150, 100)


@pytest.mark.parametrize("workers", [0, 2])
def test_extractor_files_keep_order_and_match_single_clips(esc50_root, esc50_rows, tmp_path, workers):
    import soundfile as sf

    paths = [esc50_root / "audio" / row["filename"] for row in esc50_rows[:19]]
    short = tmp_path / "short.wav"
    sf.write(short, sine(900.0, 0.5, 44_100), 44_100)
    paths.insert(11, short)  # another length and rate, in the middle
    extractor = FeatureExtractor(FeatureConfig())
    features = list(extractor.files(paths, workers=workers))
    assert len(features) == len(paths)
    for path, got in zip(paths, features):
        torch.testing.assert_close(got, extractor.clip(audio.load(path, sample_rate=16_000)))
    assert features[11].shape == (150, 101)


def test_a_bad_file_in_a_worker_raises_its_audio_error(esc50_root, esc50_rows, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio at all" * 10)
    paths = [esc50_root / "audio" / row["filename"] for row in esc50_rows[:20]] + [bad]
    from hearai.errors import AudioError

    with pytest.raises(AudioError, match="bad.wav: not an audio file"):
        list(FeatureExtractor(FeatureConfig()).files(paths, workers=2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    c = FeatureConfig(top_db=80.0)
    wave = torch.from_numpy(synthetic_signal(16_000))
    cpu = LogMel(c)(wave)
    gpu = LogMel(c).cuda()(wave.cuda()).cpu()
    assert (cpu - gpu).abs().max() <= TOLERANCE_DB


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 320), (512, 160), (2048, 441), (400, 100), (17, 5)])
def test_matmul_stft_equals_fft_power(n_fft, hop):
    """The export-friendly STFT (one Cooley-Tukey step in matmuls) is the FFT's power to float rounding."""
    from hearai.features import MatmulStft

    signals = torch.randn(3, 9 * hop + n_fft + 7, dtype=torch.float64)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    frames = signals.unfold(-1, n_fft, hop) * window
    expected = (torch.fft.rfft(frames).abs() ** 2).reshape(-1, n_fft // 2 + 1).T  # (bins, batch * frames)
    got = MatmulStft(n_fft, hop, window)(signals.float()).double()
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=2e-6 * float(expected.max()))


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_featurizer_for_export_matches_the_fft_one(esc50_clips, kind):
    config = FeatureConfig(kind=kind, center=False)
    clips = torch.from_numpy(np.stack([c[: 5 * 16_000] for c in esc50_clips[:3]]))
    fft, matmul = build_featurizer(config)(clips), build_featurizer(config, matmul_dft=True)(clips)
    loud = fft > fft.amax(dim=(-2, -1), keepdim=True) - 60  # float32 rounding matters only far below the peak
    assert (fft - matmul).abs()[loud].max() < 0.01
