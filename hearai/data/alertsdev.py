"""alerts-dev: real recordings of alert sounds and household sounds, labelled per clip, with their sources.

``manifest.csv`` names each file, its sound and its ``source`` (one recording, one sitting or
one uploader). Folds 1-5 are assigned here, stratified by sound, a source never split
(``assign_folds``), so a model is never tested on a recording source it learnt from.
"""

from __future__ import annotations

from pathlib import Path

from hearai.data.records import Clip, Dataset, assign_folds, read_table, validate
from hearai.errors import DatasetError

COLUMNS = ("file", "sound", "source", "license")


def prepare_alerts_dev(root: str | Path, *, n_folds: int = 5, seed: int = 0, check_files: bool = True) -> Dataset:
    """The clips of ``root/manifest.csv``, each with its sound, source and licence, in seeded source-grouped folds."""
    root = Path(root)
    clips = []
    for line, row in enumerate(read_table(root / "manifest.csv", required=COLUMNS), start=2):
        relative, sound, source = row["file"].strip(), row["sound"].strip(), row["source"].strip()
        if not relative or not sound or not source or Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise DatasetError(f"{root / 'manifest.csv'}:{line}: file, sound and source must be given, the file "
                               f"inside the folder; got {relative!r}, {sound!r}, {source!r}")
        clips.append(Clip(path=root / relative, label=sound, source=source,
                          metadata={"license": row["license"].strip()}))
    labels = tuple(sorted({c.label for c in clips}))
    dataset = Dataset(root.name, assign_folds(clips, n_folds=n_folds, seed=seed), labels)
    return validate(dataset, check_files=check_files)
