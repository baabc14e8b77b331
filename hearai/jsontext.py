"""The one way hearai reads JSON from outside: bounded in size, depth and element count, never NaN.

Configs, model headers, run records, ONNX metadata and WebSocket settings all come through
``parse_json``: a deeply nested document would otherwise crash the reader with a RecursionError,
and Python's ``json`` takes ``NaN`` and ``Infinity``, which no hearai file ever holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hearai.errors import ConfigError, HearaiError

MAX_CHARS = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str | bytes, *, source: str, error: type[HearaiError] = ConfigError, max_chars: int = MAX_CHARS,
               max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> Any:
    """``text`` as JSON, or ``error`` naming ``source``: too long, too deep, too many elements, invalid."""
    if len(text) > max_chars:
        raise error(f"{source}: more than {max_chars:,} characters of JSON")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise error(f"{source}: JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{source}: not valid JSON: {exc}") from None
    _check_shape(data, source=source, error=error, max_depth=max_depth, max_items=max_items)
    return data


def _check_shape(data: Any, *, source: str, error: type[HearaiError], max_depth: int, max_items: int) -> None:
    """Depth and element count, walked without recursion."""
    stack, items = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        items += 1
        if depth > max_depth:
            raise error(f"{source}: JSON nested deeper than {max_depth} levels")
        if items > max_items:
            raise error(f"{source}: JSON of more than {max_items:,} elements")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def read_json_file(path: Path, *, source: str | None = None, error: type[HearaiError] = ConfigError,
                   max_chars: int = MAX_CHARS) -> Any:
    """A JSON file through ``parse_json``, its size checked before it is read."""
    where = source or str(path)
    try:
        with path.open("rb") as f:
            text = f.read(max_chars + 1)
    except FileNotFoundError:
        raise error(f"{where}: file not found") from None
    except OSError as exc:
        raise error(f"{where}: cannot read it: {exc.strerror or exc}") from None
    return parse_json(text, source=where, error=error, max_chars=max_chars)
