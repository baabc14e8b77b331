"""From window rows to an augmented training batch: crops, waveform augmentation, mixing, masks.

Without augmentation a batch is the cached feature windows and their class ids, drawing no
random numbers, so switching every ingredient off reproduces plain training exactly. With
waveform augmentation (or waveform BC mixing) each window is cut from the decoded clip with the
featurizer's context on both sides (``window_crops``, as the exported model and the runtime cut
them) and featurized on the fly, so an unaugmented crop gives the cached window back.
"""

from __future__ import annotations

import numpy as np
import torch

from hearai.augment import waveform as wave_aug
from hearai.augment.config import AugmentConfig
from hearai.augment.mixing import mix_logmel, mix_waveforms, mixup, soft_targets
from hearai.augment.spectrogram import logmel_loudness_db, spec_augment
from hearai.data.clips import ClipFeatures, ResidentWindows
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor, build_crop_featurizer
from hearai.windows import centre_pad, crop_samples, window_crops


class BatchMaker:
    """Callable: rows (batch, 2) of (clip, first frame) -> (inputs (batch, 1, F, T), targets), on ``device``.

    Targets are class ids (batch,) when nothing mixes, else label distributions (batch, classes).
    All randomness comes from ``generator`` (its state is checkpointed, so resumed runs replay it).
    Random draws and waveform augmentation happen on the CPU; the clips' features live on ``device``
    (``ResidentWindows``), where windows are cut, featurized, mixed and masked (a GPU does them far
    faster than one CPU thread, and nothing is copied to it per step but the rows to cut).
    """

    def __init__(self, data: ClipFeatures, rows: torch.Tensor, *, feature_config: FeatureConfig, augment: AugmentConfig,
                 n_classes: int, band_mean: torch.Tensor, seed: int, device: str | torch.device = "cpu") -> None:
        if augment.needs_waveforms and data.waveforms is None:
            raise ConfigError("waveform augmentation and bc-waveform mixing need the decoded training clips")
        if augment.mixing == "bc-logmel" and feature_config.kind != "logmel":
            raise ConfigError("AugmentConfig.mixing 'bc-logmel' needs log-mel features (FeatureConfig.kind 'logmel')")
        if augment.mixing.startswith("bc") and len(data.labels.unique()) < 2:
            raise ConfigError("between-class mixing needs training clips of at least two classes")
        self.data, self.rows, self.augment, self.n_classes = data, rows, augment, n_classes
        self.feature_config = feature_config
        self.device = torch.device(device)
        self.fill = band_mean.reshape(-1, 1).to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        self._variants = augment.waveform_variants
        bank = [*data.features, *(self._augmented_copies() if self._variants else [])]
        self._resident = ResidentWindows(bank, self.device)
        self._lengths = torch.tensor([f.shape[-1] for f in bank])
        labels = data.labels[rows[:, 0]]
        self._by_class = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=n_classes)
        self._class_start, self._class_count = torch.cumsum(counts, 0) - counts, counts
        if augment.needs_waveforms:
            self._featurizer = build_crop_featurizer(feature_config).to(self.device)
            self._crop_length = crop_samples(feature_config)

    def __call__(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.augment
        labels = self.data.labels[chunk[:, 0]]
        if a.mixing == "none" and not a.waveform and not a.spec_augment:
            return self._resident.windows(chunk, self.feature_config.window_frames), labels.to(self.device)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
        if a.mixing == "none":
            x, targets = self._windows(chunk, rng), labels
        else:
            partner = self._partners(labels, rng, other_class=a.mixing.startswith("bc"))
            ratio = torch.from_numpy(rng.beta(a.mixup_alpha, a.mixup_alpha, len(chunk)) if a.mixing == "mixup"
                                     else rng.uniform(0.0, 1.0, len(chunk))).float()
            targets = soft_targets(labels, self.data.labels[partner[:, 0]], ratio, self.n_classes)
            if a.mixing == "bc-waveform":
                w1, w2 = self._crops(chunk, rng), self._crops(partner, rng)
                rate = self.feature_config.sample_rate
                mixed = mix_waveforms(w1, w2, ratio, wave_aug.loudness_db(w1, rate), wave_aug.loudness_db(w2, rate))
                x = self._featurize(mixed)
            else:
                x1, x2 = self._windows(chunk, rng), self._windows(partner, rng)
                ratio = ratio.to(self.device)
                if a.mixing == "mixup":
                    x = mixup(x1, x2, ratio)
                else:
                    gains = logmel_loudness_db(x1, self.feature_config), logmel_loudness_db(x2, self.feature_config)
                    x = mix_logmel(x1, x2, ratio, *gains, amin=self.feature_config.amin)
        if a.spec_augment:
            x = spec_augment(x, generator=self.generator, freq_masks=a.freq_masks, freq_mask_bands=a.freq_mask_bands,
                             time_masks=a.time_masks, time_mask_frames=a.time_mask_frames, fill=self.fill)
        return x, targets.to(self.device)

    def _partners(self, labels: torch.Tensor, rng: np.random.Generator, *, other_class: bool) -> torch.Tensor:
        """One partner row per example: any row, or (BC) a row of another class, uniformly."""
        if not other_class:
            return self.rows[torch.from_numpy(rng.integers(0, len(self.rows), len(labels)))]
        start, count = self._class_start[labels], self._class_count[labels]
        k = torch.from_numpy((rng.random(len(labels)) * (len(self.rows) - count).numpy()).astype(np.int64))
        k = torch.where(k >= start, k + count, k)  # skip the example's own class block
        return self.rows[self._by_class[k]]

    def _augmented_copies(self) -> list[torch.Tensor]:
        """``waveform_variants`` augmented copies of every clip, featurized: copy k of clip c at k * clips + c.

        (bc-waveform mixing still augments its crops as they are drawn.)"""
        assert self.data.waveforms is not None
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.generator)))
        extractor, rate = FeatureExtractor(self.feature_config), self.feature_config.sample_rate
        copies = []
        for _ in range(self._variants):
            for wave in self.data.waveforms:
                choice = wave_aug.draw(self.augment, rng)
                source = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
                length = max(1, int(round(len(source) / choice.rate)))
                copies.append(extractor.clip(wave_aug.apply(source, choice, length=length, sample_rate=rate).numpy()))
        return copies

    def _bank_windows(self, rows: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Each example's window from its clip or one of its copies, at a random offset (the time shift)."""
        frames = self.feature_config.window_frames
        entry = rows[:, 0] + len(self.data) * torch.from_numpy(rng.integers(0, self._variants + 1, len(rows)))
        room = (self._lengths[entry] - frames).clamp_min(0)
        start = (torch.from_numpy(rng.random(len(rows))) * (room + 1)).long().clamp_max(room)
        return self._resident.windows(torch.stack([entry, start], dim=1), frames)

    def _windows(self, rows: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self._variants:
            return self._bank_windows(rows, rng)
        if not self.augment.waveform:
            return self._resident.windows(rows, self.feature_config.window_frames)
        return self._featurize(self._crops(rows, rng))

    def _crops(self, rows: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(batch, crop samples): each window's audio with featurizer context, augmented if configured."""
        assert self.data.waveforms is not None
        if not self.augment.waveform:
            config, waves = self.feature_config, self.data.waveforms
            return torch.from_numpy(np.concatenate([window_crops(waves[clip], config, [start])
                                                    for clip, start in rows.tolist()]))
        crops = []
        for clip in rows[:, 0].tolist():
            padded = centre_pad(self.data.waveforms[clip], self.feature_config)
            choice = wave_aug.draw(self.augment, rng)
            length = choice.source_length(self._crop_length)
            offset = int(rng.integers(0, max(0, len(padded) - length) + 1))  # time shift: any offset in the clip
            crop = torch.from_numpy(np.ascontiguousarray(padded[offset : offset + length], dtype=np.float32))
            crops.append(wave_aug.apply(crop, choice, length=self._crop_length,
                                        sample_rate=self.feature_config.sample_rate))
        return torch.stack(crops)

    def _featurize(self, crops: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._featurizer(crops.float().to(self.device)).unsqueeze(1).contiguous()
