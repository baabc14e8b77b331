"""Your own recordings: one folder per class, folds assigned for you."""

from __future__ import annotations

from pathlib import Path

from hearai.audio import AUDIO_SUFFIXES
from hearai.data.records import Clip, Dataset, assign_folds, validate
from hearai.errors import DatasetError


def prepare_folder(root: str | Path, *, n_folds: int = 5, seed: int = 0, check_files: bool = True) -> Dataset:
    """Every sub-folder of ``root`` is a class; audio files anywhere below it are its clips.

    Folds are stratified by class and seeded (``assign_folds``). A file named ``<source>__*.wav``
    (two underscores) declares its source recording, so cuts of one recording share a fold.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    clips = []
    for label in classes:
        for path in sorted((root / label).rglob("*")):
            if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
                source = path.stem.split("__", 1)[0] if "__" in path.stem else None
                clips.append(Clip(path=path, label=label, source=source))
    empty = [c for c in classes if not any(clip.label == c for clip in clips)]
    if empty:
        raise DatasetError(f"{root}: class folder(s) without audio files: {', '.join(empty)}")
    if not clips:
        raise DatasetError(f"{root}: no class folders with audio files")
    dataset = Dataset(root.name, assign_folds(clips, n_folds=n_folds, seed=seed), tuple(classes))
    return validate(dataset, check_files=check_files)
