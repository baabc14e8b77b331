"""Corpora as ``Dataset``s of ``Clip`` records: one ``prepare_*`` per corpus, one dispatcher."""

from __future__ import annotations

from pathlib import Path

from hearai.data.esc50 import prepare_esc50
from hearai.data.folder import prepare_folder
from hearai.data.manifest import prepare_manifest
from hearai.data.records import Clip, Dataset, assign_folds, validate
from hearai.data.urbansound8k import prepare_urbansound8k
from hearai.errors import DatasetError
from hearai.fsutil import write_csv_atomic

KINDS = ("urbansound8k", "esc50", "esc10", "folder", "csv")


def prepare(kind: str, root: str | Path, *, n_folds: int = 5, seed: int = 0) -> Dataset:
    """The dataset ``kind`` at ``root`` (a folder, or the CSV file for ``csv``), validated."""
    if kind == "urbansound8k":
        return prepare_urbansound8k(root)
    if kind in ("esc50", "esc10"):
        return prepare_esc50(root, subset=kind)
    if kind == "folder":
        return prepare_folder(root, n_folds=n_folds, seed=seed)
    if kind == "csv":
        return prepare_manifest(root, n_folds=n_folds, seed=seed)
    raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(KINDS)}")


def write_manifest(dataset: Dataset, path: str | Path) -> Path:
    """Write ``path,label,fold,source`` rows (absolute paths): a CSV that ``prepare("csv", ...)`` reads back."""
    rows = [(str(c.path.resolve()), c.label, c.fold, c.source or "") for c in dataset.clips]
    write_csv_atomic(path, ("path", "label", "fold", "source"), rows)
    return Path(path)


__all__ = ["write_manifest", "KINDS", "Clip", "Dataset", "assign_folds", "prepare", "prepare_esc50", "prepare_folder",
           "prepare_manifest", "prepare_urbansound8k", "validate"]
