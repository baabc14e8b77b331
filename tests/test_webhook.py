"""Alerts POSTed to another device (hearai.detect.webhook): a receiver on loopback that works, is down,
is slow or refuses — detection never waits for it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from hearai.detect.notify import QUEUE_SIZE, Tellers
from hearai.detect.tracks import Event
from hearai.detect.webhook import Webhook
from hearai.errors import ConfigError
from tests.conftest import hearai, streamed_events


class Receiver:
    """A loopback HTTP server that records posted JSON, answering ``status`` after ``delay`` seconds."""

    def __init__(self, *, status: int = 200, delay: float = 0.0) -> None:
        self.posted: list[dict] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                outer.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                if status == 200:
                    outer.posted.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _wait(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_each_alert_and_its_end_are_posted_as_json(receiver):
    hook = Webhook(receiver.url, source="kitchen")
    hook.notify(Event("siren", 4.0, None, 0.91))
    hook.notify(Event("siren", 4.0, 7.5, 0.93))
    hook.close()
    assert [(p["type"], p["label"], p["onset"], p["offset"], p["confidence"], p["source"]) for p in receiver.posted] \
        == [("alert", "siren", 4.0, None, 0.91, "kitchen"), ("ended", "siren", 4.0, 7.5, 0.93, "kitchen")]
    assert hook.sent == 2 and hook.failed == 0 and receiver.posted[0]["time"].endswith("+00:00")


def test_a_receiver_that_is_down_costs_bounded_retries_and_never_blocks():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    hook = Webhook(url, retries=2, backoff=0.05)
    started = time.perf_counter()
    hook.notify(Event("dog", 1.0, None, 0.8))
    assert time.perf_counter() - started < 0.01
    hook.close()
    assert hook.sent == 0 and hook.failed == 1 and "refused" in hook.last_error.lower()


def test_a_slow_receiver_never_stalls_detection_and_the_oldest_waiting_alerts_give_way():
    slow = Receiver(delay=1.0)
    try:
        hook = Webhook(slow.url, timeout=0.2, retries=0)
        started = time.perf_counter()
        for i in range(QUEUE_SIZE + 50):
            hook.notify(Event("knock", float(i), None, 0.7))
        assert time.perf_counter() - started < 0.5  # 150 alerts queued at once
        assert hook.dropped >= 40
        hook.close(wait_seconds=1.0)
    finally:
        slow.close()


def test_a_refusal_is_not_retried():
    refusing = Receiver(status=400)
    try:
        hook = Webhook(refusing.url, retries=3, backoff=0.01)
        hook.notify(Event("dog", 1.0, None, 0.8))
        hook.close()
        assert refusing.requests == 1 and hook.failed == 1 and hook.last_error == "HTTP 400"
    finally:
        refusing.close()


@pytest.mark.parametrize("url, message", [
    ("ftp://host/x", "http:// or https://"), ("not a url", "http:// or https://"), ("http:///nohost", "http://"),
    ("http://127.0.0.1:abc/", "not a URL \\(Port could not be cast"), ("http://[::1/", "not a URL \\(Invalid IPv6"),
])
def test_a_bad_url_is_refused_when_given(url, message):
    """A port of 'abc' was accepted, and the sender thread died on the first alert."""
    with pytest.raises(ConfigError, match=message):
        Webhook(url)


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout():
    """The timeout was per socket operation: a trickled answer held the sender over 5 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        stop = threading.Event()

        def trickle() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                    if stop.wait(0.2):
                        return
                    connection.sendall(bytes([byte]))

        threading.Thread(target=trickle, daemon=True).start()
        hook = Webhook(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=1.0, retries=0)
        started = time.monotonic()
        hook.notify(Event("dog", 1.0, None, 0.8))
        hook.close(wait_seconds=10)
        took = time.monotonic() - started
        stop.set()
    assert took < 2.0 and hook.sent == 0 and hook.failed == 1 and "within 1 s" in hook.last_error


def test_a_receivers_raw_bytes_never_reach_the_error_line():
    """A receiver answering control characters and newlines had them printed raw in the 'not delivered' line."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"\x1b[2J\x1b]0;owned\x07 evil\nwarning: all delivered" + b"x" * 500 + b"\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        hook = Webhook(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=2.0, retries=0)
        hook.notify(Event("dog", 1.0, None, 0.8))
        hook.close(wait_seconds=5)
    line = Tellers([hook]).close()[0]
    assert hook.failed == 1 and "\\x1b[2J" in hook.last_error and len(hook.last_error) <= 203
    assert line.isprintable() and "\n" not in line and "\x1b" not in line


def test_listen_says_every_alert_a_dead_receiver_lost_and_exits_non_zero(esc50_root, esc50_rows):
    """60 alerts to a dead hub were reported as '0 sent, 3 failed, 0 dropped', exit 0."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    dogs = [esc50_root / "audio" / r["filename"] for r in esc50_rows if r["category"] == "dog"][:4]
    done = hearai("listen", str(dogs[0]), "--only", "dog", "--webhook", url, "--json")
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and printed, done.stderr
    warning = done.stderr.strip().splitlines()[-1]
    assert warning.startswith(f"warning: webhook: {len(printed)} of {len(printed)} alerts NOT delivered "), warning
    assert "Connection refused" in warning and "0 sent" in warning


def test_listen_posts_the_alerts_it_prints(receiver, esc50_root, esc50_rows):
    siren = esc50_root / "audio" / next(r["filename"] for r in esc50_rows if r["category"] == "siren")
    done = hearai("listen", str(siren), "--only", "siren", "--webhook", receiver.url, "--json")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert printed and [(p["label"], p["onset"], p["offset"]) for p in receiver.posted] == \
        [(p["label"], p["onset"], p["offset"]) for p in printed]


def test_serve_posts_live_alerts(receiver, esc50_root, esc50_rows):
    from fastapi.testclient import TestClient

    from hearai import DEFAULT_MODEL, audio, load
    from hearai.serve import create_app

    model = load(DEFAULT_MODEL)
    hook = Webhook(receiver.url)
    api = TestClient(create_app(model, model_file="shipped", tellers=Tellers([hook])))
    siren = esc50_root / "audio" / next(r["filename"] for r in esc50_rows if r["category"] == "siren")
    heard = streamed_events(api, audio.load(siren, sample_rate=16_000), 16_000, chunks=50)
    _wait(lambda: len(receiver.posted) >= len(heard))
    assert "siren" in {p["label"] for p in receiver.posted}
    assert [p["label"] for p in receiver.posted] == [h["label"] for h in heard]


@pytest.fixture
def hanging_receiver() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/hook"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_listen_stopped_by_a_signal_says_what_was_not_delivered_and_exits_1(hanging_receiver, esc50_root, esc50_rows,
                                                                           stop, tmp_path):
    """SIGTERM ended listen at once with no word of the undelivered alert; Ctrl-C said it but exited 130."""
    siren = esc50_root / "audio" / next(r["filename"] for r in esc50_rows if r["category"] == "siren")
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as said:
        process = subprocess.Popen([sys.executable, "-m", "hearai.cli", "listen", str(siren), "--realtime", "--only",
                                    "siren", "--webhook", hanging_receiver, "--json"], stdout=subprocess.PIPE,
                                   stderr=said, text=True)
        assert process.stdout is not None and json.loads(process.stdout.readline())["label"] == "siren"
        process.send_signal(stop)
        assert process.wait(timeout=30) == 1
    lines = stderr.read_text().splitlines()
    assert lines[-2] == f"hearai listen: stopped ({stop.name})", lines
    assert re.match(r"warning: webhook: (\d) of \1 alerts NOT delivered \(0 failed, 0 dropped while it was behind, "
                    r"\1 undelivered at exit; last error: no whole answer within 3 s\); 0 sent$", lines[-1]), lines


@pytest.mark.slow
def test_serve_stopped_by_sigterm_says_what_was_not_delivered_and_exits_1(hanging_receiver, esc50_root, esc50_rows,
                                                                          tmp_path):
    from websockets.sync.client import connect

    from hearai import audio
    from hearai.serve.server import spawn

    process, url = spawn(None, "--webhook", hanging_receiver, log=tmp_path / "stderr")
    try:
        siren = esc50_root / "audio" / next(r["filename"] for r in esc50_rows if r["category"] == "siren")
        wave = audio.load(siren, sample_rate=16_000)
        with connect(url.replace("http", "ws") + "/v1/stream?rate=16000&format=f32le", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(wave.astype(np.float32).tobytes()[: 16_000 * 4 * 4])  # 4 s, within the lead allowed
            while json.loads(ws.recv(timeout=30)).get("label") != "siren":
                pass
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 1
    finally:
        process.kill()
    lines = (tmp_path / "stderr").read_text().splitlines()
    assert "hearai serve: stopped (SIGTERM)" in lines, lines
    assert lines[-1].startswith("warning: webhook: ") and " alerts NOT delivered " in lines[-1], lines
