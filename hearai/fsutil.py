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
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from hearai.errors import HearaiError, OutputError

STALE_SECONDS = 3600.0  # a temporary file this old belongs to no live writer


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    ``mode``: the written file's permissions (a private key: 0o600), else what the umask gives. A
    symbolic link is written through (its target is replaced, the link stays); a device, FIFO or
    folder at ``path`` is refused, never replaced."""
    target = Path(path)
    written = writable_file(target)
    prefix = f".{written.name}.hearai-tmp-"
    try:
        written.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(written.parent, prefix)
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=written.suffix, dir=written.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot be written there ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp makes 0600
        os.replace(tmp, written)
    # torch.save reports a full disk as RuntimeError, safetensors as its own SafetensorError
    except (OSError, RuntimeError, SafetensorError) as exc:
        if isinstance(exc, HearaiError):
            raise
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"the disk may be full: {said}"
        raise OutputError(f"{target}: could not be written ({reason}); any earlier file there is unchanged") from exc
    finally:
        tmp.unlink(missing_ok=True)


NOTHING, REGULAR = "nothing", "a file"


def what_is_at(path: str | os.PathLike) -> str:
    """What reading ``path`` would find, in words: ``REGULAR`` (links followed), ``NOTHING``, or what else.

    Checked before a file is opened, so a FIFO never blocks a read and a folder or a broken link is
    named as such instead of being taken for a missing file."""
    if not os.path.lexists(path):
        return NOTHING
    try:
        info = os.stat(path)
    except OSError:
        return "a symbolic link that leads nowhere (broken, or a loop)"
    if stat.S_ISREG(info.st_mode):
        return REGULAR
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    return "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
        "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket"


def require_file(path: Path, what: str, error: type[HearaiError]) -> Path:
    """``path`` when it is a regular file to read; else ``error`` saying what is there instead (a FIFO, a
    folder, a broken link) or that nothing is."""
    found = what_is_at(path)
    if found == NOTHING:
        raise error(f"{path}: {what} not found")
    if found != REGULAR:
        raise error(f"{path}: is {found}, not a {what}")
    return path


def writable_file(path: Path) -> Path:
    """Where writing ``path`` lands: the file itself, or what its symbolic links lead to.

    ``OutputError`` naming ``path`` when that is a folder, a device, a FIFO or a socket, or a link loop:
    an output replaces only a regular file (``hearai export --onnx /dev/null`` run as root replaced the device)."""
    try:
        landing = Path(os.path.realpath(path, strict=False))
        info = os.stat(landing) if os.path.lexists(landing) else None
    except OSError as exc:  # a link loop, or a folder on the way that cannot be searched
        raise OutputError(f"{path}: cannot be written there ({exc.strerror or exc})") from exc
    if info is None or stat.S_ISREG(info.st_mode):
        return landing
    raise OutputError(f"{path}: is {what_is_at(landing)}, not a file; hearai writes only regular files and leaves "
                      "it as it is")


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
