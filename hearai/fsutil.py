"""Crash-safe file writes: a reader sees the old file or the new one, never half of one.

Temporary files are named ``.NAME.hearai-tmp-XXXX`` beside their target; one left by a killed
process (it may be large: a checkpoint) is removed by the next write to the same target once it
is older than ``STALE_SECONDS``. Written files get the permissions the umask gives a new file.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hearai.errors import HearaiError, OutputError

STALE_SECONDS = 3600.0  # a temporary file this old belongs to no live writer


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    ``mode``: the written file's permissions (a private key: 0o600), else what the umask gives."""
    target = Path(path)
    prefix = f".{target.name}.hearai-tmp-"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target.parent, prefix)
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot be written there ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp makes 0600
        os.replace(tmp, target)
    except (OSError, RuntimeError) as exc:  # torch.save and safetensors report a full disk as RuntimeError
        if isinstance(exc, HearaiError):
            raise
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"the disk may be full: {said}"
        raise OutputError(f"{target}: could not be written ({reason}); any earlier file there is unchanged") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (setting it races other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _remove_stale(folder: Path, prefix: str) -> None:
    remove_stale(folder, glob.escape(prefix) + "*")


def remove_stale(folder: Path, pattern: str) -> list[Path]:
    """Remove files and folders matching ``pattern`` in ``folder`` untouched for ``STALE_SECONDS``.

    What a killed hearai left behind (temporary outputs, upload folders); returns what was removed.
    """
    now, removed = time.time(), []
    for leftover in folder.glob(pattern):
        try:
            if now - leftover.stat().st_mtime <= STALE_SECONDS:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed.append(leftover)
        except OSError:
            pass  # another process's, or gone already
    return removed


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> None:
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def write_csv_atomic(path: str | os.PathLike, header: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV table (header row, then ``rows``) atomically, with Unix line endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
