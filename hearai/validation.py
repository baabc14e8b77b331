"""Field checks shared by the config dataclasses: each failure names the class and field."""

from __future__ import annotations

import numbers
from typing import Any

from hearai.errors import ConfigError


def _field(obj: Any, name: str) -> tuple[str, Any]:
    return f"{type(obj).__name__}.{name}", getattr(obj, name)


def positive_int(obj: Any, *names: str) -> None:
    """Each named field is an int > 0 (bools are not ints here)."""
    for name in names:
        label, value = _field(obj, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ConfigError(f"{label} must be a positive integer, got {value!r}")


def positive_float(obj: Any, *names: str) -> None:
    """Each named field is a finite real number > 0."""
    for name in names:
        label, value = _field(obj, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < float("inf"):
            raise ConfigError(f"{label} must be a positive number, got {value!r}")


def choice(obj: Any, name: str, allowed: tuple[Any, ...]) -> None:
    """The named field is one of ``allowed``."""
    label, value = _field(obj, name)
    if value not in allowed:
        shown = ", ".join("null" if a is None else repr(a) for a in allowed)
        raise ConfigError(f"{label} must be one of {shown}, got {value!r}")


def at_most(obj: Any, limits: dict[str, float]) -> None:
    """Each named field is at most its limit: numbers read from files are bounded before use."""
    for name, limit in limits.items():
        label, value = _field(obj, name)
        if value is not None and value > limit:
            raise ConfigError(f"{label} must be at most {limit:g}, got {value!r}")


def optional_real(obj: Any, *names: str) -> None:
    """Each named field is a finite real number or null."""
    for name in names:
        label, value = _field(obj, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not abs(float(value)) < float("inf")):
            raise ConfigError(f"{label} must be a number or null, got {value!r}")
