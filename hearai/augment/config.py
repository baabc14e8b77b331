"""What training-time augmentation does, as one serializable config nested in ``TrainConfig``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from hearai.errors import ConfigError
from hearai.validation import at_most, choice, optional_real, positive_float, positive_int

MIXING = ("none", "mixup", "bc-logmel", "bc-waveform")


# Bounds on every count and size an --augment-config file can ask for (each is a loop or a shift per batch).
LIMITS = {"freq_masks": 16, "time_masks": 16, "freq_mask_bands": 1_024, "time_mask_frames": 10_000,
          "mixup_alpha": 100.0, "gain_db": 60.0, "pitch_semitones": 24.0, "waveform_variants": 64}


@dataclass(frozen=True)
class AugmentConfig:
    """Each ingredient switches on or off on its own, so an ablation changes one field at a time.

    - ``scaler``: per-band standardization fitted on the training clips, carried by the model.
    - ``spec_augment``: ``freq_masks`` masks of up to ``freq_mask_bands`` bands and ``time_masks``
      masks of up to ``time_mask_frames`` frames per window (Park et al., 2019).
    - ``mixing``: ``mixup`` (Zhang et al., 2018; ratio from Beta(``mixup_alpha``, ``mixup_alpha``),
      partner from any class) or between-class learning (Tokozume et al., 2018; ratio uniform,
      partner from another class, loudness-aware mixing of waveforms or of log-mel power).
    - ``waveform``: random time shift (any offset in the clip), gain (± ``gain_db``), time stretch
      (rate within ± ``stretch``), pitch shift (± ``pitch_semitones``), each of the last two with
      probability ``stretch_probability`` / ``pitch_probability``, and coloured background noise at
      an SNR drawn from ``noise_snr_db`` with probability ``noise_probability``.
    - ``waveform_variants``: 0 augments every crop as it is drawn (decoded, augmented and featurized
      each step: slow on a CPU); N > 0 draws N augmented copies of each training clip once (stretch,
      pitch, gain, noise), featurizes them with the clips, and each example then takes its window at
      a random offset of the clip or of one of its copies: the same augmentations, at the cost of
      plain training after a set-up of N featurizations per clip.
    """

    scaler: bool = True
    spec_augment: bool = True
    freq_masks: int = 2
    freq_mask_bands: int = 20
    time_masks: int = 2
    time_mask_frames: int = 10
    mixing: Literal["none", "mixup", "bc-logmel", "bc-waveform"] = "bc-logmel"
    mixup_alpha: float = 0.4
    waveform: bool = False
    gain_db: float = 6.0
    stretch: float = 0.15
    stretch_probability: float = 0.5
    pitch_semitones: float = 2.0
    pitch_probability: float = 0.5
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    noise_probability: float = 0.3
    waveform_variants: int = 0

    def __post_init__(self) -> None:
        for name in ("scaler", "spec_augment", "waveform"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"AugmentConfig.{name} must be true or false, got {getattr(self, name)!r}")
        positive_int(self, "freq_masks", "freq_mask_bands", "time_masks", "time_mask_frames")
        if not isinstance(self.waveform_variants, int) or isinstance(self.waveform_variants, bool) \
                or not 0 <= self.waveform_variants <= LIMITS["waveform_variants"]:
            raise ConfigError(f"AugmentConfig.waveform_variants must be a whole number from 0 to "
                              f"{LIMITS['waveform_variants']}, got {self.waveform_variants!r}")
        if self.waveform_variants and not self.waveform:
            raise ConfigError("AugmentConfig.waveform_variants needs waveform augmentation (waveform: true)")
        positive_float(self, "mixup_alpha", "gain_db", "pitch_semitones", "stretch")
        optional_real(self, "stretch_probability", "pitch_probability", "noise_probability")
        at_most(self, LIMITS)
        choice(self, "mixing", MIXING)
        if not 0 < self.stretch < 1:
            raise ConfigError(f"AugmentConfig.stretch must be in (0, 1), got {self.stretch!r}")
        for name in ("stretch_probability", "pitch_probability", "noise_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        try:
            low, high = (float(v) for v in self.noise_snr_db)
        except (TypeError, ValueError):
            low, high = 1.0, 0.0
        if not low <= high:
            raise ConfigError(f"AugmentConfig.noise_snr_db must be [low, high] in dB, got {self.noise_snr_db!r}")
        object.__setattr__(self, "noise_snr_db", (float(low), float(high)))

    @classmethod
    def plain(cls, **changes: Any) -> AugmentConfig:
        """No augmentation (the band scaler stays on) except ``changes``: one row of an ablation."""
        return cls(**{"spec_augment": False, "mixing": "none", "waveform": False, **changes})

    @property
    def needs_waveforms(self) -> bool:
        """Whether training must decode clips instead of reading cached features."""
        return self.waveform or self.mixing == "bc-waveform"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "noise_snr_db": list(self.noise_snr_db)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"AugmentConfig has no field(s) {', '.join(unknown)}")
        if "noise_snr_db" in data:
            data = {**data, "noise_snr_db": tuple(data["noise_snr_db"])}
        return cls(**data)
