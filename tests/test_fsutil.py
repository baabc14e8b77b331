"""Crash-safe writes (hearai.fsutil): whole files, the umask's permissions, no temporary file left for good."""

from __future__ import annotations

import os
import time

import pytest

from hearai.errors import OutputError
from hearai.fsutil import STALE_SECONDS, atomic_path, write_text_atomic


def test_written_files_get_the_permissions_the_umask_gives(tmp_path):
    """Atomic outputs were mode 0600 whatever the umask."""
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "report.md", "hello")
        assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        write_text_atomic(tmp_path / "private.md", "hello")
        assert (tmp_path / "private.md").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    write_text_atomic(tmp_path / "m.json", "old")
    # torch.save and safetensors say "disk full" as a RuntimeError naming nothing, or the temporary file
    expected = f"^{tmp_path / 'm.json'}: could not be written \\(the disk may be full: killed halfway\\); any earlier"
    with pytest.raises(OutputError, match=expected):
        with atomic_path(tmp_path / "m.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed halfway")
    assert (tmp_path / "m.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    """A kill left hidden temporary files behind for good (up to 134 MB each)."""
    stale = tmp_path / ".model.safetensors.hearai-tmp-abc123.safetensors"
    fresh = tmp_path / ".model.safetensors.hearai-tmp-def456.safetensors"  # a writer still at work
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    old = time.time() - STALE_SECONDS - 10
    os.utime(stale, (old, old))
    write_text_atomic(tmp_path / "model.safetensors", "new")
    assert not stale.exists() and fresh.exists()
    assert (tmp_path / "model.safetensors").read_text() == "new"
