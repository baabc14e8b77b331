"""Alerts to a home hub over MQTT (Home Assistant, openHAB, Node-RED, a light that flashes).

``--mqtt mqtt://[user:password@]broker[:1883]/hearai`` publishes each alert's JSON
(``notify.alert_payload``) to ``hearai/<sound>`` with QoS 1. The client is Eclipse Paho
(``paho-mqtt``): the reference MQTT client for Python, pure Python, no dependencies of its own.
Its network thread connects, reconnects (1 to 30 s apart) and sends; ``notify`` only hands it the
message, so detection never waits. While the broker is away the alerts wait here, in order, up to
``QUEUE_SIZE`` (then the oldest are dropped and counted), and go out when it connects: handing them
to Paho before it is connected would let a later alert overtake them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from urllib.parse import unquote

from hearai.detect.notify import QUEUE_SIZE, Delivery, alert_payload, split_url
from hearai.detect.tracks import Event
from hearai.errors import ConfigError


def topic_part(label: str) -> str:
    """A sound's name as one MQTT topic level: no level separator or wildcard, no spaces."""
    return re.sub(r"[/+#\s\x00]+", "_", label).strip("_") or "sound"


class MqttAlerts(Delivery):
    """Publish each alert to ``<prefix>/<sound>`` on the broker named by ``url``."""

    name = "mqtt"

    def __init__(self, url: str, *, source: str = "hearai") -> None:
        import paho.mqtt.client as mqtt

        super().__init__()
        parts, given_port = split_url(url, option="--mqtt")
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"--mqtt {url!r}: give mqtt://[user:password@]host[:port][/topic] (mqtts:// for TLS)")
        port = given_port or (8883 if parts.scheme == "mqtts" else 1883)
        self.prefix = parts.path.strip("/") or "hearai"
        if re.search(r"[+#\x00]", self.prefix) or len(self.prefix) > 200:
            raise ConfigError(f"--mqtt {url!r}: the topic may not hold + or # and is at most 200 characters")
        self.source = source
        self._pending: set[int] = set()  # handed to Paho, not yet acknowledged
        self._acked_first: set[int] = set()  # acknowledged before publish() returned its id
        self._waiting: deque[tuple[str, str]] = deque()
        self._online = False
        self._lock = threading.RLock()  # the order of alerts; Paho's thread calls back while notify may hold it
        # The acknowledgements' own lock: Paho calls on_publish holding its message lock, which
        # publish() needs, so on_publish must never wait for ``_lock`` (held around publish()).
        self._acks = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hearai-{uuid.uuid4().hex[:12]}",
                                   protocol=mqtt.MQTTv311)
        if parts.username:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
        if parts.scheme == "mqtts":
            self._client.tls_set()
        self._client.max_queued_messages_set(QUEUE_SIZE)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_publish = self._published
        self._client.on_connect_fail = self._unreachable
        self._client.connect_async(parts.hostname, port, keepalive=30)
        self._mqtt = mqtt  # before the network thread starts: its callbacks publish with it
        self._client.loop_start()

    def notify(self, event: Event) -> None:
        """Hand ``event`` to the network thread (or keep it until the broker is there); returns at once."""
        message = (f"{self.prefix}/{topic_part(event.label)}", json.dumps(alert_payload(event, self.source)))
        self.count(given=1)
        with self._lock:
            if self._online and not self._waiting:
                self._publish(*message)
                return
            if len(self._waiting) >= QUEUE_SIZE:
                self._waiting.popleft()  # the oldest waiting alert makes room
                self.count(dropped=1)
            self._waiting.append(message)

    def _publish(self, topic: str, body: str) -> None:
        info = self._client.publish(topic, body, qos=1)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.count(dropped=1)
        elif info.rc in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):  # sent, or on reconnection
            with self._acks:
                if info.mid in self._acked_first:
                    self._acked_first.discard(info.mid)
                    self.count(sent=1)
                else:
                    self._pending.add(info.mid)
        else:
            self.count(failed=1)
            self.note_error(self._mqtt.error_string(info.rc))

    def close(self, wait_seconds: float = 5.0) -> None:
        """Wait up to ``wait_seconds`` for the broker to take what is queued, then disconnect (what it never
        acknowledged is counted undelivered)."""
        deadline = time.monotonic() + wait_seconds
        while (self._pending or self._waiting) and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock, self._acks:
            self._pending.clear()
            self._waiting.clear()
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, _client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            self.note_error(f"broker refused: {reason}")
            return
        with self._lock:  # what waited goes first, in order; then notify publishes directly
            while self._waiting:
                self._publish(*self._waiting.popleft())
            self._online = True

    def _unreachable(self, _client, _userdata) -> None:
        self.note_error("cannot reach the broker")

    def _disconnected(self, _client, _userdata, _flags, reason, _properties) -> None:
        with self._lock:
            self._online = False
        if reason.is_failure:
            self.note_error(f"disconnected: {reason}")

    def _published(self, _client, _userdata, mid, _reason, _properties) -> None:
        with self._acks:
            if mid in self._pending:
                self._pending.discard(mid)
                self.count(sent=1)
            else:
                self._acked_first.add(mid)
