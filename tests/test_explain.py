"""The featurizer walkthrough on signals with known answers: two tones come back where they were."""

from __future__ import annotations

import numpy as np
import pytest

from hearai.explain import spectral_peaks, two_tones, walk
from hearai.featureconfig import FeatureConfig


@pytest.mark.parametrize("tones", [(440.0, 2500.0), (1000.0, 3000.0), (250.0, 6000.0)])
def test_walkthrough_recovers_tones_within_one_bin(tones):
    config = FeatureConfig()
    result = walk(two_tones(frequencies=tones), config)
    assert len(result.peaks_hz) == 2
    for truth, found in zip(tones, result.peaks_hz):
        assert abs(found - truth) < result.bin_hz
    # The log-mel image shows exactly two bright bands: the bands nearest each tone.
    energy = result.logmel_db.mean(axis=1)
    bright = np.flatnonzero(energy > energy.max() - 6.0)
    assert len(bright) >= 2 and np.diff(bright).max() > 10  # two separate groups


def test_spectral_peaks_picks_the_strongest():
    config = FeatureConfig()
    spectrum = np.full(513, 1e-6)
    spectrum[[30, 100, 200]] = [1.0, 5.0, 3.0]
    assert spectral_peaks(spectrum, config, 2) == [100 * 15.625, 200 * 15.625]
