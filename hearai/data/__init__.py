"""Corpora as ``Dataset``s of ``Clip`` records: one ``prepare_*`` per corpus, one dispatcher."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hearai.data.alertsdev import prepare_alerts_dev
from hearai.data.esc50 import prepare_esc50
from hearai.data.folder import prepare_folder
from hearai.data.manifest import prepare_manifest
from hearai.data.records import Clip, Dataset, assign_folds, require_files, validate
from hearai.data.urbansound8k import prepare_urbansound8k
from hearai.errors import DatasetError
from hearai.fsutil import write_csv_atomic

KINDS = ("urbansound8k", "esc50", "esc10", "alerts-dev", "folder", "csv", "packed")


def prepare(kind: str, root: str | Path, *, n_folds: int = 5, seed: int = 0, folds: Sequence[int] | None = None
            ) -> Dataset:
    """The dataset ``kind`` at ``root`` (a folder, the CSV file for ``csv``, the pack for ``packed``), validated.

    With ``folds``, only those folds' clips are kept, and only their files must exist: a partial
    download of a corpus (say UrbanSound8K folds 1, 2 and 10) works.
    """
    if kind == "urbansound8k":
        dataset = prepare_urbansound8k(root, check_files=False)
    elif kind in ("esc50", "esc10"):
        dataset = prepare_esc50(root, subset=kind, check_files=False)
    elif kind == "alerts-dev":
        dataset = prepare_alerts_dev(root, n_folds=n_folds, seed=seed, check_files=False)
    elif kind == "folder":
        dataset = prepare_folder(root, n_folds=n_folds, seed=seed, check_files=False)
    elif kind == "csv":
        dataset = prepare_manifest(root, n_folds=n_folds, seed=seed, check_files=False)
    elif kind == "packed":  # features only: no audio files to check (imported here: it needs torch)
        from hearai.data.packed import prepare_packed

        dataset = prepare_packed(root)
        return dataset.select(folds) if folds else dataset
    else:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(KINDS)}")
    return require_files(dataset.select(folds) if folds else dataset)


def write_manifest(dataset: Dataset, path: str | Path) -> Path:
    """Write ``path,label,fold,source`` rows (absolute paths): a CSV that ``prepare("csv", ...)`` reads back."""
    rows = [(str(c.path.resolve()), c.label, c.fold, c.source or "") for c in dataset.clips]
    write_csv_atomic(path, ("path", "label", "fold", "source"), rows)
    return Path(path)


__all__ = ["write_manifest", "KINDS", "Clip", "Dataset", "assign_folds", "prepare", "prepare_alerts_dev",
           "prepare_esc50", "prepare_folder",
           "prepare_manifest", "prepare_urbansound8k", "require_files", "validate"]
