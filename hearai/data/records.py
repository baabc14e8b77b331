"""One record type for every corpus, checks that keep evaluation honest, and fold assignment."""

from __future__ import annotations

import csv
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hearai.errors import DatasetError

_SHOWN = 10  # offenders listed in an error; the rest are counted


@dataclass(frozen=True)
class Clip:
    """One labelled recording: where it is, what it is, which fold it belongs to."""

    path: Path
    label: str
    fold: int | None = None
    source: str | None = None  # clips cut from one recording share a source and must share a fold
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Dataset:
    """Clips plus the ordered class list (a label's index is its class id)."""

    name: str
    clips: tuple[Clip, ...]
    labels: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # problems worth reporting that do not invalidate the data
    corpus_folds: tuple[int, ...] = ()  # every fold of the corpus, kept by ``select`` (empty: ``folds``)

    @property
    def folds(self) -> list[int]:
        return sorted({c.fold for c in self.clips if c.fold is not None})

    @property
    def all_folds(self) -> list[int]:
        """The corpus's folds, also after ``select`` kept only some of them."""
        return list(self.corpus_folds) or self.folds

    def label_index(self, label: str) -> int:
        return self.labels.index(label)

    def select(self, folds: Iterable[int]) -> Dataset:
        """The clips of ``folds`` only (labels keep their ids)."""
        wanted = set(folds)
        missing = wanted - set(self.folds)
        if missing:
            raise DatasetError(f"{self.name}: no clips in fold(s) {sorted(missing)}; folds present: {self.folds}")
        return replace(self, clips=tuple(c for c in self.clips if c.fold in wanted), corpus_folds=tuple(self.all_folds))

    def summary(self) -> dict[str, Any]:
        """Counts a report or an artifact records about the data it came from."""
        return {
            "name": self.name,
            "clips": len(self.clips),
            "classes": len(self.labels),
            "folds": {str(k): v for k, v in sorted(Counter(c.fold for c in self.clips).items())},
            "per_class": dict(sorted(Counter(c.label for c in self.clips).items())),
            "warnings": list(self.warnings),
        }


def validate(dataset: Dataset, *, check_files: bool = True) -> Dataset:
    """Refuse datasets that would give a wrong number: every problem found is listed at once.

    Errors: no clips; an unknown label; a path listed twice, or in two folds; a clip without a
    fold; a missing file. A source recording spread over two folds is a warning kept on the
    dataset (the official ESC-50 metadata has four such recordings, each under two classes).
    """
    problems: list[str] = []
    if not dataset.clips:
        raise DatasetError(f"{dataset.name}: no clips found")
    known = set(dataset.labels)
    unknown = [f"{c.path.name}: {c.label!r}" for c in dataset.clips if c.label not in known]
    _collect(problems, "unknown label(s)", unknown)
    folds_of_path: dict[Path, list[int | None]] = defaultdict(list)
    for c in dataset.clips:
        folds_of_path[c.path].append(c.fold)
    _collect(problems, "clip(s) in more than one fold",
             [f"{p}: folds {sorted(set(f), key=lambda k: (k is None, k or 0))}"
              for p, f in folds_of_path.items() if len(set(f)) > 1])
    _collect(problems, "clip(s) listed more than once",
             [str(p) for p, f in folds_of_path.items() if len(f) > 1 and len(set(f)) == 1])
    _collect(problems, "without a fold", [str(c.path) for c in dataset.clips if c.fold is None])
    folds_of: dict[str, set[int]] = defaultdict(set)
    for c in dataset.clips:
        if c.source is not None and c.fold is not None:
            folds_of[c.source].add(c.fold)
    if check_files:
        _collect(problems, "missing file(s)", _missing_files(dataset))
    if problems:
        raise DatasetError(f"{dataset.name}: " + "; ".join(problems))
    notes: list[str] = []
    _collect(notes, "source recording(s) in more than one fold",
             [f"{s}: folds {sorted(f)}" for s, f in sorted(folds_of.items()) if len(f) > 1])
    return replace(dataset, warnings=dataset.warnings + tuple(notes))


def require_files(dataset: Dataset) -> Dataset:
    """The dataset, if every clip's file exists (checked after choosing folds: a partial download works)."""
    missing: list[str] = []
    _collect(missing, "missing file(s)", _missing_files(dataset))
    if missing:
        raise DatasetError(f"{dataset.name}: {missing[0]}")
    return dataset


def _missing_files(dataset: Dataset) -> list[str]:
    return [str(c.path) for c in dataset.clips if not c.path.is_file()]


def _collect(problems: list[str], what: str, offenders: Sequence[str]) -> None:
    if offenders:
        shown = ", ".join(offenders[:_SHOWN])
        more = f" and {len(offenders) - _SHOWN} more" if len(offenders) > _SHOWN else ""
        problems.append(f"{len(offenders)} {what}: {shown}{more}")


def assign_folds(clips: Sequence[Clip], *, n_folds: int, seed: int) -> tuple[Clip, ...]:
    """Give fold-less clips folds 1..n_folds: stratified by label, grouped by source, seeded.

    Clips sharing a source always land in the same fold. Groups are placed largest first, each
    into the fold holding the fewest clips of its label so far (ties: fewest clips overall, then
    the lowest fold), after a seeded shuffle, so the same seed always gives the same folds.
    """
    if n_folds < 2:
        raise DatasetError(f"need at least 2 folds to cross-validate, got {n_folds}")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, clip in enumerate(clips):
        groups[clip.source if clip.source is not None else f"\0{index}"].append(index)
    order = list(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))
    per_label: dict[str, list[int]] = defaultdict(lambda: [0] * n_folds)
    totals = [0] * n_folds
    fold_of: dict[int, int] = {}
    for group in order:
        members = groups[group]
        label = Counter(clips[i].label for i in members).most_common(1)[0][0]
        best = min(range(n_folds), key=lambda k: (per_label[label][k], totals[k], k))
        per_label[label][best] += len(members)
        totals[best] += len(members)
        for i in members:
            fold_of[i] = best + 1
    return tuple(replace(c, fold=fold_of[i]) for i, c in enumerate(clips))


def read_table(path: Path, *, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; a missing file or column is a ``DatasetError`` naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: metadata file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: not a readable CSV file: {exc}") from exc
    absent = [c for c in required if c not in columns]
    if absent:
        raise DatasetError(f"{path}: missing column(s) {', '.join(absent)} (has: {', '.join(columns) or 'none'})")
    ragged = [f"line {line}" for line, row in enumerate(rows, start=2) if None in row or None in row.values()]
    if ragged:
        raise DatasetError(f"{path}: {len(ragged)} row(s) whose values do not match the columns: "
                           f"{', '.join(ragged[:_SHOWN])}")
    nul = next((line for line, row in enumerate(rows, start=2) if any("\0" in v for v in row.values())), None)
    if nul is not None:
        raise DatasetError(f"{path}: line {nul} holds a NUL character (not a path or name a file system takes)")
    return rows


def parse_int(value: str, *, where: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"{where}: {what} {value!r} is not a whole number") from None


def parse_number(value: str, *, where: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DatasetError(f"{where}: {what} {value!r} is not a finite number")
    return number


def parse_fold(value: str, *, where: str) -> int:
    try:
        fold = int(value)
    except ValueError:
        raise DatasetError(f"{where}: fold {value!r} is not a whole number") from None
    if fold < 1:
        raise DatasetError(f"{where}: fold {fold} must be 1 or more")
    return fold
