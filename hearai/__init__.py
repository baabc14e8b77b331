"""hearai: sound event classification and detection, from any audio file to alerts."""

from hearai.errors import AudioError, ConfigError, HearaiError

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "HearaiError", "__version__"]
