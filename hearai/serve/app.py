"""The HTTP service: classify and detect uploads, stream live audio over a WebSocket, the page.

Any model ``hearai detect`` takes (torch ``.safetensors`` or ``.onnx``) is served. Uploads are
checked by decoding, never by name: the bytes go to a private temporary folder (removed whatever
happens), libsndfile must read them, and size and duration are capped (the body itself by
``guard.BodyGuard`` before it is parsed); only ``max_concurrent_uploads`` are analysed at once.
``origin.OriginGuard`` refuses foreign ``Host`` names and browser ``Origin``s, HTTP and WebSocket
alike. Every refusal is a 4xx/503 JSON body ``{"error": "..."}``; model work runs in worker
threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import tempfile
import time
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from fastapi import Body, FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearai import __version__, audio
from hearai.detect import DetectConfig, FrameDetector, StreamingDetector, detect_file, predict_file, start_detector
from hearai.detect.buffer import RecentAudio
from hearai.detect.measured import latency_statement, model_card
from hearai.detect.notify import Tellers
from hearai.errors import ConfigError, HearaiError, ModelError, OutputError
from hearai.fsutil import remove_stale
from hearai.interface import SoundModel
from hearai.jsontext import parse_json
from hearai.serve.guard import BodyGuard
from hearai.serve.heard import Heard, HeardClip
from hearai.serve.origin import OriginGuard
from hearai.serve.sounds import Busy, SoundTeacher
from hearai.validation import positive_float, positive_int

STATIC = Path(__file__).with_name("static")
UPLOAD_FOLDER_PREFIX = "hearai-upload-"
T = TypeVar("T")
_READ_BYTES = 1 << 16
MAX_SETTINGS_CHARS = 64 * 1024  # a sensitivity for each of a few hundred sounds
PIECE_SECONDS = 1.0  # a stream's audio goes to the model in pieces this long at most
MODEL_WORKERS = os.cpu_count() or 1  # pieces of live audio worked on at once, over all streams
_FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and part headers around the file
# The page loads only its own scripts and styles and talks only to this server (ws: included).
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                            "object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                 "Permissions-Policy": "microphone=(self)"}


@dataclass(frozen=True)
class ServeConfig:
    """Limits of one server. CORS stays off unless origins are listed.

    ``min_stream_speed``: a live stream must deliver at least this fraction of real time, allowing
    it to lag by ``stream_idle_seconds`` (start-up, a slow network), or its slot is freed.
    ``max_ahead_seconds``: how far a stream's audio may run ahead of the clock (a client catching up
    after a pause) before the stream is closed: a live stream is real time. ``cooldown_seconds``: how
    long an address whose stream broke a rule waits before it may open another.
    ``max_concurrent_uploads``: uploads being decoded and scored at once; more get 503 and
    ``Retry-After``, so memory stays bounded whatever clients do. ``allowed_hosts``: the ``Host``
    names accepted (empty: any; ``hearai serve`` on loopback accepts only loopback names).
    """

    max_upload_mb: float = 20.0
    max_audio_seconds: float = 600.0
    upload_timeout_seconds: float = 60.0
    max_streams: int = 16
    stream_idle_seconds: float = 20.0
    max_frame_bytes: int = 256 * 1024
    max_streams_per_client: int = 4
    min_stream_speed: float = 0.5
    max_ahead_seconds: float = 10.0
    cooldown_seconds: float = 10.0
    max_concurrent_uploads: int = 2
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    detect: DetectConfig = field(default_factory=DetectConfig)

    def __post_init__(self) -> None:
        positive_float(self, "max_upload_mb", "max_audio_seconds", "upload_timeout_seconds", "stream_idle_seconds",
                       "min_stream_speed", "max_ahead_seconds")
        positive_int(self, "max_streams", "max_frame_bytes", "max_streams_per_client", "max_concurrent_uploads")
        if not 0 <= self.cooldown_seconds <= 3600:
            raise ConfigError(f"ServeConfig.cooldown_seconds must be 0-3600, got {self.cooldown_seconds!r}")


class Refused(Exception):
    """A request we answer with a 4xx/503 status and a one-line reason."""

    def __init__(self, status: int, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.retry_after = status, reason, retry_after


def create_app(model: SoundModel, *, model_file: str = "", config: ServeConfig | None = None,
               teacher: SoundTeacher | None = None, tellers: Tellers | None = None,
               authority: Path | None = None) -> FastAPI:
    """The FastAPI application around one loaded model; ``teacher``: how it learns new sounds (none: it does not).

    The model served is always ``teacher.model``: teaching a sound swaps it for the taught one
    (streams already open keep the model they started with). ``tellers``: the devices also told
    about live alerts (a webhook, an MQTT broker: ``hearai.detect.notify``). ``authority``: the
    certificate authority of ``hearai serve --https``, offered at /hearai-ca.crt for phones to install.
    """
    limits = config or ServeConfig()
    remove_stale(Path(tempfile.gettempdir()), f"{UPLOAD_FOLDER_PREFIX}*")  # left by a killed server
    teacher = teacher or SoundTeacher(model, model_path=Path(model_file or "model"), data_dir=None)
    # /docs is our own page over /openapi.json: FastAPI's Swagger UI loads its script from a CDN
    # and stays blank offline.
    app = FastAPI(title="hearai", version=__version__, docs_url=None, redoc_url=None,
                  description="Sound event classification and detection: see what is heard.")
    app.state.streams = 0
    app.state.streams_by_client = {}
    app.state.cooling = {}  # address -> when it may open a stream again
    app.state.uploads = 0
    app.state.model_work = asyncio.Semaphore(MODEL_WORKERS)
    app.state.clips = Heard()  # the latest alerts' audio
    if limits.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(limits.cors_origins), allow_methods=["GET", "POST"])
    app.add_middleware(BodyGuard, max_bytes=int(limits.max_upload_mb * 1024 * 1024) + _FORM_OVERHEAD_BYTES,
                       timeout_seconds=limits.upload_timeout_seconds)
    app.add_middleware(OriginGuard, allowed_hosts=limits.allowed_hosts, cors_origins=limits.cors_origins)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def page_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path in ("/", "/docs", "/sw.js") or request.url.path.startswith("/static/"):
            response.headers.update(_PAGE_HEADERS)
        return response

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:
        """At the root, so it may control the whole page (a worker's scope is its own folder)."""
        return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    if authority is not None:
        @app.get("/hearai-ca.crt", include_in_schema=False)
        async def certificate_authority() -> FileResponse:
            return FileResponse(authority, media_type="application/x-x509-ca-cert", filename="hearai-ca.crt")

    @app.get("/docs", include_in_schema=False)
    async def api_page() -> FileResponse:
        return FileResponse(STATIC / "api.html")

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:  # 404, 405, ...
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:  # logged by uvicorn as well
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:  # a form without its file, ...
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/status")
    async def status() -> dict[str, Any]:
        """Live streams now, and each alert receiver's deliveries (a count of alerts lost is never hidden)."""
        return {"streams": app.state.streams, "uploads": app.state.uploads,
                "alert_receivers": tellers.status() if tellers is not None else []}

    @app.get("/v1/model")
    async def describe_model() -> dict[str, Any]:
        """Labels, the feature config the model computes, its provenance and the detection settings."""
        return {"file": model_file, **teacher.model.describe(), "card": model_card(teacher.model),
                "detect_config": limits.detect.to_dict(),
                "limits": {k: v for k, v in asdict(limits).items() if k not in ("detect", "cors_origins")}}

    @app.post("/v1/classify")
    async def classify(file: UploadFile = File(...)) -> dict[str, Any]:
        """Class scores of an uploaded recording (a classifier's mean over its windows, a detector's maximum) and
        what crossed the thresholds: ``alerts`` and ``heard``, alarms heard by their pattern included
        (``hearai.detect.files.predict_file``)."""
        served = teacher.model
        return await _on_upload(app, file, limits, lambda path: predict_file(served, path))

    @app.post("/v1/detect")
    async def detect(file: UploadFile = File(...)) -> dict[str, Any]:
        """Events (label, onset, offset in seconds, confidence) in an uploaded recording."""
        served = teacher.model
        found = await _on_upload(app, file, limits, lambda path: detect_file(served, path, limits.detect))
        return {"seconds": round(found.seconds, 3), "events": [e.to_dict() for e in found.events]}

    @app.websocket("/v1/stream")
    async def stream(socket: WebSocket, rate: str | None = None, format: str = "f32le") -> None:
        """Binary PCM frames in (mono, ``rate`` Hz, f32le, s16le or s32le), events out as JSON as they are decided.

        Send the text ``end`` to flush and close. Closes with 1008 when a frame is malformed or
        oversized, when nothing arrives for ``stream_idle_seconds``, when audio arrives slower than
        ``min_stream_speed`` of real time or runs more than ``max_ahead_seconds`` ahead of it, or for a
        bad ``rate``/``format``; with 1011 when the model fails; with 1013 when the
        server already serves ``max_streams`` streams, or this client ``max_streams_per_client``.
        An address whose stream was closed for breaking a rule (1008) may open no new stream for
        ``cooldown_seconds`` (refused before the WebSocket is accepted: HTTP 403).
        """
        client = socket.client.host if socket.client else "?"
        cooling = app.state.cooling
        if cooling.get(client, 0.0) > time.monotonic():
            await socket.close(code=1008)  # before accept(): the handshake is refused, at next to no cost
            return
        cooling.pop(client, None)
        await socket.accept()
        if app.state.streams >= limits.max_streams:
            await socket.close(code=1013, reason=f"busy: {limits.max_streams} streams already")
            return
        try:
            audio.pcm_frame_bytes(format, 1)
            sample_rate = _stream_rate(rate, teacher.model.sample_rate)
        except HearaiError as exc:
            await socket.close(code=1008, reason=str(exc))
            return
        per_client = app.state.streams_by_client
        if per_client.get(client, 0) >= limits.max_streams_per_client:
            await socket.close(code=1013, reason=f"busy: {limits.max_streams_per_client} streams from {client} already")
            return
        app.state.streams += 1
        per_client[client] = per_client.get(client, 0) + 1
        try:
            closed = await _Stream(socket, start_detector(teacher.model, limits.detect, sample_rate=sample_rate),
                                   format, limits, tellers, app.state.model_work, app.state.clips).run()
            if closed == 1008:
                now = time.monotonic()
                for address in [a for a, until in cooling.items() if until <= now]:
                    del cooling[address]  # kept no longer than their wait: many addresses cannot fill memory
                cooling[client] = now + limits.cooldown_seconds
        except WebSocketDisconnect:
            pass
        finally:
            app.state.streams -= 1
            per_client[client] -= 1
            if not per_client[client]:
                del per_client[client]
            _return_memory()

    _add_sound_routes(app, teacher, limits)
    _add_correction_routes(app, teacher)
    return app


def _add_sound_routes(app: FastAPI, teacher: SoundTeacher, limits: ServeConfig) -> None:
    """``/v1/sounds``: list, check an example, test, teach and remove the sounds the user taught."""

    @app.get("/v1/sounds")
    async def sounds() -> dict[str, Any]:
        """The taught sounds (name, icon, examples, thresholds), and whether this server can teach."""
        return teacher.describe()

    @app.post("/v1/sounds/check")
    async def check_example(file: UploadFile = File(...)) -> dict[str, Any]:
        """One example of a sound to teach: its length, where its sound is (trimmed), its level; 422 if unusable."""
        from hearai.teach import read_example

        config = teacher.model.feature_config
        return await _on_uploads(app, [file], limits,
                                 lambda paths: read_example(paths[0], config, name=file.filename).summary())

    @app.post("/v1/sounds", status_code=201)
    async def teach_sound(name: str = Form(...), examples: list[UploadFile] = File(...),
                          negatives: list[UploadFile] = File(default=[]), icon: str | None = Form(default=None)
                          ) -> dict[str, Any]:
        """Teach a sound from 3-20 example recordings (and optional ones it must not be); kept across restarts."""
        n = len(examples)
        _, report = await _on_uploads(app, [*examples, *negatives], limits, lambda paths: teacher.teach(
            name, paths[:n], negatives=paths[n:], icon=icon))
        return {"name": teacher.model.labels[-1], "report": report, **teacher.describe()}

    @app.post("/v1/sounds/test")
    async def test_sound(examples: list[UploadFile] = File(...), test: UploadFile = File(...),
                         name: str = Form(default="the new sound")) -> dict[str, Any]:
        """Teach a sound without keeping it, then say whether it is heard in the ``test`` recording."""
        def trial(paths: list[Path]) -> dict[str, Any]:
            taught, report = teacher.teach(name, paths[:-1], negatives=[], icon=None, save=False)
            score = float(taught.predict_proba(paths[-1])[-1])
            return {"heard": score >= report["on"], "score": round(score, 4), "on": report["on"], "report": report}

        return await _on_uploads(app, [*examples, test], limits, trial)

    @app.delete("/v1/sounds/{name}")
    async def remove_sound(name: str) -> dict[str, Any]:
        """Remove a taught sound (built-in sounds stay)."""
        await _changing(lambda: teacher.forget(name), unknown="not a taught sound")
        return teacher.describe()


def _add_correction_routes(app: FastAPI, teacher: SoundTeacher) -> None:
    """``/v1/corrections``: "not this sound" and "yes, that was it" of an alert, and their undo."""

    @app.get("/v1/corrections")
    async def corrections() -> dict[str, Any]:
        """Per corrected sound: how many "not" and "yes", each correction (newest first), and whether this server
        takes corrections."""
        return teacher.corrector.describe()

    @app.post("/v1/corrections", status_code=201)
    async def correct(heard: str = Body(..., max_length=64), kind: str = Body(..., max_length=8),
                      sound: str | None = Body(default=None, max_length=200)) -> dict[str, Any]:
        """Say of an alert (its ``heard`` id, from the stream's event) that it was ``not`` its sound, or ``yes``
        (``sound``: another sound it was, or was not). The sound's decision is re-fitted and served at once."""
        clip = app.state.clips.get(heard)
        if clip is None:
            raise Refused(404, "that alert's sound is no longer kept (only the latest alerts' are)")
        said = sound or clip.label
        try:
            report = await run_in_threadpool(teacher.correct, clip.samples, clip.rate, said, kind,
                                             source=f"{clip.label} alert at {clip.onset:.1f} s")
        except Busy as exc:
            raise Refused(503, str(exc), retry_after=5) from exc
        except HearaiError as exc:
            raise Refused(422, str(exc)) from exc
        return {"report": report, **teacher.corrector.describe()}

    @app.delete("/v1/corrections/{id}")
    async def undo(id: str) -> dict[str, Any]:
        """Take a correction back: its sound decides as it did without it."""
        await _changing(lambda: teacher.undo(id), unknown="no correction")
        return teacher.corrector.describe()


async def _changing(change: Callable[[], object], *, unknown: str) -> None:
    """A change of the served model in a worker thread: 503 while another one runs, 404 when the error says
    ``unknown`` (what was named is not there), else 409."""
    try:
        await run_in_threadpool(change)
    except Busy as exc:
        raise Refused(503, str(exc), retry_after=5) from exc
    except HearaiError as exc:
        raise Refused(404 if unknown in str(exc) else 409, str(exc)) from exc


class _Stream:
    """One live stream: audio in, events out, at the pace of real time.

    Audio more than ``max_ahead_seconds`` ahead of the clock closes the stream (1008): a live
    source never runs ahead, and a stream that may run ahead commits the server to work, and a
    slot, for as long as the audio it already sent lasts, even after its client left. A frame goes
    to the model in pieces of at most ``PIECE_SECONDS``, and at most ``MODEL_WORKERS`` pieces (of
    all streams) are worked on at once, so one frame of memory per stream and a fair share of the
    model suffice. The slow-stream rule counts only the time spent waiting for the client, never
    the time this server spent on its own work.
    """

    def __init__(self, socket: WebSocket, detector: StreamingDetector | FrameDetector, pcm_format: str,
                 limits: ServeConfig, tellers: Tellers | None, work: asyncio.Semaphore, clips: Heard) -> None:
        self.socket, self.detector, self.pcm_format = socket, detector, pcm_format
        self.limits, self.tellers, self.work, self.clips = limits, tellers, work, clips
        self.recent = RecentAudio(detector.input_rate)  # what an alert's "not this sound" is said of
        self.started, self.heard, self.waited = time.monotonic(), 0, 0.0
        self.quiet = 0.0  # seconds spent waiting for the client since its last audio: settings hold no slot

    async def run(self) -> int:
        """Serve the stream to its end; the close code the server gave it."""
        detector = self.detector
        await self.socket.send_json({"type": "ready", "rate": detector.input_rate,
                                     "labels": list(detector.model.labels),
                                     "latency_bound_seconds": round(detector.latency_bound_seconds, 2),
                                     "latency": latency_statement(detector.model)})
        while (message := await self._next()) is not None:
            data, text = message.get("bytes"), message.get("text")
            problem = await (self._audio(data) if text is None else self._text(text))
            if problem is not None:
                code, reason = problem
                await self.socket.close(code=code, reason=_close_reason(reason))
                return code
        return 1008  # silent for too long

    async def _next(self) -> MutableMapping[str, Any] | None:
        """The client's next message; None once the stream was closed for its silence."""
        asked = time.monotonic()
        left = self.limits.stream_idle_seconds - self.quiet  # the server's own work never counts
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(self.socket.receive(), timeout=left)
        except asyncio.TimeoutError:
            await self.socket.close(code=1008, reason=f"no audio for {self.limits.stream_idle_seconds:g} s")
            return None
        self.waited += time.monotonic() - asked
        self.quiet += time.monotonic() - asked
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return message

    async def _text(self, text: str) -> tuple[int, str] | None:
        if text.strip() == "end":
            failed = await self._model(self.detector.flush)
            return failed or (1000, "")
        problem = _retune(self.detector, text)
        return None if problem is None else (1008, problem)

    async def _audio(self, data: bytes | None) -> tuple[int, str] | None:
        limits, rate = self.limits, self.detector.input_rate
        self.quiet = 0.0
        if data is None or len(data) > limits.max_frame_bytes:
            return 1008, f"bad frame of {0 if data is None else len(data)} bytes: at most {limits.max_frame_bytes}"
        try:
            samples = audio.decode_pcm(data, pcm_format=self.pcm_format)
        except HearaiError as exc:
            return 1008, f"bad frame: {exc}"
        # A live client may lag by up to the idle limit (start-up, a slow network): only a stream that
        # stays under min_stream_speed beyond that is holding its slot with almost nothing.
        behind = self.waited - limits.stream_idle_seconds
        if behind > 0 and (self.heard + len(samples)) / rate < limits.min_stream_speed * behind:
            return 1008, (f"too slow: {(self.heard + len(samples)) / rate:.1f} s of audio in {self.waited:.0f} s of "
                          f"waiting for it (at least {limits.min_stream_speed:g}x real time)")
        ahead = (self.heard + len(samples)) / rate - (time.monotonic() - self.started)
        if ahead > limits.max_ahead_seconds:
            return 1008, (f"faster than real time: {ahead:.1f} s of audio ahead of the clock (at most "
                          f"{limits.max_ahead_seconds:g}; send a recording to /v1/detect instead)")
        step = max(1, int(PIECE_SECONDS * rate))
        for start in range(0, len(samples), step):
            piece = samples[start : start + step]
            self.heard += len(piece)
            self.recent.add(piece)
            failed = await self._model(lambda: self.detector.push(piece))
            if failed:
                return failed
        return None

    async def _model(self, step: Callable[[], list]) -> tuple[int, str] | None:
        """Run a detector step in a worker thread (one of ``MODEL_WORKERS``) and send its events."""
        try:
            async with self.work:
                events = await run_in_threadpool(step)
        except HearaiError as exc:  # the model failed on audio that passed every check
            return 1011, f"the model failed: {exc}"
        heard = [self.clips.keep(HeardClip(e.label, self.recent.latest(), self.recent.rate, e.onset))
                 if e.offset is None else None for e in events]
        await _send_events(self.socket, events, self.tellers, heard)
        return None


def _retune(detector: StreamingDetector | FrameDetector, text: str) -> str | None:
    """Apply a ``{"sensitivity": {label: steps}}`` text frame; what is wrong with it, or None."""
    try:
        settings = parse_json(text, source="settings", max_chars=MAX_SETTINGS_CHARS, max_depth=3)
    except HearaiError as exc:
        return _close_reason(str(exc))
    if not (isinstance(settings, dict) and set(settings) == {"sensitivity"}
            and isinstance(settings["sensitivity"], dict)):
        return 'text frames carry \'end\' or {"sensitivity": {label: steps}}; audio goes in binary frames'
    try:
        detector.retune(DetectConfig.from_dict({"sensitivity": settings["sensitivity"]}).sensitivity)
    except HearaiError as exc:
        return _close_reason(f"bad sensitivity: {exc}")
    return None


def _stream_rate(rate: str | None, default: int) -> int:
    """``?rate=`` as a checked sample rate (absent: the model's own); 0, words and fractions are refused."""
    if rate is None:
        return audio.check_stream_rate(default)
    if not (rate.isdigit() and len(rate) < 10):
        raise ConfigError(f"rate {rate[:20]!r} is not a whole number of samples per second")
    return audio.check_stream_rate(int(rate))


def _close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame carries (123 bytes), on a character boundary."""
    return text.encode()[:120].decode(errors="ignore")


async def _send_events(socket: WebSocket, events: list, tellers: Tellers | None,
                       heard: list[str | None] | None = None) -> None:
    """Every event to every receiver first, then to the stream's socket: a client that left cannot cost the
    webhook or the broker an alert. ``heard``: each alert's kept audio (``Heard``), for a correction of it."""
    if tellers is not None:
        for event in events:
            tellers.notify(event)
    for event, clip in zip(events, heard or [None] * len(events), strict=True):
        await socket.send_text(json.dumps({"type": "event", **event.to_dict(), **({"heard": clip} if clip else {})}))


async def _on_upload(app: FastAPI, upload: UploadFile, limits: ServeConfig, work: Callable[[Path], T]) -> T:
    return await _on_uploads(app, [upload], limits, lambda paths: work(paths[0]))


async def _on_uploads(app: FastAPI, uploads: list[UploadFile], limits: ServeConfig,
                      work: Callable[[list[Path]], T]) -> T:
    """``work`` on the uploads, received into a private folder that is removed afterwards, in a worker thread.

    At most ``max_concurrent_uploads`` requests at once (others: 503 with Retry-After); the memory a
    decode took is handed back to the system afterwards.
    """
    if app.state.uploads >= limits.max_concurrent_uploads:
        raise Refused(503, f"busy: {limits.max_concurrent_uploads} recordings are being analysed; retry shortly",
                      retry_after=5)
    app.state.uploads += 1
    try:
        with tempfile.TemporaryDirectory(prefix=UPLOAD_FOLDER_PREFIX) as folder:
            paths = [await _receive(upload, Path(folder) / f"upload-{i}", limits) for i, upload in enumerate(uploads)]
            try:
                return await run_in_threadpool(work, paths)
            except Busy as exc:
                raise Refused(503, str(exc), retry_after=5) from exc
            except OutputError as exc:  # the server's own disk, not the upload
                raise Refused(500, f"the server could not save it: {_reasons(exc, paths)}") from exc
            except ModelError as exc:  # the served model failed, not the upload
                text = _reasons(exc, paths)
                text = text.split(": ", 1)[-1] if text.startswith("/") else text  # no server path to the client
                raise Refused(500, f"the model failed: {text}") from exc
            except HearaiError as exc:
                if len(uploads) > 1:
                    raise Refused(422, _reasons(exc, paths)) from exc
                named, text = uploads[0].filename, _reason(exc, paths[0])
                raise Refused(422, text if text.startswith(f"{named}: ") else f"{named}: {text}") from exc
    finally:
        app.state.uploads -= 1
        _return_memory()


async def _receive(upload: UploadFile, path: Path, limits: ServeConfig) -> Path:
    """Copy an upload to ``path`` (never the client's name: it is not trusted as a path) within the size cap,
    then prove it is audio within the duration cap."""
    cap = int(limits.max_upload_mb * 1024 * 1024)
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(_READ_BYTES):
            size += len(chunk)
            if size > cap:
                raise Refused(413, f"{upload.filename}: larger than the {limits.max_upload_mb:g} MB limit")
            out.write(chunk)
    if size == 0:
        raise Refused(400, f"{upload.filename}: empty upload")
    try:
        header = await run_in_threadpool(audio.info, path)
    except HearaiError as exc:
        raise Refused(415, f"{upload.filename}: not decodable audio: {_reason(exc, path)}") from exc
    if header.duration > limits.max_audio_seconds:
        raise Refused(413, f"{upload.filename}: {header.duration:.0f} s of audio, over the "
                           f"{limits.max_audio_seconds:g}-s limit")
    return path


def _reason(exc: HearaiError, path: Path) -> str:
    """The error without our temporary path, wherever it names it (the client named its own file)."""
    text = str(exc)
    return text.removeprefix(f"{path}: ").replace(str(path), "the upload")


def _reasons(exc: HearaiError, paths: list[Path]) -> str:
    text = str(exc)
    for path in paths:
        text = text.replace(f"{path}: ", "").replace(str(path), "an upload")
    return text


def _return_memory() -> None:
    """Give freed heap back to the system (glibc keeps it otherwise): the peak of one decode does not stay."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do
