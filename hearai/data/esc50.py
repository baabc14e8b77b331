"""ESC-50 and its ESC-10 subset, five official folds.

Two layouts are accepted: the official release (``meta/esc50.csv`` + ``audio/*.wav``) and a flat
one with ``esc50.csv`` at the root (as in ``../shared/data/esc50``, FLAC files); the CSV's
``filename`` column names the file under ``audio/`` either way.
"""

from __future__ import annotations

from pathlib import Path

from hearai.data.records import Clip, Dataset, parse_fold, parse_int, read_table, validate
from hearai.errors import DatasetError

COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file")


def prepare_esc50(root: str | Path, *, subset: str = "esc50", check_files: bool = True) -> Dataset:
    """ESC-50 (``subset="esc50"``, 50 classes) or ESC-10 (``"esc10"``, 10 classes)."""
    root = Path(root)
    if subset not in ("esc50", "esc10"):
        raise DatasetError(f"ESC subset must be esc50 or esc10, got {subset!r}")
    table = next((p for p in (root / "meta" / "esc50.csv", root / "esc50.csv") if p.is_file()), None)
    if table is None:
        raise DatasetError(f"{root}: neither meta/esc50.csv nor esc50.csv found; is this the ESC-50 folder?")
    clips: list[Clip] = []
    targets: dict[str, int] = {}
    for line, row in enumerate(read_table(table, required=COLUMNS), start=2):
        if subset == "esc10" and row["esc10"].strip().lower() != "true":
            continue
        clips.append(Clip(
            path=root / "audio" / row["filename"],
            label=row["category"],
            fold=parse_fold(row["fold"], where=f"{table}:{line}"),
            source=row["src_file"],
            metadata={"target": row["target"], "take": row.get("take", "")},
        ))
        targets.setdefault(row["category"], parse_int(row["target"], where=f"{table}:{line}", what="target"))
    labels = tuple(sorted(targets, key=targets.__getitem__))
    return validate(Dataset(subset, tuple(clips), labels), check_files=check_files)
