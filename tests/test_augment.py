"""Augmentation on signals with known answers: mixing ratios, masks, stretch, pitch, noise, batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hearai.augment import AugmentConfig, BatchMaker
from hearai.augment.mixing import bc_weight, mix_logmel, mix_waveforms, mixup, soft_targets
from hearai.augment.spectrogram import logmel_loudness_db, mask_, spec_augment
from hearai.augment.waveform import a_weighting_db, add_noise, loudness_db, pitch_shift, time_stretch
from hearai.data.clips import ClipFeatures, ResidentWindows
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.features import LogMel
from hearai.train import TrainConfig
from tests.conftest import noise_clips

SR = 16_000


def sine(freq: float, seconds: float = 2.0, amplitude: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * torch.pi * freq * t)).float()


def peak_hz(wave: torch.Tensor) -> float:
    spectrum = np.abs(np.fft.rfft(wave.numpy() * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / SR)[spectrum.argmax()])


def amplitude_at(wave: torch.Tensor, freq: float) -> float:
    """Amplitude of a sine at ``freq`` (an exact FFT bin over the whole signal)."""
    spectrum = np.fft.rfft(wave.numpy().astype(np.float64))
    return float(2 * np.abs(spectrum[int(round(freq * len(wave) / SR))]) / len(wave))


def test_a_weighting_matches_the_standard_table():
    # IEC 61672 table values (dB): 100 Hz -19.1, 1 kHz 0.0, 4 kHz +1.0, 10 kHz -2.5
    assert a_weighting_db(np.array([100.0, 1000.0, 4000.0, 10000.0])) == pytest.approx([-19.1, 0.0, 1.0, -2.5], abs=0.1)


def test_loudness_of_a_sine_is_its_weighted_power():
    gains = loudness_db(torch.stack([sine(1000.0), sine(1000.0, amplitude=0.1)]), SR)
    assert gains.tolist() == pytest.approx([-3.01, -23.01], abs=0.02)  # power 1/2 -> -3.01 dB, A(1 kHz) = 0
    assert float(loudness_db(torch.zeros(1, SR), SR)) == -80.0


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.7])
def test_between_class_mix_of_two_sines_has_the_ratio_as_heard_energy_share(ratio):
    """With gain-aware weights the A-weighted energies of the two parts stand as (r / (1 - r))^2."""
    w1, w2 = sine(500.0, amplitude=0.9), sine(3000.0, amplitude=0.05)
    r = torch.tensor([ratio])
    g1, g2 = loudness_db(w1[None], SR), loudness_db(w2[None], SR)
    mixed = mix_waveforms(w1[None], w2[None], r, g1, g2)[0]
    a1, a2 = amplitude_at(mixed, 500.0), amplitude_at(mixed, 3000.0)
    heard = (a1**2 * 10 ** (a_weighting_db(500.0) / 10)) / (a2**2 * 10 ** (a_weighting_db(3000.0) / 10))
    assert heard == pytest.approx((ratio / (1 - ratio)) ** 2, rel=0.01)
    p = float(bc_weight(r, g1, g2))
    assert a1 == pytest.approx(0.9 * p / np.hypot(p, 1 - p), rel=1e-3)  # energy-normalized weights
    labels = soft_targets(torch.tensor([3]), torch.tensor([1]), r, 5)
    assert labels.tolist()[0] == pytest.approx([0, 1 - ratio, 0, ratio, 0]) and float(labels.sum()) == pytest.approx(1)


def test_log_mel_mix_equals_the_log_mel_of_the_mixed_waveforms():
    config = FeatureConfig()
    logmel = LogMel(config)
    w1, w2 = sine(700.0, amplitude=0.5)[None], sine(2500.0, amplitude=0.2)[None]
    r, g1, g2 = torch.tensor([0.3]), torch.tensor([-9.0]), torch.tensor([-16.0])
    inner = slice(2, -2)  # the first and last frames hold both tones' onset clicks, which do interfere
    direct = logmel(mix_waveforms(w1, w2, r, g1, g2))[..., inner]
    mixed = mix_logmel(logmel(w1), logmel(w2), r, g1, g2, amin=config.amin)[..., inner]
    strong = direct > direct.max() - 40  # bands that carry the tones, not the leakage floor
    assert int(strong.any(-1).sum()) >= 4 and (mixed - direct)[strong].abs().max() < 0.01


def test_log_mel_loudness_ranks_like_waveform_loudness():
    config = FeatureConfig()
    logmel = LogMel(config)
    quiet, loud = logmel(sine(1000.0, amplitude=0.01)), logmel(sine(1000.0, amplitude=0.1))
    gains = logmel_loudness_db(torch.stack([quiet, loud])[:, None], config)
    assert float(gains[1] - gains[0]) == pytest.approx(20.0, abs=0.01)


def test_mixup_is_the_convex_combination():
    x1, x2 = torch.full((2, 1, 3, 4), 10.0), torch.full((2, 1, 3, 4), -10.0)
    out = mixup(x1, x2, torch.tensor([0.25, 1.0]))
    assert out[0].unique().tolist() == [-5.0] and out[1].unique().tolist() == [10.0]


def test_masks_cover_exactly_the_requested_rows_and_columns():
    x = torch.zeros(3, 1, 10, 20)
    fill = torch.arange(10, dtype=torch.float32).view(10, 1) + 100
    mask_(x, axis=-2, starts=torch.tensor([0, 4, 9]), widths=torch.tensor([3, 0, 1]), fill=fill)
    masked_rows = [(x[b, 0, :, 0] > 0).nonzero().flatten().tolist() for b in range(3)]
    assert masked_rows == [[0, 1, 2], [], [9]]
    assert x[0, 0, 1].unique().tolist() == [101.0]  # a band's mean fills that band
    mask_(x, axis=-1, starts=torch.tensor([5, 5, 5]), widths=torch.tensor([2, 2, 2]), fill=fill)
    assert (x[1, 0, 0] > 0).nonzero().flatten().tolist() == [5, 6]


def test_spec_augment_masks_stay_within_the_widths_and_leave_the_input_alone():
    x = torch.zeros(64, 1, 150, 100)
    out = spec_augment(x, generator=torch.Generator().manual_seed(0), freq_masks=2, freq_mask_bands=20,
                       time_masks=2, time_mask_frames=10, fill=torch.ones(150, 1))
    assert float(x.abs().sum()) == 0.0
    bands_hit = (out[:, 0].amin(dim=2) > 0).sum(dim=1)  # a whole band masked
    frames_hit = (out[:, 0].amin(dim=1) > 0).sum(dim=1)
    assert int(bands_hit.max()) <= 40 and int(frames_hit.max()) <= 20
    assert int(bands_hit.max()) > 20 and bands_hit.float().mean() > 5  # widths are drawn, not all zero


def test_time_stretch_changes_duration_not_pitch():
    wave = sine(440.0)
    faster = time_stretch(wave, 1.25)
    assert len(faster) == round(len(wave) / 1.25)
    assert peak_hz(faster) == pytest.approx(440.0, abs=SR / len(faster))
    assert float(faster[2000:-2000].pow(2).mean().sqrt()) == pytest.approx(2**-0.5, rel=0.05)


def test_pitch_shift_changes_pitch_not_duration():
    wave = sine(440.0)
    up = pitch_shift(wave, 3.0, SR)
    assert len(up) == len(wave)
    assert peak_hz(up) == pytest.approx(440.0 * 2 ** (3 / 12), abs=SR / len(up))


def test_noise_is_added_at_the_requested_snr():
    wave = sine(1000.0, amplitude=0.3)
    for colour in ("white", "pink", "brown"):
        noisy = add_noise(wave, 12.0, colour, np.random.default_rng(0), SR)
        noise = noisy - wave
        snr = 10 * np.log10(float(wave.pow(2).mean()) / float(noise.pow(2).mean()))
        assert snr == pytest.approx(12.0, abs=0.01)


def _maker(data: ClipFeatures, augment: AugmentConfig, seed: int = 0, device: str = "cpu") -> BatchMaker:
    config = FeatureConfig()
    return BatchMaker(data, data.window_index(config), feature_config=config, augment=augment, n_classes=3,
                      band_mean=torch.cat(list(data.features), 1).mean(1), seed=seed, device=device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("augment", [AugmentConfig(), AugmentConfig.plain(mixing="mixup", spec_augment=True),
                                     AugmentConfig.plain(mixing="bc-waveform", waveform=True)],
                         ids=["default", "mixup-specaugment", "bc-waveform-augmented"])
def test_batches_made_on_the_gpu_equal_those_made_on_the_cpu(augment):
    data = noise_clips()
    on_cpu, on_gpu = _maker(data, augment), _maker(data, augment, device="cuda")
    for rows in (on_cpu.rows[:8], on_cpu.rows[3:11]):
        (x_cpu, y_cpu), (x_gpu, y_gpu) = on_cpu(rows), on_gpu(rows)
        assert x_gpu.is_cuda and y_gpu.is_cuda
        torch.testing.assert_close(y_gpu.cpu(), y_cpu)  # the same draws
        assert (x_gpu.cpu() - x_cpu).abs().max() < 1e-2  # dB: float rounding only


def test_all_switches_off_gives_the_cached_windows_and_class_ids():
    data = noise_clips()
    maker = _maker(data, AugmentConfig.plain())
    rows = maker.rows[[0, 5, 7]]
    x, y = maker(rows)
    assert torch.equal(x, data.windows(rows, FeatureConfig().window_frames))
    assert y.tolist() == data.labels[rows[:, 0]].tolist()


def test_resident_windows_are_the_cached_windows_cut_in_one_gather():
    generator = torch.Generator().manual_seed(0)
    data = ClipFeatures([torch.randn(150, n, generator=generator) for n in (100, 251, 137, 400)],
                        torch.tensor([0, 1, 0, 1]))
    rows = data.window_index(FeatureConfig())  # every window: first, middle, last of clips of 4 lengths
    shuffled = rows[torch.randperm(len(rows), generator=generator)]
    for gather in (False, True):  # slices stacked (a CPU's way), one gather (a GPU's way)
        resident = ResidentWindows(data.features, gather=gather)
        assert torch.equal(resident.windows(rows, 100), data.windows(rows, 100))
        assert torch.equal(resident.windows(shuffled, 100), data.windows(shuffled, 100))


def test_an_unaugmented_audio_crop_featurizes_to_the_cached_window():
    data = noise_clips()
    maker = _maker(data, AugmentConfig.plain(mixing="bc-waveform"))
    rows = maker.rows  # first, middle and last windows of every clip, edges included
    rebuilt = maker._featurize(maker._crops(rows, np.random.default_rng(0)))
    cached = data.windows(rows, FeatureConfig().window_frames)
    assert (rebuilt - cached).abs().max() < 1e-3  # dB


@pytest.mark.parametrize("mixing", ["mixup", "bc-logmel", "bc-waveform"])
def test_mixed_batches_have_distributions_as_labels(mixing):
    data = noise_clips()
    maker = _maker(data, AugmentConfig(mixing=mixing, waveform=mixing == "bc-waveform"))
    x, targets = maker(maker.rows)
    assert x.shape == (len(maker.rows), 1, 150, 100) and torch.isfinite(x).all()
    assert targets.shape == (len(maker.rows), 3) and torch.allclose(targets.sum(1), torch.ones(len(maker.rows)))
    own = targets[torch.arange(len(targets)), data.labels[maker.rows[:, 0]]]
    if mixing.startswith("bc"):  # the rest of the mass sits on one other class
        assert torch.allclose(targets.amax(1), torch.maximum(own, 1 - own), atol=1e-6)
    again, _ = _maker(data, AugmentConfig(mixing=mixing, waveform=mixing == "bc-waveform"))(maker.rows)
    assert torch.equal(x, again)  # same seed, same batch


def test_waveform_augmentation_changes_windows_but_keeps_their_shape():
    data = noise_clips()
    maker = _maker(data, AugmentConfig.plain(waveform=True))
    x, y = maker(maker.rows)
    cached = data.windows(maker.rows, FeatureConfig().window_frames)
    assert x.shape == cached.shape and (x - cached).abs().mean() > 1.0 and torch.isfinite(x).all()


def test_waveform_variants_are_augmented_copies_drawn_once_and_windows_come_from_them_all():
    data = noise_clips()
    augment = AugmentConfig.plain(waveform=True, waveform_variants=3)
    maker = _maker(data, augment)
    n = len(data)
    assert len(maker._lengths) == 4 * n  # the clips, then 3 copies of each
    bank = maker._resident
    for k in range(1, 4):  # each copy is its clip changed: gain, stretch, pitch, noise
        copy = bank.frames[:, bank.offsets[k * n] : bank.offsets[k * n] + 100]
        assert (copy - data.features[0][:, :100]).abs().mean() > 0.5
    x, y = maker(maker.rows)
    assert x.shape == (len(maker.rows), 1, 150, 100) and torch.isfinite(x).all()
    assert y.tolist() == data.labels[maker.rows[:, 0]].tolist()
    again = _maker(data, augment)
    assert torch.equal(again._resident.frames, bank.frames) and torch.equal(again(maker.rows)[0], x)  # seeded
    with pytest.raises(ConfigError, match="waveform_variants needs waveform augmentation"):
        AugmentConfig.plain(waveform_variants=2)
    with pytest.raises(ConfigError, match="from 0 to 64"):
        AugmentConfig.plain(waveform=True, waveform_variants=65)


def test_mixing_needs_what_it_mixes():
    data = noise_clips()
    with pytest.raises(ConfigError, match="decoded"):
        _maker(ClipFeatures(data.features, data.labels), AugmentConfig.plain(waveform=True))
    one_class = ClipFeatures(data.features[:3], data.labels[:3], data.waveforms[:3])
    with pytest.raises(ConfigError, match="two classes"):
        _maker(one_class, AugmentConfig(mixing="bc-logmel"))
    with pytest.raises(ConfigError, match="AugmentConfig.mixing"):
        AugmentConfig(mixing="cutmix")
    with pytest.raises(ConfigError, match="noise_snr_db"):
        AugmentConfig(noise_snr_db=(30.0, 10.0))


def test_train_config_with_augmentation_survives_json():
    config = TrainConfig(augment=AugmentConfig(mixing="bc-waveform", waveform=True, noise_snr_db=(5, 20)))
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.augment.noise_snr_db == (5.0, 20.0)
    with pytest.raises(ConfigError, match="AugmentConfig has no field"):
        TrainConfig.from_dict({"augment": {"cutout": True}})


def test_cli_switches_override_only_what_they_name(tmp_path):
    from hearai.cli import build_parser
    from hearai.cli.training import train_config

    (tmp_path / "aug.json").write_text(json.dumps({"mixing": "mixup", "time_masks": 3, "spec_augment": False}))
    base = ["cv", "--dataset", "esc10", "--root", str(tmp_path), "--out", str(tmp_path / "r")]
    from_file = train_config(build_parser().parse_args([*base, "--augment-config", str(tmp_path / "aug.json")])).augment
    assert (from_file.mixing, from_file.time_masks, from_file.spec_augment) == ("mixup", 3, False)
    assert from_file.scaler  # untouched fields keep their defaults
    switched = train_config(build_parser().parse_args([*base, "--augment-config", str(tmp_path / "aug.json"),
                                                   "--mixing", "none", "--no-scaler"])).augment
    assert (switched.mixing, switched.time_masks, switched.scaler) == ("none", 3, False)
    assert train_config(build_parser().parse_args(base)).augment == AugmentConfig()  # no flags: the default recipe


@pytest.mark.parametrize("fields, message", [
    ({"freq_masks": 10**9}, "freq_masks must be at most 16"),
    ({"time_mask_frames": 10**8}, "time_mask_frames must be at most 10000"),
    ({"stretch": "x"}, "stretch must be a positive number"),
    ({"noise_probability": "a"}, "noise_probability must be a number"),
])
def test_augment_configs_from_files_are_bounded(fields, message):
    """--augment-config is read from a file like any other config: counts that are loops are bounded."""
    with pytest.raises(ConfigError, match=message):
        AugmentConfig.from_dict(fields)


def _soundscape_batches(**mix_changes):
    from hearai.augment.soundscape import SoundscapeBatches, SoundscapeMix
    from hearai.data.clips import ClipFeatures
    from hearai.train import DETECTOR_FEATURES

    bands = DETECTOR_FEATURES.n_mels
    event = torch.full((bands, 80), -100.0)
    event[:, 20:40] = 0.0  # a 0.4-s sound in 1.6 s of digital silence
    other = torch.full((bands, 80), -20.0)
    bed = torch.full((bands, 80), -30.0)  # a steady background
    events = ClipFeatures([event, other], torch.tensor([0, 1]))
    beds = ClipFeatures([bed], torch.tensor([2]))
    mix = SoundscapeMix(**{"bed_probability": 1.0, "overlap_probability": 0.0, "bed_only_probability": 0.0,
                           "shift_probability": 0.0, "snr_db": (15.0, 15.0), "gain_db": 0.0, **mix_changes})
    return SoundscapeBatches(events, beds, feature_config=DETECTOR_FEATURES, mix=mix, n_classes=3,
                             band_mean=torch.zeros(bands), seed=0)


def test_training_soundscape_mixes_mel_power_at_the_snr_and_labels_who_is_heard_where():
    make = _soundscape_batches()
    x, targets = make(torch.tensor([[0, 10]]))  # the event's window from frame 10: its sound at frames 10-30
    assert x.shape == (1, 1, 64, 48) and targets.shape == (1, 48, 3)
    bed_power, event_power = 10 ** -3.0, 10 ** (15 / 10) * 10 ** -3.0  # the event 15 dB over the bed under it
    expected = torch.full((64, 48), -30.0)
    expected[:, 10:30] = 10 * np.log10(bed_power + event_power)
    torch.testing.assert_close(x[0, 0], expected, atol=1e-3, rtol=0)
    on = torch.zeros(48, dtype=torch.bool)
    on[10:30] = True
    assert torch.equal(targets[0, :, 0].bool(), on)  # the event where it sounds
    assert torch.equal(targets[0, :, 2].bool(), ~on)  # the bed where the event does not drown it
    assert not targets[0, :, 1].any()


def test_training_soundscape_moves_onsets_into_the_window_and_keeps_beds_alone_quiet():
    x, targets = _soundscape_batches(shift_probability=1.0)(torch.tensor([[0, 10]]))
    first = int(targets[0, :, 0].nonzero().min())
    assert 1 <= first < 36 and x[0, 0, 0, first - 1] == -30.0 and x[0, 0, 0, first] > -30.0  # an onset inside
    _, targets = _soundscape_batches(bed_probability=0.0, bed_only_probability=1.0)(torch.tensor([[0, 10]]))
    assert not targets[0, :, :2].any() and targets[0, :, 2].all()  # background alone: only its own class
