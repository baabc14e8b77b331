"""``--mqtt``: alerts published to a broker on loopback, one that is down, and one that never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hearai.detect.mqtt import MqttAlerts, topic_part
from hearai.detect.notify import QUEUE_SIZE
from hearai.detect.tracks import Event
from hearai.errors import ConfigError
from tests.conftest import hearai


class Broker:
    """Just enough of an MQTT 3.1.1 broker on loopback to record what a client publishes: it answers
    CONNECT with CONNACK, QoS-1 PUBLISH with PUBACK and PINGREQ with PINGRESP (``mute``: answers nothing)."""

    def __init__(self, *, mute: bool = False) -> None:
        self.published: list[tuple[str, dict]] = []
        self.logins: list[tuple[str, str]] = []
        self.mute = mute
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(connection,), daemon=True).start()

    def _client(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as stream:
            while (first := stream.read(1)):
                size, shift = 0, 0
                while True:  # the remaining length: 7 bits a byte, low bits first
                    byte = stream.read(1)[0]
                    size |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                body, kind = stream.read(size), first[0] >> 4
                if self.mute:
                    continue
                if kind == 1:  # CONNECT: protocol name, level, flags, keep-alive, client id, [user, password]
                    self._login(body)
                    connection.sendall(b"\x20\x02\x00\x00")
                elif kind == 3:
                    topic_length = int.from_bytes(body[:2], "big")
                    topic = body[2 : 2 + topic_length].decode()
                    packet_id = body[2 + topic_length : 4 + topic_length]
                    self.published.append((topic, json.loads(body[4 + topic_length :])))
                    connection.sendall(b"\x40\x02" + packet_id)
                elif kind == 12:
                    connection.sendall(b"\xd0\x00")

    def _login(self, body: bytes) -> None:
        flags, at = body[7], 10
        fields = []
        while at < len(body):
            length = int.from_bytes(body[at : at + 2], "big")
            fields.append(body[at + 2 : at + 2 + length].decode())
            at += 2 + length
        if flags & 0x80:
            self.logins.append((fields[1], fields[2] if flags & 0x40 else ""))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.close()


def test_each_alert_is_published_as_json_under_its_sound(broker):
    alerts = MqttAlerts(f"mqtt://hub:s%40cret@127.0.0.1:{broker.port}/home/hearai", source="kitchen")
    alerts.notify(Event("siren", 4.0, None, 0.91))
    alerts.notify(Event("front door/bell #2", 9.0, 9.6, 0.8))
    alerts.close()
    assert [(topic, p["type"], p["label"], p["source"]) for topic, p in broker.published] == [
        ("home/hearai/siren", "alert", "siren", "kitchen"),
        ("home/hearai/front_door_bell_2", "ended", "front door/bell #2", "kitchen")]
    assert broker.logins == [("hub", "s@cret")] and alerts.sent == 2 and alerts.failed == alerts.dropped == 0


def test_alerts_arrive_in_order_across_the_connection(broker):
    alerts = MqttAlerts(f"mqtt://127.0.0.1:{broker.port}")
    for i in range(60):  # the first ones wait for the connection, the rest go straight out
        alerts.notify(Event("dog", float(i), None, 0.9))
        time.sleep(0.001)
    alerts.close()
    assert [p["onset"] for _, p in broker.published] == [float(i) for i in range(60)] and alerts.sent == 60


def test_alerts_sent_while_the_broker_acknowledges_never_deadlock(broker):
    """Paho ran on_publish holding its message lock and waited there for ours, while notify held ours
    and waited in publish() for Paho's: a test run hung. Many alerts in a burst
    against a broker that acknowledges each at once met that race within a few hundred."""
    alerts = MqttAlerts(f"mqtt://127.0.0.1:{broker.port}")
    deadline = time.monotonic() + 10
    while not alerts._online and time.monotonic() < deadline:
        time.sleep(0.01)
    total = 0
    for _ in range(5):  # bursts below Paho's queue bound, each acknowledged while the next is sent
        burst = threading.Thread(target=lambda start=total: [alerts.notify(Event("dog", float(start + i), None, 0.9))
                                                             for i in range(QUEUE_SIZE // 2)], daemon=True)
        burst.start()
        burst.join(timeout=20)
        assert not burst.is_alive(), "notify is stuck"
        total += QUEUE_SIZE // 2
        time.sleep(0.05)
    alerts.close()
    assert [p["onset"] for _, p in broker.published] == [float(i) for i in range(total)]
    assert alerts.sent == total and alerts.failed == alerts.dropped == 0


def test_a_broker_that_is_down_or_mute_never_blocks_detection():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    mute = Broker(mute=True)
    try:
        for port in (down, mute.port):
            alerts = MqttAlerts(f"mqtt://127.0.0.1:{port}")
            started = time.perf_counter()
            for i in range(QUEUE_SIZE + 50):
                alerts.notify(Event("knock", float(i), None, 0.7))
            assert time.perf_counter() - started < 0.5  # 150 alerts handed over at once
            alerts.close(wait_seconds=0.5)
            assert alerts.sent == 0 and alerts.lost == alerts.given == QUEUE_SIZE + 50
            assert alerts.status(closed=True)["undelivered"] == QUEUE_SIZE + 50 - alerts.dropped - alerts.failed
            assert alerts.dropped >= 50
    finally:
        mute.close()


def test_listen_publishes_what_it_prints(broker, esc50_root, esc50_rows):
    siren = esc50_root / "audio" / next(r["filename"] for r in esc50_rows if r["category"] == "siren")
    done = hearai("listen", str(siren), "--only", "siren", "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--json")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert printed and [(t, p["onset"], p["offset"]) for t, p in broker.published] == \
        [(f"hearai/{p['label']}", p["onset"], p["offset"]) for p in printed]


@pytest.mark.parametrize("url", ["http://host/x", "mqtt:///nohost", "mqtt://host/a/+/b", "mqtt://host:99999",
                                 "mqtt://[::1/t", "mqtt://host:abc/t"])
def test_a_bad_broker_address_is_refused(url):
    with pytest.raises(ConfigError, match="--mqtt"):
        MqttAlerts(url)


def test_a_sound_name_is_one_topic_level():
    assert [topic_part(n) for n in ("dog", "baby crying", "a/b", "#1 + 2", "///")] == \
        ["dog", "baby_crying", "a_b", "1_2", "sound"]
