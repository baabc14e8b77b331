"""Training-time augmentation: waveform transforms, mixing (mixup, between-class), SpecAugment."""

from hearai.augment.batches import BatchMaker
from hearai.augment.config import AugmentConfig

__all__ = ["AugmentConfig", "BatchMaker"]
