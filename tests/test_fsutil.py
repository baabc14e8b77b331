"""Crash-safe writes (hearai.fsutil): whole files, the umask's permissions, no temporary file left for good."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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


def test_an_output_path_that_is_a_device_fifo_or_folder_is_refused_and_a_link_is_written_through(tmp_path):
    """Outputs replaced whatever was at the path: a FIFO, a link (now a file) and, as root, /dev/null."""
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "folder.csv").mkdir()
    os.symlink("/dev/null", tmp_path / "null.csv")
    os.symlink("loop.csv", tmp_path / "loop.csv")
    for name, why in [("fifo.csv", "is a FIFO, not a file"), ("folder.csv", "is a folder, not a file"),
                      ("null.csv", "is a device, not a file"), ("loop.csv", "Too many levels of symbolic links")]:
        with pytest.raises(OutputError, match=f"^{tmp_path / name}: .*{why}"):
            write_text_atomic(tmp_path / name, "new")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.csv").st_mode) and (tmp_path / "folder.csv").is_dir()
    assert os.readlink(tmp_path / "null.csv") == "/dev/null"
    (tmp_path / "real.csv").write_text("old")
    os.symlink("real.csv", tmp_path / "link.csv")
    write_text_atomic(tmp_path / "link.csv", "new")
    assert os.readlink(tmp_path / "link.csv") == "real.csv" and (tmp_path / "real.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.csv", "folder.csv", "link.csv", "loop.csv",
                                                          "null.csv", "real.csv"]


def test_safetensors_on_a_full_disk_is_one_line_naming_the_file(tmp_path):
    """safetensors says a full disk with its own SafetensorError, which escaped as a traceback."""
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"earlier")
    code = ("import resource, torch; from safetensors.torch import save_file; from hearai.fsutil import atomic_path\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
            "from hearai.errors import OutputError\n"
            f"try:\n  with atomic_path({str(out)!r}) as tmp: save_file({{'w': torch.zeros(100_000)}}, str(tmp))\n"
            "except OutputError as e: print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: could not be written (the disk may be full: "), done.stdout
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
