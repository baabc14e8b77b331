"""hearai: sound event classification and detection, from any audio file to alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hearai.errors import AudioError, ConfigError, DatasetError, HearaiError, ModelError

if TYPE_CHECKING:
    from hearai.artifact import Classifier

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "DatasetError", "HearaiError", "ModelError", "__version__", "load"]


def load(path: str) -> Classifier:
    """Load a trained classifier artifact (see ``hearai.artifact``)."""
    from hearai.artifact import load as load_artifact

    return load_artifact(path)
