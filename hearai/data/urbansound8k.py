"""UrbanSound8K in its official layout: ``audio/foldN/*.wav`` and ``metadata/UrbanSound8K.csv``."""

from __future__ import annotations

from pathlib import Path

from hearai.data.records import Clip, Dataset, parse_fold, parse_int, parse_number, read_table, validate

CLASSES = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)
COLUMNS = ("slice_file_name", "fsID", "fold", "classID", "class")


def prepare_urbansound8k(root: str | Path, *, check_files: bool = True) -> Dataset:
    """The 10 official folds; the source is the Freesound recording id (``fsID``)."""
    root = Path(root)
    table = root / "metadata" / "UrbanSound8K.csv"
    clips = []
    for line, row in enumerate(read_table(table, required=COLUMNS), start=2):
        where = f"{table}:{line}"
        fold = parse_fold(row["fold"], where=where)
        parse_int(row["classID"], where=where, what="classID")
        for column in ("start", "end", "salience"):
            if column in row:
                parse_number(row[column], where=where, what=column)
        clips.append(Clip(
            path=root / "audio" / f"fold{fold}" / row["slice_file_name"],
            label=row["class"],
            fold=fold,
            source=row["fsID"],
            metadata={k: row[k] for k in ("classID", "salience", "start", "end") if k in row},
        ))
    return validate(Dataset("urbansound8k", tuple(clips), CLASSES), check_files=check_files)
