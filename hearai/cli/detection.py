"""Verbs that find events: ``detect`` (recordings), ``listen`` (live), ``serve`` (the page and the API)."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hearai.cli import options
from hearai.detect.listen import KEPT_ALERTS
from hearai.detect.measured import EAR
from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser(
        "detect", help="find sound events with timestamps in recordings of any length",
        description="Slide the model over each recording (streamed from disk, constant memory) and write its "
        "events (file,label,onset,offset,confidence in seconds). The default model, the pretrained ear, scores "
        "every one of its alert sounds on a 1-s window every 0.25 s, several at once (the shipped ESC-50 detector, "
        "without the ear: every 80 ms); a classifier of your own names each sound that rises above the background. "
        "Per-sound thresholds with hysteresis turn scores into events.")
    options.add_model_and_files(p, "[MODEL] FILE_OR_DIR [FILE_OR_DIR ...]", nargs="+",
                                help="audio files or folders", metavar="FILE_OR_DIR")
    p.add_argument("--out", type=Path, help="write the events to .csv or .json (default: print CSV)")
    p.add_argument("--plot", type=Path, help="timeline figure: probabilities over time, events on top (a .png "
                   "per file when several files are given: this is then a folder)")
    p.add_argument("--evaluate", type=Path, metavar="GROUND_TRUTH.csv",
                   help="score against file,label,onset,offset: event-based F1 (200-ms collar), segment-based "
                   "F1 and error rate (1-s segments), onset-to-alert latency (audio read in 0.1-s blocks, as live) "
                   "and false alarms per hour")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it counts the seconds of audio done)")
    options.add_detect(p)
    p.set_defaults(run=detect)

    p = verbs.add_parser(
        "listen", help="detect live: a microphone, raw PCM on stdin, or a file at real-time pace",
        description="Print an alert as each sound is decided, and a line when it ends. How soon, as measured: "
        f"{EAR.latency_statement()} Exactly one source: --device, --stdin, or FILE.")
    options.add_model_and_files(p, "[MODEL] (FILE | --stdin --rate R | --device N)", nargs="*",
                                help="a file to play through the detector (or --stdin, or --device)")
    p.add_argument("--realtime", action="store_true", help="with FILE: release audio at real-time pace")
    p.add_argument("--stdin", action="store_true", help="read raw interleaved PCM from standard input")
    p.add_argument("--rate", type=int, help="with --stdin: its sample rate in Hz, 4000-384000 (required)")
    p.add_argument("--format", dest="pcm_format", choices=("s16le", "s32le", "f32le"), default="s16le",
                   help="with --stdin: sample format (default: %(default)s)")
    p.add_argument("--channels", type=int, default=1, help="with --stdin: interleaved channels (default: 1)")
    p.add_argument("--device", help="microphone: a PortAudio device index or name (needs libportaudio2)")
    p.add_argument("--list-devices", action="store_true", help="list PortAudio devices and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object per event instead of text")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the last 5 s of audio before each alert in DIR (NNNN-SOUND.flac; the latest "
                   f"{KEPT_ALERTS} are kept): 'hearai teach --not SOUND FILE' teaches the ear it was wrong")
    options.add_tellers(p)
    options.add_detect(p)
    p.set_defaults(run=listen)

    p = verbs.add_parser(
        "serve", help="serve a model: the listening page, and an HTTP API to classify, detect and stream",
        description="Start the hearai service (FastAPI + uvicorn). Open / in a browser: it listens through the "
        "microphone and shows an alert for each sound it names, with a history, and draws the events of an "
        "uploaded file. The API: POST /v1/classify and /v1/detect take an audio upload, the WebSocket /v1/stream "
        "takes live PCM and sends events, GET /v1/model describes the model, /v1/sounds lists, teaches and "
        "removes sounds taught from a few recordings (kept in --data-dir), /openapi.json describes the API. "
        "Binds to loopback unless told otherwise; CORS is off.")
    p.add_argument("model", type=Path, nargs="?",
                   help="model file (.safetensors or .onnx), 'ear' or a pretrained network's name (efficientat-mn04); "
                   "default: the ear when its weights are here, else the shipped detector of ESC-50's 50 sounds")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port, 0-65535 (0: any free one; default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload (default: %(default)s)")
    p.add_argument("--max-audio-seconds", type=float, default=600.0,
                   help="longest uploaded recording (default: %(default)s)")
    p.add_argument("--upload-timeout", type=float, default=60.0,
                   help="seconds an upload may take to arrive (default: %(default)s)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection may take to send its request headers (default: %(default)s)")
    p.add_argument("--max-streams", type=int, default=16, help="concurrent live streams (default: %(default)s)")
    p.add_argument("--max-streams-per-client", type=int, default=4,
                   help="concurrent live streams from one address (default: %(default)s)")
    p.add_argument("--max-uploads", type=int, default=2,
                   help="recordings analysed at once; more are refused with 503 and Retry-After (default: %(default)s)")
    p.add_argument("--stream-idle", type=float, default=20.0,
                   help="close a live stream after this many seconds without audio (default: %(default)s)")
    p.add_argument("--stream-cooldown", type=float, default=10.0,
                   help="seconds an address whose stream broke a rule (too fast, too slow, a bad frame) waits "
                   "before it may open another; 0: no wait (default: %(default)s)")
    p.add_argument("--cors", nargs="*", default=[], metavar="ORIGIN",
                   help="allow these browser origins to call the API from other sites (default: none)")
    p.add_argument("--allow-host", nargs="*", default=[], metavar="HOST:PORT",
                   help="Host names the server answers to, besides its own address (on loopback: 127.0.0.1, "
                   "localhost and [::1] with the port; on every interface: any name unless some are listed)")
    p.add_argument("--https", action="store_true",
                   help="serve HTTPS with a certificate hearai makes and keeps in --data-dir (a phone trusts its "
                   "authority once, from /hearai-ca.crt); prints the address and a QR code to open it. Browsers "
                   "give the microphone only to https pages or to localhost. With --host 0.0.0.0 for phones")
    p.add_argument("--ssl-certfile", type=Path, help="serve HTTPS with this certificate (and --ssl-keyfile) instead")
    p.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key")
    p.add_argument("--data-dir", type=Path, help="where sounds taught through the page are kept, across restarts "
                   "(default: $HEARAI_SERVE_DATA, else $XDG_DATA_HOME/hearai or ~/.local/share/hearai)")
    options.add_tellers(p)
    options.add_detect(p)
    p.set_defaults(run=serve)


def detect(args: argparse.Namespace) -> int:
    from hearai import audio
    from hearai.detect import evaluate, read_ground_truth, write_events
    from hearai.detect.files import EVENT_COLUMNS, detect_files, event_rows
    from hearai.ear.table import off_by_default

    model_path, inputs = options.split_model(args.inputs)
    if not inputs:
        raise ConfigError("give at least one audio file or folder to detect in")
    model_path, model = options.load_chosen(model_path)
    config = options.detect_config(args, model.labels, off_by_default(model.provenance))
    truth = read_ground_truth(args.evaluate) if args.evaluate else None
    files = audio.find_audio_files(*inputs)
    if not files:
        raise ConfigError("no audio files found in " + ", ".join(str(p) for p in inputs))
    detections = detect_files(model, files, config, plot=args.plot, truth=truth, progress=not args.quiet,
                              live=truth is not None)  # alert times to 0.1 s for the latency figures
    if args.plot:
        print(f"timeline: {args.plot}", file=sys.stderr)
    if args.out:
        write_events(args.out, detections, config=config, model=str(model_path))
        print(f"events: {args.out} ({sum(len(d.events) for d in detections)} in {len(files)} files)", file=sys.stderr)
    else:  # quoted like --out's CSV: a file name with a comma or a newline cannot forge a row
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(EVENT_COLUMNS)
        writer.writerows(event_rows(detections))
    if truth is not None:
        print(json.dumps(evaluate(truth, detections), indent=2))
    return 0


def listen(args: argparse.Namespace) -> int:
    from hearai import audio
    from hearai.detect import listen as live
    from hearai.detect.measured import latency_statement
    from hearai.ear.table import off_by_default

    if args.list_devices:
        print(live.list_devices())
        return 0
    model_path, files = options.split_model(args.inputs)
    if len(files) > 1:
        raise ConfigError(f"listen plays one FILE at a time, got {len(files)}")
    file = files[0] if files else None
    sources = [name for name, given in (("--stdin", args.stdin), ("--device", args.device is not None),
                                        ("FILE", file is not None)) if given]
    if len(sources) != 1:
        raise ConfigError("give exactly one source: --device N, --stdin --rate R, or FILE"
                          + (f" (got {' and '.join(sources)})" if sources else ""))
    _, model = options.load_chosen(model_path)
    config = options.detect_config(args, model.labels, off_by_default(model.provenance))
    rate = model.sample_rate
    if args.stdin:
        if args.rate is None:
            raise ConfigError("--stdin needs --rate: raw PCM does not say its sample rate")
        rate = audio.check_stream_rate(args.rate)
        chunks = live.pcm_chunks(sys.stdin.buffer, rate=rate, pcm_format=args.pcm_format, channels=args.channels)
    elif file is not None:
        chunks = live.file_chunks(file, rate=rate, realtime=args.realtime)
    else:
        device = int(args.device) if args.device.isdigit() else args.device
        chunks = live.microphone_chunks(device=device, rate=rate)

    tellers = options.tellers(args)
    keeper = live.AlertAudio(args.keep, rate) if args.keep else None
    if keeper is not None:
        chunks = keeper.watch(chunks)

    def show(event) -> None:
        if tellers is not None:
            tellers.notify(event)
        kept = keeper.keep(event) if keeper is not None and event.offset is None else None
        if args.json:
            print(json.dumps({**event.to_dict(), **({"kept": str(kept)} if kept else {})}), flush=True)
        elif event.offset is None:
            print(f"{event.onset:9.2f} s  ALERT  {event.label}  ({event.certainty or f'{event.confidence:.0%}'})"
                  + (f"  kept: {kept}" if kept else ""), flush=True)
        else:
            print(f"{event.offset:9.2f} s  ended  {event.label}  ({event.onset:.2f}-{event.offset:.2f} s)", flush=True)

    print(f"listening ({', '.join(sources)}). {latency_statement(model)}", file=sys.stderr, flush=True)
    with _until_stopped("listen", tellers) as ended:
        live.listen(model, chunks, rate=rate, config=config, on_event=show)
    return ended.status


class _Stopped(Exception):
    """Ctrl-C or SIGTERM (how systemd and docker stop a service): the end of listening, not an error."""


@dataclass
class _Ending:
    status: int = 0  # the command's exit status once the block ended


@contextmanager
def _until_stopped(verb: str, tellers) -> Iterator[_Ending]:
    """Run the block until it ends or a Ctrl-C or SIGTERM stops it; then deliver what the tellers hold (their
    grace), say which alerts were lost, and set the exit status: 1 when any alert was not delivered, else 0."""
    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signal.Signals(signum).name)

    ended = _Ending()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield ended
    except _Stopped as exc:
        print(f"hearai {verb}: stopped ({exc})", file=sys.stderr, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lines = tellers.close() if tellers is not None else []
        for line in lines:
            print(f"warning: {line}", file=sys.stderr, flush=True)
        ended.status = 1 if lines else 0


def serve(args: argparse.Namespace) -> int:
    from hearai import load_file
    from hearai.ear.table import default_data_dir
    from hearai.serve import ServeConfig, create_app, server
    from hearai.serve.sounds import SoundTeacher, warn

    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    if args.https and args.ssl_certfile:
        raise ConfigError("--https makes its own certificate: give it, or --ssl-certfile/--ssl-keyfile, not both")
    listening = server.bind(args.host, args.port)
    data_dir = args.data_dir or default_data_dir()
    model_path = options.chosen_model(args.model, data_dir=data_dir)
    teacher = SoundTeacher(load_file(model_path), model_path=model_path, data_dir=data_dir)
    warn(teacher.restore())
    model = teacher.model
    host, port = listening.getsockname()[:2]
    config = ServeConfig(max_upload_mb=args.max_upload_mb, max_audio_seconds=args.max_audio_seconds,
                         upload_timeout_seconds=args.upload_timeout, max_streams=args.max_streams,
                         max_streams_per_client=args.max_streams_per_client, max_concurrent_uploads=args.max_uploads,
                         stream_idle_seconds=args.stream_idle, cooldown_seconds=args.stream_cooldown,
                         cors_origins=tuple(args.cors),
                         allowed_hosts=server.allowed_hosts(args.host, port, extra=tuple(args.allow_host)),
                         detect=options.detect_config(args, model.labels))
    if not args.header_timeout > 0:
        raise ConfigError(f"--header-timeout must be positive, got {args.header_timeout}")
    address = server.public_address(host)
    shown = f"[{address}]" if ":" in address else address
    certificate = server.own_certificate(data_dir / "tls", host, address) if args.https else None
    scheme = "https" if args.https or args.ssl_certfile else "http"
    url = f"{scheme}://{shown}:{port}/"
    served = args.model.name if args.model else ("ear" if model_path.name.startswith("ear-") else model_path.name)
    print(f"serving {served} on {url} (API description: /openapi.json)", file=sys.stderr, flush=True)
    if certificate:
        server.explain_certificate(certificate, url, sys.stderr)
    tellers = options.tellers(args)
    app = create_app(model, model_file=served, config=config, teacher=teacher, tellers=tellers,
                     authority=certificate.authority if certificate else None)
    with _until_stopped("serve", tellers) as ended:  # uvicorn gives open streams their grace, then re-raises
        server.run(app, listening, ssl_certfile=certificate.certfile if certificate else args.ssl_certfile,
                   ssl_keyfile=certificate.keyfile if certificate else args.ssl_keyfile,
                   header_timeout=args.header_timeout, max_frame_bytes=config.max_frame_bytes)
    return ended.status
