"""Where windows are cut (hearai.windows): the end-of-clip rule, short clips, crops that equal cached windows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.windows import pad_short_clip, window_starts
from tests.conftest import sine


def test_window_starts_follow_the_documented_rule():
    c = FeatureConfig()  # 100-frame windows, 50-frame hop
    assert window_starts(c.n_frames(5 * 16_000), c) == [0, 50, 100, 150]  # 251 frames: 1 left over
    assert window_starts(c.n_frames(int(4.5 * 16_000)), c) == [0, 50, 100, 126]  # tail covered
    assert window_starts(100, c) == [0]
    with pytest.raises(ConfigError, match="pad the clip"):
        window_starts(99, c)


def test_short_clips_are_padded_to_one_window():
    c = FeatureConfig()
    bark = sine(600.0, 0.3, 16_000)
    repeated = pad_short_clip(bark, c)
    assert len(repeated) == c.window_samples == 32_000
    np.testing.assert_array_equal(repeated[4800:9600], bark)
    silent = pad_short_clip(bark, replace(c, short_clip_pad="zeros"))
    assert np.all(silent[4800:] == 0) and np.array_equal(silent[:4800], bark)
    long_clip = sine(600.0, 3.0, 16_000)
    assert pad_short_clip(long_clip, c) is long_clip
