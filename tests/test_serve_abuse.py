"""The service under a hostile-input probe's reproducers: loud PCM, broken graphs, odd FLAC headers,
names that could never be removed, odd query values, repeated headers, streams faster than real
time and a server slower than the stream."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from onnx import TensorProto, helper
from starlette.websockets import WebSocketDisconnect

import hearai as hearai_package
from hearai import load
from hearai.detect import StreamingDetector
from hearai.serve import ServeConfig, create_app
from tests.test_serve import RATE, siren_scene, wav_bytes

SHIPPED = hearai_package.__file__.rsplit("/", 1)[0] + "/default_model/esc50-sed.onnx"


@pytest.fixture(scope="module")
def tiny_client(tiny_model) -> TestClient:
    return TestClient(create_app(load(tiny_model), config=ServeConfig(stream_idle_seconds=1.0, cooldown_seconds=0)))


def _closing(client: TestClient, url: str, *frames: bytes | str) -> WebSocketDisconnect:
    """Open ``url``, send ``frames`` after the ready message, and return how the server closed it."""
    with client.websocket_connect(url) as socket:
        with pytest.raises(WebSocketDisconnect) as closed:
            if frames:
                assert socket.receive_json()["type"] == "ready"
            for frame in frames:
                socket.send_bytes(frame) if isinstance(frame, bytes) else socket.send_text(frame)
            socket.receive_text()
    return closed.value


def test_pcm_beyond_the_sample_bound_closes_the_stream_with_a_reason(tiny_client):
    """Finite 1e38 samples passed the NaN check, then an unhandled error dropped the connection."""
    loud = np.full(16_000, 1e38, dtype="<f4").tobytes()
    closed = _closing(tiny_client, "/v1/stream?format=f32le", loud, loud)
    assert closed.code == 1008 and "beyond ±10000" in closed.reason
    assert tiny_client.get("/healthz").status_code == 200


@pytest.mark.parametrize("query, message", [("rate=0", "between 4000 and"), ("rate=abc", "'abc' is not a whole"),
                                            ("rate=16000.5", "not a whole number")])
def test_a_rate_that_is_not_a_rate_is_refused_by_name(tiny_client, query, message):
    """?rate=0 was taken as the model's rate; ?rate=abc was a bare 403."""
    closed = _closing(tiny_client, f"/v1/stream?{query}")
    assert closed.code == 1008 and message in closed.reason


def test_a_repeated_origin_or_host_header_is_refused(tiny_client):
    """With two Origin headers the last one won."""
    reply = tiny_client.get("/v1/model", headers=[("origin", "http://testserver"), ("origin", "https://evil.example")])
    assert reply.status_code == 400 and reply.json() == {"error": "the origin header is given more than once"}


def _graph_that_cannot_run(path) -> None:
    """An ONNX file with a real hearai header, outputs of the shapes it says, whose graph asks for 10^11 floats."""
    header = next(p.value for p in onnx.load(SHIPPED).metadata_props if p.key == "hearai")
    nodes, outputs = [], []
    for name, shape in [("probabilities", [1_000_000_000, 50]), ("frame_probabilities", [1_000_000_000, 12, 50])]:
        size = helper.make_tensor(f"{name}_shape", TensorProto.INT64, [len(shape)], shape)
        nodes += [helper.make_node("Constant", [], [f"{name}_size"], value=size),
                  helper.make_node("ConstantOfShape", [f"{name}_size"], [name])]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", *shape[1:]]))
    graph = helper.make_graph(nodes, "huge", [helper.make_tensor_value_info("crops", TensorProto.FLOAT,
                                                                              ["n", "samples"])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    helper.set_model_props(model, {"hearai": header})
    onnx.save(model, str(path))


def test_a_graph_that_cannot_run_is_a_model_error_and_a_json_500(tmp_path):
    from hearai.errors import ModelError

    path = tmp_path / "huge.onnx"
    _graph_that_cannot_run(path)
    model = load(path)
    with pytest.raises(ModelError, match="huge.onnx: the ONNX graph failed to run: "):
        model.predict(siren_scene()[0], sample_rate=RATE)
    client = TestClient(create_app(model))
    reply = client.post("/v1/classify", files={"file": ("a.wav", wav_bytes(siren_scene()[0]))})
    assert reply.status_code == 500 and reply.json()["error"].startswith("the model failed: ")
    assert "/tmp" not in reply.text


def _flac_without_length(seconds: float = 5.0) -> bytes:
    """A FLAC whose STREAMINFO says 0 samples (allowed: "unknown"), as some encoders write when streaming."""
    buffer = io.BytesIO()
    wave = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * RATE))
    sf.write(buffer, wave.astype("float32"), RATE, format="FLAC")
    data = bytearray(buffer.getvalue())
    data[21] &= 0xF0  # the top 4 bits of the 36-bit sample count...
    data[22:26] = bytes(4)  # ...and the other 32
    return bytes(data)


def test_a_flac_that_does_not_say_its_length_is_measured_not_refused(tiny_client, tiny_model):
    """It was refused with 413 '576460752303424 s of audio'; the CLI decoded it correctly."""
    upload = {"file": ("unknown-length.flac", _flac_without_length())}
    found = tiny_client.post("/v1/detect", files=upload)
    assert found.status_code == 200 and found.json()["seconds"] == pytest.approx(5.0, abs=0.01)
    checked = tiny_client.post("/v1/sounds/check", files=upload)
    assert checked.status_code == 200 and checked.json()["seconds"] == pytest.approx(5.0, abs=0.01)
    strict = TestClient(create_app(load(tiny_model), config=ServeConfig(max_audio_seconds=3.0)))
    refused = strict.post("/v1/classify", files=upload)
    assert refused.status_code == 413 and "5 s of audio, over the 3-s limit" in refused.json()["error"]


@pytest.mark.parametrize("name", ["door/bell", "../../etc/passwd", "back\\slash"])
def test_a_taught_sound_cannot_be_named_what_could_never_be_removed(name, esc50_root, esc50_rows, tmp_path):
    """``door/bell`` was taught (201) and then every DELETE answered 404."""
    from hearai.serve.sounds import SoundTeacher

    shipped = load(SHIPPED.replace(".onnx", ".safetensors"))
    teacher = SoundTeacher(shipped, model_path=Path(SHIPPED.replace(".onnx", ".safetensors")), data_dir=tmp_path)
    client = TestClient(create_app(shipped, teacher=teacher))
    clips = [esc50_root / "audio" / r["filename"] for r in esc50_rows if r["category"] == "church_bells"][:3]
    reply = client.post("/v1/sounds", data={"name": name},
                        files=[("examples", (c.name, c.read_bytes())) for c in clips])
    assert reply.status_code == 422 and "may not hold / or \\" in reply.json()["error"]
    assert not (tmp_path / "taught.safetensors").exists()


def test_a_stream_faster_than_real_time_is_closed_before_its_audio_is_worked_on(tiny_model):
    """Each flood stream sent 32.8 s of audio a frame; 15 of them starved a real-time listener."""
    client = TestClient(create_app(load(tiny_model), config=ServeConfig(max_ahead_seconds=2.0, cooldown_seconds=0)))
    second = np.zeros(RATE, dtype="<i2").tobytes()
    closed = _closing(client, "/v1/stream?format=s16le", second, second, second)
    assert closed.code == 1008 and closed.reason.startswith("faster than real time: 3.0 s of audio ahead")
    flood = np.zeros(131_072, dtype="<i2").tobytes()  # 32.8 s at 4 kHz in one frame: refused before the model
    assert _closing(client, "/v1/stream?format=s16le&rate=4000", flood).reason.startswith("faster than real time")
    with client.websocket_connect("/v1/stream?format=s16le") as socket:  # two seconds ahead, then real time
        assert socket.receive_json()["type"] == "ready"
        for _ in range(2):
            socket.send_bytes(second)
        time.sleep(1.2)
        socket.send_bytes(second)
        socket.send_text("end")
        with pytest.raises(WebSocketDisconnect) as ended:
            while True:
                socket.receive_text()
    assert ended.value.code == 1000


def test_an_address_that_broke_a_rule_waits_before_its_next_stream(tiny_model):
    """Flooding clients connected again at once, each time they were closed, and starved the rest."""
    client = TestClient(create_app(load(tiny_model), config=ServeConfig(cooldown_seconds=1.0)))
    assert _closing(client, "/v1/stream?format=s16le", b"\0" * 3).code == 1008  # odd bytes: a bad frame
    started = time.monotonic()
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/v1/stream") as socket:
            socket.receive_json()
    assert refused.value.code == 1008 and time.monotonic() - started < 0.5
    time.sleep(1.0)
    with client.websocket_connect("/v1/stream") as socket:
        assert socket.receive_json()["type"] == "ready"


def test_the_slow_stream_rule_does_not_blame_the_client_for_the_servers_own_work(tiny_model, monkeypatch):
    """A busy server closed real-time clients as 'too slow: 0.5 s of audio in 21 s'."""
    honest = StreamingDetector.push

    def busy(self, samples):
        time.sleep(0.3)  # the server takes 3x real time over each 0.1-s frame
        return honest(self, samples)

    monkeypatch.setattr(StreamingDetector, "push", busy)
    config = ServeConfig(stream_idle_seconds=0.2, min_stream_speed=0.5)
    client = TestClient(create_app(load(tiny_model), config=config))
    frame = np.zeros(RATE // 10, dtype="<i2").tobytes()
    with client.websocket_connect("/v1/stream?format=s16le") as socket:
        assert socket.receive_json()["type"] == "ready"
        for _ in range(10):  # 1 s of audio over 3 s of the server's work: "too slow" by the clock
            socket.send_bytes(frame)
        socket.send_text("end")
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                socket.receive_text()
    assert closed.value.code == 1000, closed.value.reason


def test_status_says_what_each_alert_receiver_delivered(tiny_model):
    from hearai.detect.notify import Tellers
    from hearai.detect.tracks import Event
    from hearai.detect.webhook import Webhook

    hook = Webhook("http://127.0.0.1:9/", retries=0, timeout=0.5)  # the discard port: nobody answers
    client = TestClient(create_app(load(tiny_model), tellers=Tellers([hook])))
    hook.notify(Event("siren", 1.0, None, 0.9))
    deadline = time.monotonic() + 5
    while hook.failed == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    receivers = client.get("/v1/status").json()["alert_receivers"]
    assert [(r["name"], r["given"], r["sent"], r["lost"]) for r in receivers] == [("webhook", 1, 0, 1)]
    assert receivers[0]["last_error"]


def test_a_stream_that_sends_only_settings_is_closed_for_its_silence(tiny_model):
    """16 WebSockets sending only {"sensitivity": ...} every 5 s stayed open past --stream-idle and held every slot."""
    client = TestClient(create_app(load(tiny_model), config=ServeConfig(stream_idle_seconds=0.6, cooldown_seconds=0)))
    label = load(tiny_model).labels[0]
    with client.websocket_connect("/v1/stream?format=s16le") as socket:
        assert socket.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(15):  # 1.5 s of settings, a message every 0.1 s
                socket.send_text(json.dumps({"sensitivity": {label: 1}}))
                time.sleep(0.1)
            socket.send_bytes(np.zeros(RATE // 10, dtype="<i2").tobytes())  # had it been open, this and "end"
            socket.send_text("end")  # would have closed it with 1000
            while True:
                socket.receive_text()
    assert closed.value.code == 1008 and closed.value.reason == "no audio for 0.6 s"


def test_every_event_reaches_every_receiver_when_the_streams_socket_fails():
    """A failed socket send dropped the rest of the batch: the webhook never got 'alert siren 4.75'."""
    import asyncio

    from hearai.detect.tracks import Event
    from hearai.serve.app import _send_events

    class Told:
        def __init__(self) -> None:
            self.events: list = []

        def notify(self, event) -> None:
            self.events.append(event)

    class Gone:
        async def send_text(self, text: str) -> None:
            raise WebSocketDisconnect(1006)

    events, told = [Event("siren", 4.75, None, 0.9), Event("siren", 4.75, 6.0, 0.9)], Told()
    with pytest.raises(WebSocketDisconnect):
        asyncio.run(_send_events(Gone(), events, told))
    assert told.events == events


@pytest.mark.slow
def test_a_ten_minute_upload_is_classified_in_the_memory_of_a_few_seconds_of_it(ear_home, tmp_path):
    """One 599-s upload to /v1/classify took the default ear's server from 288 to 639 MB: it was decoded whole."""
    import subprocess
    import sys

    noise = 0.05 * np.random.default_rng(0).standard_normal(599 * RATE).astype(np.float32)
    for name, seconds in [("short.wav", 10), ("long.wav", 599)]:
        sf.write(tmp_path / name, noise[: seconds * RATE], RATE, subtype="PCM_16")
    code = ("import resource\n"
            "from hearai import load\nfrom hearai.ear.building import ear_model_path\n"
            "from hearai.detect.files import predict_file\n"
            "model = load(ear_model_path(None))\n"
            f"predict_file(model, {str(tmp_path / 'short.wav')!r})  # the network's buffers, the allocator's pools\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"predict_file(model, {str(tmp_path / 'long.wav')!r})\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ear_home)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 150, done.stdout  # MB above a 10-s recording's peak
