"""A CSV manifest: ``path,label[,fold][,source]``, paths relative to the CSV's folder."""

from __future__ import annotations

from pathlib import Path

from hearai.data.records import Clip, Dataset, assign_folds, parse_fold, read_table, validate
from hearai.errors import DatasetError


def prepare_manifest(csv_path: str | Path, *, n_folds: int = 5, seed: int = 0, check_files: bool = True
                     ) -> Dataset:
    """Clips listed in a CSV; without a ``fold`` column, folds are assigned (stratified, seeded)."""
    csv_path = Path(csv_path)
    rows = read_table(csv_path, required=("path", "label"))
    has_folds = bool(rows) and "fold" in rows[0]
    clips = []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}:{line}"
        if not row["path"].strip() or not row["label"].strip():
            raise DatasetError(f"{where}: empty path or label")
        clips.append(Clip(
            path=(csv_path.parent / row["path"].strip()).resolve(),
            label=row["label"].strip(),
            fold=parse_fold(row["fold"], where=where) if has_folds else None,
            source=(row.get("source") or "").strip() or None,
        ))
    labels = tuple(sorted({c.label for c in clips}))
    if not has_folds:
        clips = list(assign_folds(clips, n_folds=n_folds, seed=seed))
    return validate(Dataset(csv_path.stem, tuple(clips), labels), check_files=check_files)
