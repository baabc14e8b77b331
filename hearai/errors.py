"""One error hierarchy: every failure a user can cause is a ``HearaiError``.

The CLI turns these into a one-line message and a non-zero exit code, so a user never sees a
traceback for bad input; anything else escaping is a bug in hearai.
"""

from __future__ import annotations


class HearaiError(Exception):
    """Base class of every error hearai raises on purpose."""


class AudioError(HearaiError):
    """An audio file or stream could not be read as sound."""


class ConfigError(HearaiError, ValueError):
    """A configuration field has an invalid value."""


class DatasetError(HearaiError):
    """A dataset's layout or metadata is wrong: missing files, unknown labels, leaking folds."""


class ModelError(HearaiError):
    """A model name, checkpoint or artifact is unknown, unreadable or inconsistent."""


class OutputError(HearaiError, OSError):
    """An output could not be written (a full disk, a folder without permission); what was there is unchanged."""
