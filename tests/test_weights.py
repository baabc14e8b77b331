"""Getting pretrained weights without trusting them: a loopback server plays every way a download goes wrong."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hearai.errors import ModelError
from hearai.pretrained import pretrained_model_path
from hearai.weights import PRETRAINED, fetch, read_state_dict
from tests.conftest import assert_one_line_error, hearai

PINNED = PRETRAINED["efficientat-mn04"]


@pytest.fixture(scope="module")
def release(mn04_folder: Path) -> bytes:
    data = (mn04_folder / PINNED.filename).read_bytes()
    assert len(data) == PINNED.size and hashlib.sha256(data).hexdigest() == PINNED.sha256
    return data


@pytest.fixture(scope="module")
def server(release: bytes) -> Iterator[str]:
    """http://127.0.0.1:PORT: /ok the release, /altered one byte changed, /cut half then hang-up, /big too much."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body, length = release, len(release)
            if self.path == "/altered":
                body = release[:100] + bytes([release[100] ^ 1]) + release[101:]
            elif self.path == "/cut":
                body = release[: len(release) // 2]
            elif self.path == "/big-claimed":
                length = len(release) * 2
                body = release * 2
            elif self.path == "/big-unannounced":
                body, length = release + b"x" * 100_000, None
            elif self.path in ("/stall", "/trickle"):
                self._slowly(release[:1000], pause=3.0 if self.path == "/stall" else 0.1)
                return
            elif self.path != "/ok":
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should on a refused size
            self.close_connection = True

        def _slowly(self, body: bytes, *, pause: float) -> None:
            """The headers and 1,000 bytes, then silence (``pause`` 3 s) or a byte every ``pause`` seconds."""
            self.send_response(200)
            self.send_header("Content-Length", str(len(release)))
            self.end_headers()
            try:
                self.wfile.write(body)
                self.wfile.flush()
                for _ in range(int(5 / pause)):
                    time.sleep(pause)
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_good_download_is_kept_and_becomes_a_model(server, tmp_path):
    path = fetch("efficientat-mn04", cache=tmp_path, mirror="", url=f"{server}/ok")
    assert path == tmp_path / PINNED.filename and hashlib.sha256(path.read_bytes()).hexdigest() == PINNED.sha256
    model = pretrained_model_path("efficientat-mn04", cache=tmp_path, mirror="")
    assert model.name == "efficientat-mn04.safetensors" and model.stat().st_size > 3_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([PINNED.filename, model.name])


@pytest.mark.parametrize(("path", "message"), [
    ("/altered", "is not the pinned"),
    ("/cut", "of 4,066,513 bytes"),
    ("/missing", "HTTP 404"),
    ("/big-claimed", "more than the pinned 4,066,513"),
    ("/big-unannounced", "more than the pinned 4,066,513"),
])
def test_a_bad_download_is_refused_in_one_line_and_leaves_nothing(server, tmp_path, path, message):
    with pytest.raises(ModelError, match="nothing") as caught:
        fetch("efficientat-mn04", cache=tmp_path, mirror="", url=server + path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_reports_a_refused_download_in_one_line(server, tmp_path):
    done = hearai("pull", "efficientat-mn04", "--cache", str(tmp_path), "--mirror", "", "--url", f"{server}/altered",
                  "--quiet")
    assert_one_line_error(done, "pull", "sha256", "nothing kept")
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_is_used_before_the_network(mn04_folder, tmp_path):
    # The URL would fail: a mirror hit never touches it.
    path = fetch("efficientat-mn04", cache=tmp_path, mirror=mn04_folder.parent, url="http://127.0.0.1:9/none")
    assert path == mn04_folder / PINNED.filename
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_file_with_other_content_is_refused(release, tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / PINNED.filename).write_bytes(release[:-1] + bytes([release[-1] ^ 1]))
    with pytest.raises(ModelError, match="not the pinned"):
        fetch("efficientat-mn04", cache=tmp_path / "cache", mirror=tmp_path / "mirror")


def test_weights_whose_hash_differs_are_never_unpickled(release, tmp_path):
    altered = tmp_path / PINNED.filename
    altered.write_bytes(release[:-1] + bytes([release[-1] ^ 1]))
    with pytest.raises(ModelError, match="not opened"):
        read_state_dict(altered, "efficientat-mn04")


def test_offline_without_a_mirror_says_how_to_get_the_weights(tmp_path):
    with pytest.raises(ModelError, match="hearai pull efficientat-mn04"):
        fetch("efficientat-mn04", cache=tmp_path, mirror="", download=False)


def test_a_stalled_or_trickling_download_ends_in_time_naming_its_cause_and_leaves_nothing(server, tmp_path,
                                                                                         monkeypatch):
    """A stall was 'the disk may be full: timed out' with a wrong count; a byte every few seconds never ended."""
    import hearai.weights as weights

    monkeypatch.setattr(weights, "TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(weights, "DEADLINE_SECONDS", 1.5)
    for path, said in [("/stall", "download failed after 1,000 of 4,066,513 bytes (the server sent nothing for 1 s); "
                                  "nothing kept"),
                       ("/trickle", "of 4,066,513 bytes arrived in 1.5 s, too slowly to finish; nothing kept")]:
        started = time.monotonic()
        with pytest.raises(ModelError, match=re.escape(said)):
            fetch("efficientat-mn04", cache=tmp_path, mirror="", url=server + path)
        assert time.monotonic() - started < 3.0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["not a url", "ftp://example.org/w.pt", "http://", "http://host:abc/w.pt"])
def test_pull_from_what_is_no_web_address_is_one_line(tmp_path, url):
    """--url 'not a url' was a ValueError traceback."""
    done = hearai("pull", "efficientat-mn04", "--cache", str(tmp_path), "--mirror", "", "--url", url, "--quiet")
    assert_one_line_error(done, "pull", f"--url {url!r}: not a web address")
    assert list(tmp_path.iterdir()) == []


def test_pull_checks_what_it_keeps_in_the_cache_and_makes_again_what_is_damaged(mn04_folder, tmp_path):
    """A cut-off ear failed 'not a readable model file' while pull said success; cut-off weights failed with no hint;
    each table made another 4.9-MB ear and none was ever removed."""
    import os
    import shutil

    from hearai.artifact import load
    from hearai.ear.building import KEPT_EARS, ear_model_path

    cache, where = tmp_path / "cache", {"mirror": mn04_folder.parent}
    pulled = hearai("pull", "efficientat-mn04", "--cache", str(cache), "--mirror", str(mn04_folder.parent), "--quiet")
    assert pulled.returncode == 0 and pulled.stderr == "", pulled.stderr
    ear = ear_model_path(None, cache=cache, **where)
    whole = ear.read_bytes()
    os.truncate(ear, len(whole) // 2)
    assert ear_model_path(None, cache=cache, **where) == ear and load(ear).labels  # made again on use
    os.truncate(ear, len(whole) - 1)
    model = cache / "efficientat-mn04.safetensors"
    os.truncate(model, 1000)
    shutil.copy(mn04_folder / PINNED.filename, cache / PINNED.filename)
    os.truncate(cache / PINNED.filename, 1000)
    again = hearai("pull", "efficientat-mn04", "--cache", str(cache), "--mirror", str(mn04_folder.parent), "--quiet")
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"removed {cache / PINNED.filename}: not the pinned weights (damaged or cut off)",
        f"made {model} again: it was damaged",
        f"removed {ear}: damaged (the ear is made again when next used)"]
    assert load(model).labels and not ear.exists() and not (cache / PINNED.filename).exists()
    for sounds in range(KEPT_EARS + 2):  # tables of 1, 2, ... sounds, each its own ear
        data = tmp_path / f"data{sounds}"
        data.mkdir()
        rows = "".join(f"s{i},🔔,default,,,Doorbell\n" for i in range(sounds + 1))
        (data / "alert-sounds.csv").write_text("sound,icon,tier,on,off,audioset\n" + rows)
        latest = ear_model_path(data, cache=cache, **where)
    kept = sorted(cache.glob("ear-*.safetensors"))
    assert len(kept) == KEPT_EARS + 1 and latest in kept
