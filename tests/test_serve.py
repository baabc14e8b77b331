"""The HTTP service with real audio: classify, detect, the live stream, and hostile input."""

from __future__ import annotations

import io
import json
import os
import socket
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hearai import load
from hearai.data import synth
from hearai.serve import ServeConfig, create_app
from hearai.serve.server import spawn

RATE = 16_000


@pytest.fixture(scope="module")
def model(synth_model):
    return load(synth_model)


LIMITS = ServeConfig(max_upload_mb=3.0, max_audio_seconds=40.0, max_streams=2, stream_idle_seconds=1.0,
                     max_frame_bytes=64_000, cooldown_seconds=0)  # one test client breaks the rules again and again


@pytest.fixture(scope="module")
def client(model) -> TestClient:
    """The service around a trained model: what it hears must be right."""
    return TestClient(create_app(model, model_file="synth.safetensors", config=LIMITS))


@pytest.fixture(scope="module")
def tiny_client(tiny_model) -> TestClient:
    """The same service around an untrained model: for refusals and limits, which need no trained model."""
    return TestClient(create_app(load(tiny_model), model_file="tiny.safetensors", config=LIMITS))


def wav_bytes(wave: np.ndarray, rate: int = RATE, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def siren_scene() -> tuple[np.ndarray, float]:
    return synth.event_in_noise("siren", seconds=10.0, onset=4.0, sample_rate=RATE), 4.0


def test_health_and_model_description(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["labels"] == sorted(synth.LABELS) and info["feature_config"]["n_mels"] == 64
    assert info["detect_config"]["threshold"] is None and info["limits"]["max_streams"] == 2
    assert info["file"] == "synth.safetensors" and info["model"] == "dsresnet"
    assert info["metrics"]["epoch"] == info["provenance"]["best_epoch"] and "history" not in info["provenance"]
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]


def test_page_and_its_scripts_are_served_with_a_strict_policy(tiny_client):
    page = tiny_client.get("/")
    assert page.status_code == 200 and 'id="listen"' in page.text and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the policy would block it
    for name, kind in [("app.js", "javascript"), ("capture.js", "javascript"), ("style.css", "css")]:
        asset = tiny_client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
    assert tiny_client.get("/static/../app.py").status_code == 404


def test_classify_and_detect_a_real_recording(client):
    wave, onset = siren_scene()
    clip = wav_bytes(wave[int(3.5 * RATE) : int(7.5 * RATE)], subtype="FLOAT", fmt="WAV")
    answer = client.post("/v1/classify", files={"file": ("siren.wav", clip)}).json()
    assert answer["label"] == "siren" and answer["confidence"] > 0.5
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    # A 44.1-kHz stereo FLAC: decoded and resampled like any other file.
    stereo = np.repeat(sf_resample(wave, 44_100)[:, None], 2, axis=1)
    found = client.post("/v1/detect", files={"file": ("scene.flac", wav_bytes(stereo, 44_100, fmt="FLAC"))}).json()
    assert found["seconds"] == pytest.approx(10.0, abs=0.01)
    assert [e["label"] for e in found["events"]] == ["siren"] and abs(found["events"][0]["onset"] - onset) <= 0.2


def sf_resample(wave: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(wave, RATE, rate).astype(np.float32)


def test_real_recordings_in_their_native_formats_are_classified_and_detected(client, us8k_root, esc50_root):
    """UrbanSound8K's clips as distributed (8-48 kHz, 8-32 bit, mono and stereo) and ESC-50 FLAC."""
    files = sorted((us8k_root / "audio").rglob("*.wav")) + sorted((esc50_root / "audio").glob("1-100*.flac"))
    assert len(files) >= 15
    for path in files:
        upload = {"file": (path.name, path.read_bytes())}
        answer = client.post("/v1/classify", files=upload)
        assert answer.status_code == 200, (path.name, answer.text)
        assert sum(answer.json()["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        found = client.post("/v1/detect", files=upload).json()
        assert found["seconds"] == pytest.approx(sf.info(path).duration, abs=0.01)
        assert all(0 <= e["onset"] < e["offset"] <= found["seconds"] + 1e-6 for e in found["events"])


def test_stream_sends_events_as_they_are_decided(client):
    wave, onset = siren_scene()
    received = []
    with client.websocket_connect("/v1/stream?rate=16000&format=s16le") as socket:
        hello = socket.receive_json()
        assert hello["type"] == "ready" and hello["latency_bound_seconds"] < 1.9
        socket.send_text(json.dumps({"sensitivity": {"siren": 0.5}}))  # taken at any time, nothing said back
        pcm = (wave * 32767).astype("<i2").tobytes()
        for i in range(0, len(pcm), 3200):
            socket.send_bytes(pcm[i : i + 3200])
        socket.send_text("end")
        while True:
            try:
                received.append(json.loads(socket.receive_text()))
            except WebSocketDisconnect as closed:
                assert closed.code == 1000
                break
    assert [(e["label"], e["offset"] is None) for e in received] == [("siren", True), ("siren", False)]
    assert abs(received[0]["onset"] - onset) <= 0.2


@pytest.mark.parametrize("case", ["truncated", "not-audio", "empty", "oversized", "too-long"])
def test_hostile_uploads_get_4xx_and_the_server_keeps_serving(tiny_client, case, tmp_path):
    wave, _ = siren_scene()
    body, status = {
        "truncated": (wav_bytes(wave)[:5000], 415),
        "not-audio": (b"<html>" + b"x" * 5000, 415),
        "empty": (b"", 400),
        "oversized": (b"\0" * (3 * 1024 * 1024 + 1), 413),
        "too-long": (wav_bytes(np.zeros(45 * 8000, np.float32), 8000), 413),
    }[case]
    for endpoint in ("/v1/classify", "/v1/detect"):
        reply = tiny_client.post(endpoint, files={"file": ("clip.wav", body)})
        assert reply.status_code == status, reply.text
        assert set(reply.json()) == {"error"} and "clip.wav" in reply.json()["error"]
        assert "/tmp" not in reply.json()["error"]  # the temporary path is never shown
    assert tiny_client.get("/healthz").status_code == 200


def test_uploads_leave_no_temporary_file_behind(tiny_client, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where this process puts temporary files
    wave, _ = siren_scene()
    big = wav_bytes(np.tile(wave, 3), subtype="FLOAT")  # 1.9 MB: over Starlette's 1-MB memory spool
    for endpoint, body, status in [("/v1/classify", big, 200), ("/v1/detect", big, 200),
                                   ("/v1/detect", big[:3000], 415), ("/v1/classify", b"not audio", 415)]:
        assert tiny_client.post(endpoint, files={"file": ("a.wav", body)}).status_code == status
        assert list(scratch.iterdir()) == []


def test_bodies_over_the_cap_are_refused_before_they_are_parsed(tiny_client):
    # A declared length over the cap: refused from the headers, the body never read.
    reply = tiny_client.post("/v1/detect", content=b"x" * 10, headers={"content-length": str(50 * 1024 * 1024)})
    assert reply.status_code == 413 and "limit" in reply.json()["error"]

    # No declared length (chunked): counted as it arrives and cut off at the cap.
    def chunks():
        for _ in range(80):  # 5 MB
            yield b"\0" * 65536

    reply = tiny_client.post("/v1/classify", content=chunks(),
                             headers={"content-type": "multipart/form-data; boundary=x"})
    assert reply.status_code == 413 and set(reply.json()) == {"error"}
    assert tiny_client.get("/healthz").status_code == 200


@pytest.mark.parametrize("case", ["odd-bytes", "oversized-frame", "bad-text", "bad-rate", "bad-format", "idle",
                                  "unknown-sound", "bad-sensitivity"])
def test_hostile_streams_are_closed_cleanly(tiny_client, case):
    url = {"bad-rate": "/v1/stream?rate=100", "bad-format": "/v1/stream?format=mp3"}.get(case, "/v1/stream")
    with tiny_client.websocket_connect(url) as socket:
        if case in ("bad-rate", "bad-format"):
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 1008
            return
        assert socket.receive_json()["type"] == "ready"
        if case == "odd-bytes":
            socket.send_bytes(b"\0" * 7)
        elif case == "oversized-frame":
            socket.send_bytes(b"\0" * 64_004)
        elif case == "bad-text":
            socket.send_text("hello")
        elif case == "unknown-sound":
            socket.send_text('{"sensitivity": {"no such sound": 1}}')
        elif case == "bad-sensitivity":
            label = tiny_client.get("/v1/model").json()["labels"][0]
            socket.send_text(json.dumps({"sensitivity": {label: "high"}}))
        with pytest.raises(WebSocketDisconnect) as closed:  # "idle": nothing sent for the 1-s idle limit
            socket.receive_text()
        assert closed.value.code == 1008
    assert tiny_client.get("/healthz").status_code == 200


def test_stream_cap_refuses_the_extra_stream(tiny_client):
    with tiny_client.websocket_connect("/v1/stream") as first, tiny_client.websocket_connect("/v1/stream") as second:
        assert first.receive_json()["type"] == second.receive_json()["type"] == "ready"
        with tiny_client.websocket_connect("/v1/stream") as third:
            with pytest.raises(WebSocketDisconnect) as closed:
                third.receive_json()
            assert closed.value.code == 1013
    with tiny_client.websocket_connect("/v1/stream") as again:  # freed slots are reused
        assert again.receive_json()["type"] == "ready"


# --- abuse -----------------------------------------------------------------------------------


def _guarded_client(tiny_model, **limits) -> TestClient:
    config = ServeConfig(**{"allowed_hosts": ("127.0.0.1:8000", "localhost:8000"), **limits})
    return TestClient(create_app(load(tiny_model), config=config), base_url="http://127.0.0.1:8000")


def test_foreign_hosts_and_origins_are_refused_for_http_and_websocket(tiny_model):
    """Any web page could drive the server through the user's browser, DNS rebinding included."""
    client = _guarded_client(tiny_model, cors_origins=("https://app.example",))
    assert client.get("/healthz").status_code == 200  # no Origin: not a browser on a foreign page
    assert client.get("/healthz", headers={"origin": "http://127.0.0.1:8000"}).status_code == 200  # its own page
    assert client.get("/healthz", headers={"origin": "https://app.example"}).status_code == 200  # listed for CORS
    foreign = client.get("/v1/model", headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and "origin 'https://evil.example'" in foreign.json()["error"]
    rebound = client.get("/v1/model", headers={"host": "evil.example:8000"})
    assert rebound.status_code == 400 and "host 'evil.example:8000' is not this server" in rebound.json()["error"]
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/v1/stream", headers={"host": "127.0.0.1:8000", "origin": "https://evil.example"}
                                      ) as socket:
            socket.receive_json()
    assert closed.value.code == 1008
    with client.websocket_connect("/v1/stream", headers={"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}
                                  ) as socket:
        assert socket.receive_json()["type"] == "ready"


def test_one_client_cannot_take_every_stream_slot(tiny_model):
    client = TestClient(create_app(load(tiny_model), config=ServeConfig(max_streams=8, max_streams_per_client=2)))
    with client.websocket_connect("/v1/stream") as a, client.websocket_connect("/v1/stream") as b:
        assert a.receive_json()["type"] == b.receive_json()["type"] == "ready"
        with client.websocket_connect("/v1/stream") as c:
            with pytest.raises(WebSocketDisconnect) as closed:
                c.receive_json()
            assert closed.value.code == 1013 and "streams from" in closed.value.reason


def test_a_stream_sending_almost_nothing_loses_its_slot(tiny_model):
    """16 streams sending 4 bytes every 15 s locked out real ones."""
    client = TestClient(create_app(load(tiny_model), config=ServeConfig(stream_idle_seconds=0.5)))
    with client.websocket_connect("/v1/stream?format=s16le") as socket:
        assert socket.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(20):
                socket.send_bytes(b"\0\0")
                time.sleep(0.05)
            socket.receive_text()
        assert closed.value.code == 1008 and "too slow" in closed.value.reason


def test_uploads_beyond_the_concurrency_cap_get_503_with_retry_after(tiny_model):
    app = create_app(load(tiny_model), config=ServeConfig(max_concurrent_uploads=1))
    client = TestClient(app)
    app.state.uploads = 1  # one recording is being analysed
    busy = client.post("/v1/classify", files={"file": ("a.wav", wav_bytes(siren_scene()[0]))})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5" and "busy" in busy.json()["error"]
    app.state.uploads = 0
    assert client.post("/v1/classify", files={"file": ("a.wav", wav_bytes(siren_scene()[0]))}).status_code == 200


def test_every_refusal_has_the_documented_shape_and_names_no_internal_path(tiny_client):
    assert set(tiny_client.get("/no/such/page").json()) == {"error"}
    missing_file = tiny_client.post("/v1/classify", files={"other": ("a.wav", b"x")})
    assert missing_file.status_code == 422 and "file" in missing_file.json()["error"]
    wave = siren_scene()[0].copy()
    wave[100] = 1e30  # far beyond full scale: was NaN in the answer, with HTTP 200
    loud = tiny_client.post("/v1/classify", files={"file": ("loud.wav", wav_bytes(wave, subtype="FLOAT"))})
    assert loud.status_code == 422 and loud.json()["error"].startswith("loud.wav: ")
    assert "hearai-" not in loud.text and "/tmp" not in loud.text and "NaN" not in loud.text


def test_a_connection_that_never_finishes_its_headers_is_closed(tiny_model):
    """uvicorn waited for request headers for ever: connections could be held by sending nothing."""
    process, url = spawn(tiny_model, "--header-timeout", "1")
    try:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # ...and no more
            started = time.monotonic()
            assert idle.recv(4096) == b""  # closed by the server
            assert time.monotonic() - started < 5
        with socket.create_connection((host, int(port)), timeout=10) as prompt:
            prompt.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            time.sleep(1.5)  # past the header deadline: a complete request is answered all the same
            assert prompt.recv(4096).startswith(b"HTTP/1.1 200")
        with socket.create_connection((host, int(port)), timeout=10) as kept:
            # A kept-alive connection got no deadline after its first request: 20 of 20 held at 45 s.
            kept.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            assert kept.recv(4096).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            for byte in b"GET /healthz HTTP/1.1\r\nHo":  # dribbled, one byte each 0.3 s
                try:
                    kept.sendall(bytes([byte]))
                except OSError:
                    break  # closed under us
                time.sleep(0.3)
                if _closed(kept):
                    break
            assert time.monotonic() - started < 3.0  # the 1-s deadline, not the 8 s of dribbling
    finally:
        process.terminate()
        process.wait(timeout=30)


def _closed(connection: socket.socket) -> bool:
    """Whether the other end closed ``connection`` (without waiting)."""
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_upload_folders_left_by_a_killed_server_are_removed_when_one_starts(tiny_model, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale, fresh, other = tmp_path / "hearai-upload-abc", tmp_path / "hearai-upload-def", tmp_path / "someone-else"
    for folder in (stale, fresh, other):
        folder.mkdir()
        (folder / "upload").write_bytes(b"x" * 1000)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    create_app(load(tiny_model))
    assert not stale.exists() and fresh.exists() and other.exists()
