"""Load test of `hearai serve` on loopback: live streams and uploads at once; latency p50/p99, errors.

Each stream sends 12 s of audio (quiet noise, a siren at 4 s) as 100-ms s16le frames at real-time
pace, like a microphone, and times the siren's alert from the moment its first sample was sent.
The uploads all go at once, 2 s into the streams, half to /v1/classify and half to /v1/detect, and
are timed from request to answer. Every loop is bounded; the run stops by itself.

    .venv/bin/python bench/serve_load.py --model MODEL            # starts a server on a free port
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8000
    .venv/bin/python bench/serve_load.py --model MODEL --abuse    # the server's default limits under abuse
    .venv/bin/python bench/serve_load.py --model MODEL --flood 15 # 15 streams faster than real time + 1 live

``--abuse`` starts the server with its default limits (and a 3-s stream idle limit, so the run
is short) and measures what hostile clients can do: ABUSE_UPLOADS concurrent 599-s uploads to /v1/classify,
then as many to /v1/detect (the server's peak memory during each,
how many were analysed or refused with 503), streams that hold slots by
sending 4 bytes now and then, a WebSocket from a foreign Origin, and then (once the cool-down of the
hogs' address, which is this one, is over) whether a legitimate
stream is still served and alerts.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import soundfile as sf
import websockets

from hearai.data.synth import event_in_noise
from hearai.fsutil import write_text_atomic
from hearai.serve import ServeConfig
from hearai.serve.server import spawn

RATE = 16_000
FRAME_SECONDS = 0.1
STREAM_SECONDS, ONSET = 12.0, 4.0
UPLOAD_DELAY_SECONDS = 2.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": round(float(np.percentile(values, 50)), 3), "p99": round(float(np.percentile(values, 99)), 3),
            "max": round(float(max(values)), 3)}


async def one_stream(url: str, wave: np.ndarray) -> dict:
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    frame_bytes = int(FRAME_SECONDS * RATE) * 2
    onset_frame = int(ONSET / FRAME_SECONDS)
    sent_onset_at, alert_at, events = None, None, []
    async with websockets.connect(f"{url}/v1/stream?rate={RATE}&format=s16le", open_timeout=30) as ws:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert ready["type"] == "ready", ready

        async def read() -> None:
            nonlocal alert_at
            async for message in ws:
                event = json.loads(message)
                events.append(event)
                if event.get("label") == "siren" and event.get("offset") is None and alert_at is None:
                    alert_at = time.perf_counter()

        reader = asyncio.create_task(read())
        started = time.perf_counter()
        for k, i in enumerate(range(0, len(pcm), frame_bytes)):
            await asyncio.sleep(max(0.0, started + k * FRAME_SECONDS - time.perf_counter()))  # real-time pace
            if k == onset_frame:
                sent_onset_at = time.perf_counter()
            await ws.send(pcm[i : i + frame_bytes])
        await ws.send("end")
        await asyncio.wait_for(reader, 60)
        code = ws.close_code
    if code != 1000:
        raise RuntimeError(f"stream closed with {code}")
    latency = None if alert_at is None else alert_at - sent_onset_at
    return {"alert_seconds": latency, "events": len(events)}


async def one_upload(client: httpx.AsyncClient, url: str, endpoint: str, body: bytes) -> float:
    started = time.perf_counter()
    reply = await client.post(f"{url}{endpoint}", files={"file": ("siren.wav", body, "audio/wav")})
    if reply.status_code != 200:
        raise RuntimeError(f"{endpoint}: {reply.status_code} {reply.text[:200]}")
    return time.perf_counter() - started


async def load(url: str, *, streams: int, uploads: int) -> dict:
    wave = event_in_noise("siren", seconds=STREAM_SECONDS, onset=ONSET, sample_rate=RATE)
    buffer = io.BytesIO()
    sf.write(buffer, wave[int(3 * RATE) : int(8 * RATE)], RATE, subtype="PCM_16", format="WAV")
    clip = buffer.getvalue()
    ws_url = url.replace("http", "ws", 1)
    started = time.perf_counter()
    stream_tasks = [asyncio.create_task(one_stream(ws_url, wave)) for _ in range(streams)]
    await asyncio.sleep(UPLOAD_DELAY_SECONDS)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=uploads)) as client:
        upload_results = await asyncio.gather(
            *(one_upload(client, url, "/v1/classify" if k % 2 else "/v1/detect", clip) for k in range(uploads)),
            return_exceptions=True)
        stream_results = await asyncio.gather(*stream_tasks, return_exceptions=True)
        healthy = (await client.get(f"{url}/healthz")).status_code == 200
    errors = [repr(r) for r in [*upload_results, *stream_results] if isinstance(r, BaseException)]
    stream_ok = [r for r in stream_results if not isinstance(r, BaseException)]
    alerts = [r["alert_seconds"] for r in stream_ok if r["alert_seconds"] is not None]
    return {
        "streams": streams, "uploads": uploads, "errors": len(errors), "error_examples": errors[:5],
        "alerts_missed": len(stream_ok) - len(alerts), "healthy_after": healthy,
        "stream_alert_latency_s": percentiles(alerts),
        "upload_latency_s": percentiles([r for r in upload_results if not isinstance(r, BaseException)]),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


ABUSE_UPLOADS = 20
ABUSE_UPLOAD_SECONDS = 599.0
HOG_STREAMS = 16


def memory_mb(pid: int) -> dict[str, float]:
    """The server's peak (VmHWM) and current (VmRSS) resident memory."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = {key: int(line.split()[1]) / 1024 for line in status.splitlines() for key in ("VmHWM", "VmRSS")
             if line.startswith(key + ":")}
    return {"peak_rss_mb": round(found["VmHWM"], 1), "rss_mb": round(found["VmRSS"], 1)}


def reset_peak(pid: int) -> None:
    """Start the server's peak resident memory (VmHWM) over from its current size (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def hog(ws_url: str, seconds: float) -> str:
    """A stream that holds a slot: 4 bytes every 2 s. Returns how it ended."""
    try:
        async with websockets.connect(f"{ws_url}/v1/stream?format=s16le", open_timeout=10) as ws:
            await ws.recv()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await ws.send(b"\0\0\0\0")
                await asyncio.sleep(2.0)
            return "still open"
    except websockets.ConnectionClosed as closed:
        return f"closed {closed.rcvd.code if closed.rcvd else '?'}"
    except Exception as exc:  # refused at connect (busy), ...
        return f"refused: {type(exc).__name__}"


async def abuse(url: str, pid: int) -> dict:
    rate = RATE
    long_wave = (np.random.default_rng(1).standard_normal(int(ABUSE_UPLOAD_SECONDS * rate)) * 0.01)
    buffer = io.BytesIO()
    sf.write(buffer, long_wave.astype(np.float32), rate, subtype="PCM_16", format="WAV")
    body = buffer.getvalue()
    before = memory_mb(pid)
    uploads, codes = {}, []
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=ABUSE_UPLOADS)) as client:
        for route in ("/v1/classify", "/v1/detect"):
            reset_peak(pid)
            replies = await asyncio.gather(*(client.post(f"{url}{route}", files={"file": ("long.wav", body)})
                                             for _ in range(ABUSE_UPLOADS)), return_exceptions=True)
            uploads[route] = memory_mb(pid)
            codes += [r.status_code if not isinstance(r, BaseException) else repr(r) for r in replies]
    ws_url = url.replace("http", "ws", 1)
    hogs = [asyncio.create_task(hog(ws_url, 12.0)) for _ in range(HOG_STREAMS)]
    await asyncio.sleep(8.0)  # past the 3-s idle limit: slow streams lose their slots
    legit_after = ServeConfig().cooldown_seconds  # the hogs' address (this one) waits that long for a new stream
    try:
        async with websockets.connect(f"{ws_url}/v1/stream", origin="https://evil.example", open_timeout=10) as ws:
            await ws.recv()
            foreign = "served"
    except websockets.ConnectionClosed as closed:
        foreign = f"closed {closed.rcvd.code if closed.rcvd else '?'}"
    except websockets.InvalidStatus as refused:
        foreign = f"refused with HTTP {refused.response.status_code}"
    hog_endings = await asyncio.gather(*hogs)
    await asyncio.sleep(legit_after)
    wave = event_in_noise("siren", seconds=STREAM_SECONDS, onset=ONSET, sample_rate=RATE)
    legit = await asyncio.gather(one_stream(ws_url, wave), return_exceptions=True)
    return {
        "long_uploads": {"sent_to_each_route": ABUSE_UPLOADS, "seconds_each": ABUSE_UPLOAD_SECONDS,
                         "mb_each": round(len(body) / 2**20, 1), "analysed": codes.count(200),
                         "busy_503": codes.count(503), "other": [c for c in codes if c not in (200, 503)]},
        "server_memory_before": before, "server_memory_during_uploads": uploads,
        "hog_streams": {e: hog_endings.count(e) for e in sorted(set(hog_endings))},
        "foreign_origin_stream": foreign,
        "legitimate_stream": repr(legit[0]) if isinstance(legit[0], BaseException) else legit[0],
        "server_memory_end": memory_mb(pid),
    }


FLOOD_FRAME_SAMPLES = 131_072  # 256 KiB of s16le: 32.8 s of audio at 4 kHz, a frame


def flooder(ws_url: str, stop: threading.Event) -> dict[str, int]:
    """A client that sends FLOOD_FRAME_SAMPLES-sample frames at 4 kHz as fast as the server takes them, and
    connects again each time it is closed; how often each way ended it. A thread of its own with the
    blocking client: an asyncio sender whose sends never wait would starve this process's live stream."""
    from websockets.sync.client import connect

    frame = (np.random.default_rng(0).standard_normal(FLOOD_FRAME_SAMPLES) * 3000).astype("<i2").tobytes()
    endings: dict[str, int] = {}
    while not stop.is_set():
        try:
            with connect(f"{ws_url}/v1/stream?rate=4000&format=s16le", open_timeout=30, close_timeout=1) as ws:
                ws.recv(timeout=30)
                while not stop.is_set():
                    ws.send(frame)
            ended = "still open"
        except websockets.ConnectionClosed as closed:
            ended = f"closed {closed.rcvd.code if closed.rcvd else '?'}"
        except websockets.InvalidStatus as refused:
            ended = f"refused with HTTP {refused.response.status_code}"
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            ended = f"refused: {type(exc).__name__}"
        endings[ended] = endings.get(ended, 0) + 1
    return endings


async def flood(url: str, pid: int, streams: int) -> dict:
    """``streams`` flooding clients, and one real-time stream with a siren beside them."""
    ws_url = url.replace("http", "ws", 1)
    before, stop = memory_mb(pid), threading.Event()
    wave = event_in_noise("siren", seconds=STREAM_SECONDS, onset=ONSET, sample_rate=RATE)
    live = asyncio.ensure_future(one_stream(ws_url, wave))  # first: the floods share its address, and its wait
    await asyncio.sleep(1.0)
    flooders = [asyncio.create_task(asyncio.to_thread(flooder, ws_url, stop)) for _ in range(streams)]
    legit = (await asyncio.gather(live, return_exceptions=True))[0]
    during = memory_mb(pid)
    stop.set()
    ended = await asyncio.gather(*flooders)
    endings: dict[str, int] = {}
    for one in ended:
        for key, count in one.items():
            endings[key] = endings.get(key, 0) + count
    return {"flood_streams": streams, "flood_frame_seconds": FLOOD_FRAME_SAMPLES / 4000, "flood_endings": endings,
            "legitimate_stream": repr(legit) if isinstance(legit, BaseException) else legit,
            "server_memory_before": before, "server_memory_during": during, "server_memory_end": memory_mb(pid)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", type=Path, help="start `hearai serve MODEL` on a free loopback port")
    target.add_argument("--url", help="a running server on this machine, e.g. http://127.0.0.1:8000")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench/results/serve_load.json"))
    parser.add_argument("--abuse", action="store_true", help="with --model: the abuse cases, at the default limits")
    parser.add_argument("--flood", type=int, metavar="N", help="with --model: N streams sending audio as fast as "
                        "they can beside one real-time stream (N + 1 stream slots)")
    args = parser.parse_args()
    if args.flood:
        if args.model is None:
            parser.error("--flood needs --model (it reads the server's memory)")
        slots = str(args.flood + 1)
        server, url = spawn(args.model, "--max-streams", slots, "--max-streams-per-client", slots)
        try:
            result = asyncio.run(asyncio.wait_for(flood(url, server.pid, args.flood), 300))
        finally:
            server.terminate()
            server.wait(timeout=30)
        result["machine"] = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
        print(json.dumps(result, indent=2))
        write_text_atomic(args.out, json.dumps(result, indent=2))
        return 0 if not isinstance(result["legitimate_stream"], str) else 1
    if args.abuse:
        if args.model is None:
            parser.error("--abuse needs --model (it reads the server's memory)")
        server, url = spawn(args.model, "--stream-idle", "3")
        try:
            result = asyncio.run(asyncio.wait_for(abuse(url, server.pid), 900))
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(json.dumps(result, indent=2))
        write_text_atomic(args.out, json.dumps(result, indent=2))
        return 0
    server = None
    if args.model:
        server, url = spawn(args.model, "--max-streams", str(args.streams), "--max-streams-per-client",
                            str(args.streams), "--max-uploads", str(args.uploads))
    else:
        url = args.url.rstrip("/")
        if httpx.URL(url).host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("load only loopback servers (127.0.0.1, localhost, ::1)")
    try:
        result = asyncio.run(asyncio.wait_for(load(url, streams=args.streams, uploads=args.uploads), 600))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    result.update(model=str(args.model or url), machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 and result["healthy_after"] else 1


if __name__ == "__main__":
    sys.exit(main())
