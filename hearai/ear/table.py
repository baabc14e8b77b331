"""The alert sounds a person can choose, as data: each one a group of AudioSet labels, its icon and tier.

The table ships as ``hearai/weights/alert_sounds.csv`` (sound, icon, tier, on, off, audioset and
an optional pattern); a copy named ``alert-sounds.csv`` in the server's data folder replaces it, so
a user adds, drops or regroups sounds without touching code. A sound's score is the highest of its
AudioSet labels' scores (``hearai.models.efficientat.AlertTagger``); ``on``/``off`` are its alert
thresholds (blank: ``UNCALIBRATED_PAIR``). ``pattern`` names an alarm pattern that raises the sound
too (``hearai.detect.patterns``: temporal-three, temporal-four); a sound with a pattern may name no
AudioSet label, and is then heard by its pattern alone. Tiers: ``always`` sounds are never
switched off by the page (smoke or fire alarm, siren), ``default`` ones are on until a person turns
them off, ``optional`` ones off until turned on. Torch-free.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from hearai.errors import ConfigError
from hearai.fsutil import NOTHING, REGULAR, what_is_at
from hearai.weights import HERE, audioset_labels

SHIPPED_TABLE = HERE / "alert_sounds.csv"
USER_TABLE = "alert-sounds.csv"  # in the server's data folder
TIERS = ("always", "default", "optional")
COLUMNS = ("sound", "icon", "tier", "on", "off", "audioset")
PATTERN_COLUMN = "pattern"  # optional, last
PATTERNS = ("temporal-three", "temporal-four")  # hearai.detect.patterns.PATTERNS
MAX_TABLE_BYTES, MAX_SOUNDS, MAX_NAME, MAX_ICON = 64 * 1024, 200, 60, 16
# The pair a sound gets until it is calibrated: the AudioSet head's scores on 1-s windows of the
# sounds it names run far below 0.5 (docs/pretrained.md, "Alert thresholds").
UNCALIBRATED_PAIR = (0.2, 0.1)
MIN_THRESHOLD = 0.001  # a score this low is noise: a lower threshold would alert on every window
DECIMAL = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")  # what float() takes, less '_', 'inf' and 'nan'


@dataclass(frozen=True)
class AlertSound:
    """One sound a person can be alerted to: its name, icon, tier, thresholds and AudioSet labels (display names)."""

    sound: str
    icon: str
    tier: str
    audioset: tuple[str, ...]
    on: float | None = None
    off: float | None = None
    pattern: str = ""

    @property
    def pair(self) -> tuple[float, float]:
        return (self.on, self.off) if self.on is not None and self.off is not None else UNCALIBRATED_PAIR


@dataclass(frozen=True)
class AlertTable:
    """The alert sounds in order, read from ``source``."""

    sounds: tuple[AlertSound, ...]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.sound for s in self.sounds)

    @property
    def groups(self) -> list[list[int]]:
        """Each sound's AudioSet output indices."""
        index = {name: i for i, name in enumerate(audioset_labels().names)}
        return [[index[label] for label in s.audioset] for s in self.sounds]

    @property
    def thresholds(self) -> dict[str, tuple[float, float]]:
        return {s.sound: s.pair for s in self.sounds}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        patterns = any(s.pattern for s in self.sounds)
        writer.writerow(COLUMNS + ((PATTERN_COLUMN,) if patterns else ()))
        for s in self.sounds:
            writer.writerow([s.sound, s.icon, s.tier, "" if s.on is None else s.on, "" if s.off is None else s.off,
                             "|".join(s.audioset)] + ([s.pattern] if patterns else []))
        return out.getvalue()

    @property
    def digest(self) -> str:
        """What the table says (not how it is spelt in its file): names the ear built from it."""
        return hashlib.sha256(self.to_csv().encode()).hexdigest()

    def describe(self) -> list[dict[str, object]]:
        return [{"sound": s.sound, "icon": s.icon, "tier": s.tier, "thresholds": list(s.pair),
                 "audioset": list(s.audioset), "pattern": s.pattern} for s in self.sounds]


def described_sounds(provenance: dict) -> list[dict]:
    """The sounds a model built from a table (the ear) describes in its provenance (none for other models)."""
    table = provenance.get("alert_sounds")
    sounds = table.get("sounds") if isinstance(table, dict) else None
    return [s for s in sounds if isinstance(s, dict) and isinstance(s.get("sound"), str)] \
        if isinstance(sounds, list) else []


def alarm_patterns(provenance: dict) -> dict[str, str]:
    """The sounds of a model built from a table (the ear) that an alarm pattern raises: {sound: pattern}."""
    return {s["sound"]: s["pattern"] for s in described_sounds(provenance) if s.get("pattern") in PATTERNS}


def off_by_default(provenance: dict) -> list[str]:
    """The optional sounds of a model built from a table (the ear): not reported unless a person asks for them."""
    return [s["sound"] for s in described_sounds(provenance) if s.get("tier") == "optional"]


def read_alert_table(path: str | Path) -> AlertTable:
    """The table in ``path``, checked whole: every problem a ``ConfigError`` naming the file, row and column."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TABLE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the alert-sound table: {exc.strerror or exc}") from exc
    if len(data) > MAX_TABLE_BYTES:
        raise ConfigError(f"{path}: an alert-sound table holds at most {MAX_TABLE_BYTES // 1024} KB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the alert-sound table is not UTF-8 text") from exc
    return parse_alert_table(text, source=str(path))


def parse_alert_table(text: str, *, source: str) -> AlertTable:
    """Rows of ``COLUMNS`` (the header first) as an ``AlertTable``; errors name the row by its line in the file."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: '"dog"x' is no value
    rows: list[tuple[int, list[str]]] = []
    try:
        first_line = 1
        for row in reader:
            rows.append((first_line, row))
            first_line = reader.line_num + 1
    except csv.Error as exc:
        raise ConfigError(f"{source}, line {reader.line_num}: not a CSV table: {exc}") from exc
    header = tuple(c.strip() for c in rows[0][1]) if rows else ()
    if header not in (COLUMNS, COLUMNS + (PATTERN_COLUMN,)):
        raise ConfigError(f"{source}: the first row must be the columns {','.join(COLUMNS)} (and optionally "
                          f"{PATTERN_COLUMN})")
    body = [(line, r) for line, r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise ConfigError(f"{source}: the alert-sound table lists no sound")
    if len(body) > MAX_SOUNDS:
        raise ConfigError(f"{source}: at most {MAX_SOUNDS} alert sounds, got {len(body)}")
    known = set(audioset_labels().names)
    sounds = [_sound(row, known, len(header), where=f"{source}, line {line}") for line, row in body]
    keys = [name_key(s.sound) for s in sounds]
    twice = sorted({s.sound for s, key in zip(sounds, keys) if keys.count(key) > 1})
    if twice:
        raise ConfigError(f"{source}: sound(s) listed twice (names differing only in case, '-', '_' or spaces are "
                          f"one): {', '.join(twice)}")
    return AlertTable(tuple(sounds), source)


def tidy_sound_name(name: str, *, where: str = "a sound's name") -> str:
    """A sound's name as hearai keeps it (Unicode NFC, single spaces); ``ConfigError`` when it may not be one.

    One rule for the table and for taught sounds: 1-60 printable characters, no '/' or '\\' (a name is
    part of a URL and an MQTT topic, so a slash could never be removed), not '.' or '..'."""
    tidy = " ".join(unicodedata.normalize("NFC", str(name)).split())
    if not 0 < len(tidy) <= MAX_NAME or any(unicodedata.category(c).startswith("C") for c in tidy):
        raise ConfigError(f"{where} must be 1-{MAX_NAME} printable characters, got {name!r}")
    if "/" in tidy or "\\" in tidy or tidy in (".", ".."):
        raise ConfigError(f"{where} may not hold / or \\ (nor be . or ..), got {name!r}")
    return tidy


def name_key(name: str) -> str:
    """Names that are one sound to a person are one key: case, '-', '_', spaces and Unicode forms aside."""
    return " ".join(unicodedata.normalize("NFC", name).replace("_", " ").replace("-", " ").casefold().split())


def _sound(row: list[str], known: set[str], columns: int, *, where: str) -> AlertSound:
    if len(row) != columns:
        raise ConfigError(f"{where}: {len(row)} columns, expected {columns} ({','.join(COLUMNS)}"
                          f"{',' + PATTERN_COLUMN if columns > len(COLUMNS) else ''})")
    sound, icon, tier, on, off, labels = (c.strip() for c in row[: len(COLUMNS)])
    pattern = row[len(COLUMNS)].strip() if columns > len(COLUMNS) else ""
    if pattern and pattern not in PATTERNS:
        raise ConfigError(f"{where}: pattern must be blank or one of {', '.join(PATTERNS)}, got {pattern!r}")
    sound = tidy_sound_name(sound, where=f"{where}: sound")
    if len(icon) > MAX_ICON or not icon.isprintable():
        raise ConfigError(f"{where}: icon must be at most {MAX_ICON} printable characters, got {icon!r}")
    if tier not in TIERS:
        raise ConfigError(f"{where}: tier must be one of {', '.join(TIERS)}, got {tier!r}")
    audioset = tuple(label.strip() for label in labels.split("|") if label.strip())
    if not audioset and not pattern:
        raise ConfigError(f"{where}: audioset names no AudioSet label ('|' between several) and no pattern")
    for label in audioset:
        if label not in known:
            close = difflib.get_close_matches(label, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: {label!r} is not an AudioSet label{hint}")
    pair = _thresholds(on, off, where=where)
    return AlertSound(sound, icon, tier, audioset, *pair, pattern=pattern)


def _thresholds(on: str, off: str, *, where: str) -> tuple[float | None, float | None]:
    if not on and not off:
        return None, None
    if not (DECIMAL.fullmatch(on) and DECIMAL.fullmatch(off)):
        raise ConfigError(f"{where}: on and off must both be decimal numbers such as 0.3 (or both blank), got "
                          f"{on!r}, {off!r}")
    low, high = float(off), float(on)
    if not MIN_THRESHOLD <= low <= high < 1:
        raise ConfigError(f"{where}: need {MIN_THRESHOLD} <= off <= on < 1, got on {on}, off {off}")
    return high, low


def default_data_dir() -> Path:
    """Where the server keeps what a person changed (taught sounds, the alert table): ``$HEARAI_SERVE_DATA``,
    else ``$XDG_DATA_HOME/hearai``, else ``~/.local/share/hearai``."""
    if "HEARAI_SERVE_DATA" in os.environ:
        return Path(os.environ["HEARAI_SERVE_DATA"])
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "hearai"


def shipped_alert_table() -> AlertTable:
    return read_alert_table(SHIPPED_TABLE)


def alert_table(data_dir: str | Path | None = None) -> AlertTable:
    """The user's table (``DATA/alert-sounds.csv``) when there is one, else the shipped one.

    Something else at that name (a folder, a FIFO, a device, a broken link) is a ``ConfigError`` naming
    it: taking the shipped table instead would silently drop what the person configured."""
    if data_dir is not None:
        user = Path(data_dir) / USER_TABLE
        found = what_is_at(user)
        if found == REGULAR:
            return read_alert_table(user)
        if found != NOTHING:
            raise ConfigError(f"{user}: is {found}, not an alert-sound table: make it a CSV file, or remove it to use "
                              "the shipped table")
    return shipped_alert_table()
