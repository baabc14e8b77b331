"""The ``hearai`` command: one verb per pipeline stage; parsing and printing only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hearai import __version__
from hearai.errors import ConfigError, HearaiError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(verb=next((a for a in argv if not a.startswith("-")), ""))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except HearaiError as exc:
        print(f"hearai {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output folder that cannot be written, a full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hearai {args.verb}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hearai {args.verb}: interrupted", file=sys.stderr)
        return 130


def _parser(verb: str | None = None) -> argparse.ArgumentParser:
    """All verbs; options whose defaults import torch (training, device) only for the verb being run.

    So ``detect``, ``listen`` and ``predict`` with an ONNX model start without loading torch at all.
    """
    parser = argparse.ArgumentParser(
        prog="hearai",
        description="Sound event classification and detection, from any audio file to alerts.",
    )
    parser.add_argument("--version", action="version", version=f"hearai {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser(
        "explain", help="draw the featurizer's steps (waveform, FFT, log-mel) for two tones or a file",
        description="Without FILE: build a 1-s clip of two pure tones, draw waveform / Hamming FFT "
        "spectrogram / log-mel panels, print the recovered tone frequencies and compare 10/150/1000 "
        "mel bands. With FILE: draw the same panels for your audio and print its strongest peaks.",
    )
    p.add_argument("file", nargs="?", type=Path, help="an audio file (any format libsndfile reads)")
    p.add_argument("--out", type=Path, default=Path("explain-output"),
                   help="folder for the figures (default: %(default)s)")
    p.add_argument("--tones", type=float, nargs="+", default=[440.0, 2500.0], metavar="HZ",
                   help="tone frequencies of the base case (default: 440 2500)")
    _feature_config_option(p)
    p.set_defaults(run=_explain)

    p = verbs.add_parser(
        "synth", help="generate the embedded synthetic sound-event set and soundscapes",
        description="Write labelled clips (WAV + manifest.csv with path,label,fold) of "
        "ten classes (siren, alarm beep, car horn, dog bark, knock, ...) and soundscapes with a "
        "ground-truth table (file,label,onset,offset). The same seed gives the same audio.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--per-class", type=int, default=40, help="clips per class (default: %(default)s)")
    p.add_argument("--folds", type=int, default=5, help="folds assigned round-robin (default: %(default)s)")
    p.add_argument("--soundscapes", type=int, default=4, help="soundscapes to write (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds (default: %(default)s)")
    p.add_argument("--sample-rate", type=int, default=16_000, help="Hz (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(run=_synth)

    p = verbs.add_parser(
        "soundscapes", help="build real test soundscapes: ESC-50 events of a held-out fold over ESC-50 backgrounds",
        description="Lay event clips of one ESC-50 fold (trimmed of their silent padding) at known times over "
        "background clips of the same fold (the classes in hearai.data.soundscapes.BACKGROUNDS: rain, wind, ...), "
        "at each SNR; write WAVs and "
        "ground_truth.csv (file,label,onset,offset,snr_db) for 'hearai detect --evaluate'. Evaluate a model "
        "trained without that fold.")
    p.add_argument("--root", type=Path, required=True, help="the ESC-50 folder")
    p.add_argument("--fold", type=int, default=1, help="the held-out fold the clips come from (default: %(default)s)")
    p.add_argument("--subset", choices=("esc10", "esc50"), default="esc10",
                   help="event classes: ESC-10's or all ESC-50's, minus the backgrounds (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--snr", default="0,6,12", help="comma-separated SNRs in dB (default: %(default)s)")
    p.add_argument("--per-snr", type=int, default=4, help="soundscapes per SNR (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each (default: %(default)s)")
    p.add_argument("--events", type=int, default=8, help="events in each (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(run=_soundscapes)

    p = verbs.add_parser(
        "featurize", help="turn audio files into model-ready log-mel windows (safetensors)",
        description="Decode every file (folders are searched recursively), compute the features "
        "the feature config describes and cut them into fixed-size windows. Writes tensors "
        "'windows' and 'clip_index', with the file list and feature config as metadata.",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    p.add_argument("--workers", type=int, default=_default_workers(),
                   help="worker processes; 0 works in this process (default: %(default)s, from the cores available)")
    _feature_config_option(p)
    p.set_defaults(run=_featurize)

    p = verbs.add_parser(
        "prepare", help="check a dataset and write its clips as one CSV manifest (path,label,fold,source)",
        description="Read a corpus in its own layout, run every check (missing files, unknown labels, clips "
        "in two folds, ...) and write a manifest that --dataset csv reads back.",
    )
    _dataset_options(p)
    p.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    p.set_defaults(run=_prepare)

    p = verbs.add_parser(
        "cv", help="cross-validate on a dataset's folds: metrics.json, confusion matrix, curves, report",
        description="Each listed fold is the test fold once; training uses only the other listed folds "
        "(validation for early stopping is drawn from them). A partial fold list is reported as partial. "
        "Re-run with --resume to continue a killed run: finished folds are kept, the current one resumes "
        "from its last epoch.",
    )
    _dataset_options(p)
    p.add_argument("--out", type=Path, required=True, help="run folder (metrics.json, report.md, confusion.png, ...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--test-folds", type=_fold_list, metavar="K[,K]",
                   help="train and test only these folds in this process; other processes (e.g. on the same GPU) "
                   "run the rest into the same --out, and the one that finds every fold done writes the report "
                   "(bench/parallel_cv.py does this)")
    if _chosen(p, verb):
        _training_options(p)
    p.set_defaults(run=_cv)

    p = verbs.add_parser("train", help="train a classifier on chosen folds and save the model artifact",
                         description="Train on the listed folds (all by default), holding out a validation "
                         "split from them, and write one self-describing model file.")
    _dataset_options(p)
    p.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    p.add_argument("--checkpoint", type=Path, help="per-epoch checkpoint (default: OUT + .checkpoint.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    if _chosen(p, verb):
        _training_options(p)
    p.set_defaults(run=_train)

    p = verbs.add_parser("evaluate", help="score a trained model on a dataset's folds")
    p.add_argument("model", type=Path, help="model file written by 'hearai train'")
    _dataset_options(p)
    p.add_argument("--out", type=Path, help="folder for metrics.json, confusion.png/csv, predictions.csv")
    if _chosen(p, verb):
        _run_options(p)
    p.set_defaults(run=_evaluate)

    p = verbs.add_parser("predict", help="classify audio files: one JSON object per file")
    p.add_argument("model", type=Path,
                   help="model file: .safetensors from 'hearai train' or .onnx from 'hearai export'")
    p.add_argument("files", nargs="+", type=Path, help="audio files")
    p.set_defaults(run=_predict)

    p = verbs.add_parser("export", help="write the model as one ONNX graph (audio in, probabilities out)",
                         description="Export a trained model to ONNX: the featurizer, band scaler and network in "
                         "one graph that hearai.runtime runs with onnxruntime and NumPy, without PyTorch.")
    p.add_argument("model", type=Path, help="model file written by 'hearai train'")
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--int8", action="store_true", help="quantize the weights to int8 (dynamic quantization)")
    p.set_defaults(run=_export)

    p = verbs.add_parser(
        "detect", help="find sound events with timestamps in recordings of any length",
        description="Slide the model over each recording (streamed from disk, constant memory): where sound rises "
        "above the background, the model names it; per-class thresholds with hysteresis turn that into events "
        "(file,label,onset,offset,confidence in seconds).")
    p.add_argument("model", type=Path,
                   help="model file: .safetensors from 'hearai train' or .onnx from 'hearai export'")
    p.add_argument("files", nargs="+", type=Path, help="audio files or folders")
    p.add_argument("--out", type=Path, help="write the events to .csv or .json (default: print CSV)")
    p.add_argument("--plot", type=Path, help="timeline figure: probabilities over time, events on top (a .png "
                   "per file when several files are given: this is then a folder)")
    p.add_argument("--evaluate", type=Path, metavar="GROUND_TRUTH.csv",
                   help="score against file,label,onset,offset: event-based F1 (200-ms collar), segment-based "
                   "F1 and error rate (1-s segments)")
    _detect_options(p)
    p.set_defaults(run=_detect)

    p = verbs.add_parser(
        "listen", help="detect live: a microphone, raw PCM on stdin, or a file at real-time pace",
        description="Print an alert as each sound is decided (about 1.8 s after it starts with 2-s windows) and a "
        "line when it ends. Exactly one source: --device, --stdin, or FILE.")
    p.add_argument("model", type=Path, help="model file (.safetensors or .onnx)")
    p.add_argument("file", type=Path, nargs="?", help="play this file through the detector")
    p.add_argument("--realtime", action="store_true", help="with FILE: release audio at real-time pace")
    p.add_argument("--stdin", action="store_true", help="read raw interleaved PCM from standard input")
    p.add_argument("--rate", type=int, help="with --stdin: its sample rate in Hz (required)")
    p.add_argument("--format", dest="pcm_format", choices=("s16le", "s32le", "f32le"), default="s16le",
                   help="with --stdin: sample format (default: %(default)s)")
    p.add_argument("--channels", type=int, default=1, help="with --stdin: interleaved channels (default: 1)")
    p.add_argument("--device", help="microphone: a PortAudio device index or name (needs libportaudio2)")
    p.add_argument("--list-devices", action="store_true", help="list PortAudio devices and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object per event instead of text")
    _detect_options(p)
    p.set_defaults(run=_listen)

    p = verbs.add_parser(
        "serve", help="serve a model: the listening page, and an HTTP API to classify, detect and stream",
        description="Start the hearai service (FastAPI + uvicorn). Open / in a browser: it listens through the "
        "microphone and shows an alert for each sound it names, with a history, and draws the events of an "
        "uploaded file. The API: POST /v1/classify and /v1/detect take an audio upload, the WebSocket /v1/stream "
        "takes live PCM and sends events, GET /v1/model describes the model, /docs holds the OpenAPI "
        "documentation. Binds to loopback unless told otherwise; CORS is off.")
    p.add_argument("model", type=Path, help="model file (.safetensors or .onnx)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload (default: %(default)s)")
    p.add_argument("--max-audio-seconds", type=float, default=600.0,
                   help="longest uploaded recording (default: %(default)s)")
    p.add_argument("--upload-timeout", type=float, default=60.0,
                   help="seconds an upload may take to arrive (default: %(default)s)")
    p.add_argument("--max-streams", type=int, default=16, help="concurrent live streams (default: %(default)s)")
    p.add_argument("--stream-idle", type=float, default=20.0,
                   help="close a live stream after this many seconds without audio (default: %(default)s)")
    p.add_argument("--cors", nargs="*", default=[], metavar="ORIGIN",
                   help="allow these browser origins to call the API from other sites (default: none)")
    p.add_argument("--ssl-certfile", type=Path, help="serve HTTPS with this certificate: browsers give the "
                   "microphone only to https pages or to localhost")
    p.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key")
    _detect_options(p)
    p.set_defaults(run=_serve)

    p = verbs.add_parser("demo", help="run the pipeline end to end on embedded synthetic data")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)")
    p.set_defaults(run=_demo)
    return parser


def _chosen(parser: argparse.ArgumentParser, verb: str | None) -> bool:
    """Whether ``parser`` is the verb being run (options that import torch are added only then).

    ``verb=None`` builds every verb's options (a whole parser, e.g. for documentation or tests).
    """
    return verb is None or verb == parser.prog.split()[-1]


def _detect_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection (defaults suit most recordings)")
    group.add_argument("--threshold", type=float, help="probability that starts an event (default: 0.5)")
    group.add_argument("--release", type=float, help="probability below which it ends (default: 0.3)")
    group.add_argument("--ignore", help="comma-separated labels never reported (background classes, e.g. rain,wind)")
    group.add_argument("--only", help="comma-separated labels to report; the others are ignored")
    group.add_argument("--detect-config", type=Path, metavar="JSON",
                       help="a JSON file of DetectConfig fields (per-label thresholds, rise_db, merge_gap_seconds, "
                       "...); the options above override it")


def _dataset_options(parser: argparse.ArgumentParser) -> None:
    from hearai.data import KINDS

    parser.add_argument("--dataset", choices=KINDS, required=True, help="dataset layout")
    parser.add_argument("--root", type=Path, required=True,
                        help="the dataset folder (for csv: the manifest file with path,label[,fold][,source])")
    parser.add_argument("--folds", type=_fold_list, help="comma-separated folds, e.g. 1,2,10 (default: all)")
    parser.add_argument("--n-folds", type=int, default=5, help="folds to assign when the data has none (default: 5)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: $HEARAI_CACHE or ~/.cache/hearai)")
    parser.add_argument("--workers", type=int, default=_default_workers(),
                        help="featurizing processes (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _training_options(parser: argparse.ArgumentParser) -> None:
    from hearai.augment.config import MIXING
    from hearai.models import list_models
    from hearai.train import TrainConfig

    d = TrainConfig()
    names = [m.name for m in list_models()]
    parser.add_argument("--model", default=d.model, choices=names, help="network (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=d.learning_rate, help="peak learning rate (default: %(default)s)")
    parser.add_argument("--patience", type=int, default=d.patience,
                        help="stop after this many epochs without validation gain (default: %(default)s)")
    parser.add_argument("--validation-fraction", type=float, default=d.validation_fraction,
                        help="share of the training clips held out to pick the best epoch and stop early; 0 trains on "
                        "all of them and keeps the last epoch (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    a = d.augment
    group = parser.add_argument_group("augmentation (each switch alone; the defaults are the best measured recipe)")
    # Switch defaults stay None so that only switches actually given override --augment-config.
    group.add_argument("--scaler", action=argparse.BooleanOptionalAction,
                       help=f"per-band standardization fitted on the training clips (default: {_on(a.scaler)})")
    group.add_argument("--spec-augment", action=argparse.BooleanOptionalAction,
                       help=f"SpecAugment: {a.freq_masks} frequency masks of <= {a.freq_mask_bands} bands and "
                       f"{a.time_masks} time masks of <= {a.time_mask_frames} frames (default: {_on(a.spec_augment)})")
    group.add_argument("--mixing", choices=MIXING,
                       help="mix pairs of examples with soft labels: mixup, or between-class learning on log-mel "
                       f"power or on waveforms (default: {a.mixing})")
    group.add_argument("--mixup-alpha", type=float,
                       help=f"Beta(alpha, alpha) of the mixup ratio (default: {a.mixup_alpha})")
    group.add_argument("--waveform-augment", action=argparse.BooleanOptionalAction,
                       help="time shift, gain, time stretch, pitch shift and background noise on the audio, "
                       f"featurized on the fly (default: {_on(a.waveform)})")
    group.add_argument("--augment-config", type=Path, metavar="JSON",
                       help="a JSON file of AugmentConfig fields (mask widths, noise SNR, ...); the switches above "
                       "override it")
    _feature_config_option(parser)
    _run_options(parser)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _fold_list(text: str) -> list[int]:
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"folds must be comma-separated whole numbers, got {text!r}") from None
    if not folds:
        raise argparse.ArgumentTypeError("no folds given")
    return folds


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _default_workers() -> int:
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores < 2 else min(cores, 8)


def _feature_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-config", type=Path, metavar="JSON",
                        help="a JSON file of FeatureConfig fields to override the defaults "
                        '(e.g. {"n_mels": 128, "kind": "mfcc"})')


def _load_feature_config(path: Path | None):
    from hearai.features import FeatureConfig

    if path is None:
        return FeatureConfig()
    try:
        return FeatureConfig.from_dict(_read_json_object(path))
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _read_json_object(path: Path) -> dict:
    """A JSON file's top-level object (config fields), or a ConfigError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of config fields")
    return data


def _explain(args: argparse.Namespace) -> int:
    from hearai import audio, explain, plots

    config = _load_feature_config(args.feature_config)
    if args.file is None:
        wave = explain.two_tones(frequencies=tuple(args.tones), sample_rate=config.sample_rate)
        title = "Two pure tones: " + " + ".join(f"{f:g} Hz" for f in args.tones)
        name = "two_tones"
    else:
        wave = audio.load(args.file, sample_rate=config.sample_rate)
        title, name = f"{args.file.name} at {config.sample_rate} Hz", args.file.stem
    walk = explain.walk(wave, config, n_peaks=len(args.tones) if args.file is None else 3)
    panels = plots.explain_panels(walk, args.out / f"{name}.png", title=title)
    print(f"FFT bin width: {walk.bin_hz:.2f} Hz (sample rate {config.sample_rate} Hz, n_fft {config.n_fft})")
    if args.file is None:
        for truth, found in zip(sorted(args.tones), walk.peaks_hz):
            print(f"tone {truth:g} Hz -> recovered {found:.1f} Hz (error {abs(found - truth):.2f} Hz, "
                  f"{abs(found - truth) / walk.bin_hz:.2f} bins)")
        rows = explain.band_counts(wave, config)
        bands = plots.band_comparison(rows, config.sample_rate, len(wave) / config.sample_rate,
                                      args.out / "band_counts.png")
        for n_mels, empty, _ in rows:
            print(f"{n_mels:5d} mel bands: {empty} empty")
        print(f"figure: {bands}")
    else:
        print("strongest spectral peaks: " + ", ".join(f"{p:.1f} Hz" for p in walk.peaks_hz))
    print(f"figure: {panels}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from hearai.data import synth

    manifest = synth.generate_clips(args.out, per_class=args.per_class, seed=args.seed,
                                    sample_rate=args.sample_rate, seconds=args.seconds, folds=args.folds)
    print(f"clips: {len(synth.LABELS)} classes x {args.per_class}, manifest: {manifest}")
    if args.soundscapes > 0:
        truth = synth.generate_soundscapes(args.out / "soundscapes", count=args.soundscapes,
                                           seed=args.seed, sample_rate=args.sample_rate)
        print(f"soundscapes: {args.soundscapes}, ground truth: {truth}")
    return 0


def _soundscapes(args: argparse.Namespace) -> int:
    from hearai.data.soundscapes import SoundscapeSpec, build_esc50_soundscapes

    try:
        snrs = tuple(float(x) for x in args.snr.split(","))
    except ValueError as exc:
        raise ConfigError(f"--snr: expected comma-separated numbers, got {args.snr!r}") from exc
    spec = SoundscapeSpec(root=args.root, fold=args.fold, subset=args.subset, seconds=args.seconds,
                          events=args.events, snrs_db=snrs, per_snr=args.per_snr, seed=args.seed)
    truth = build_esc50_soundscapes(spec, args.out)
    print(f"soundscapes: {len(snrs) * args.per_snr} of {args.seconds:g} s, ground truth: {truth}")
    return 0


def _featurize(args: argparse.Namespace) -> int:
    from hearai import audio
    from hearai.features import write_feature_file

    config = _load_feature_config(args.feature_config)
    files = audio.find_audio_files(*args.inputs)
    if not files:
        raise ConfigError("no audio files found in " + ", ".join(str(p) for p in args.inputs))
    target, n_windows = write_feature_file(files, config, args.out, workers=args.workers)
    print(f"{len(files)} files -> {n_windows} windows of {config.n_features} x {config.window_frames}: {target}")
    return 0


def _prepare_run(args: argparse.Namespace, features=None):
    """The dataset, feature config (the model's own, when given) and run options a verb needs."""
    import os

    import torch

    from hearai.data.cache import FeatureCache
    from hearai.evaluate import RunOptions

    world = _start_distributed(args)
    if args.device == "cpu" and hasattr(os, "sched_getaffinity") and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // world))
    dataset = _load_dataset(args)
    features = features or _load_feature_config(getattr(args, "feature_config", None))
    run = RunOptions(cache=FeatureCache(features, args.cache), workers=args.workers, device=args.device,
                     progress=not args.quiet and _is_main_process(), resume=getattr(args, "resume", False))
    return dataset, features, run


def _start_distributed(args: argparse.Namespace) -> int:
    """Under torchrun (WORLD_SIZE > 1) join the process group; returns the number of processes."""
    import os

    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        if args.verb != "train":
            raise ConfigError("distributed runs (torchrun) are supported for 'hearai train'; run this verb alone")
        if args.device.startswith("cuda"):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(args.device)
        torch.distributed.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    return world


def _is_main_process() -> bool:
    import torch

    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def _train_config(args: argparse.Namespace):
    from hearai.train import TrainConfig

    return TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       patience=args.patience, validation_fraction=args.validation_fraction, seed=args.seed,
                       augment=_augment_config(args))


def _augment_config(args: argparse.Namespace):
    from hearai.augment import AugmentConfig

    fields = _read_json_object(args.augment_config) if args.augment_config else {}
    given = {"scaler": args.scaler, "spec_augment": args.spec_augment, "mixing": args.mixing,
             "mixup_alpha": args.mixup_alpha, "waveform": args.waveform_augment}
    fields.update({k: v for k, v in given.items() if v is not None})
    try:
        return AugmentConfig.from_dict(fields)
    except TypeError as exc:
        raise ConfigError(f"{args.augment_config}: {exc}") from exc


def _load_dataset(args: argparse.Namespace):
    """The dataset the --dataset/--root/--n-folds options name, its warnings printed."""
    from hearai.data import prepare

    dataset = prepare(args.dataset, args.root, n_folds=args.n_folds, seed=getattr(args, "seed", 0))
    for warning in dataset.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return dataset


def _prepare(args: argparse.Namespace) -> int:
    from hearai.data import write_manifest

    dataset = _load_dataset(args)
    if args.folds:
        dataset = dataset.select(args.folds)
    summary = dataset.summary()
    target = write_manifest(dataset, args.out)
    print(f"{summary['clips']} clips, {summary['classes']} classes, folds {summary['folds']}: {target}")
    return 0


def _cv(args: argparse.Namespace) -> int:
    from hearai.evaluate import cross_validate

    dataset, features, run = _prepare_run(args)
    report = cross_validate(dataset, folds=args.folds, features=features, config=_train_config(args), run=run,
                            out=args.out, test_folds=args.test_folds)
    if report is None:
        print(f"fold(s) {args.test_folds} done in {args.out}; the report waits for the other folds")
        return 0
    partial = " (PARTIAL: not every fold)" if report["partial"] else ""
    per_fold = ", ".join(f"{r['fold']}: {100 * r['accuracy']:.1f}%" for r in report["folds"])
    print(f"{dataset.name} CV accuracy {100 * report['mean_accuracy']:.1f}% ± {100 * report['std_accuracy']:.1f}%"
          f"{partial} [{per_fold}]")
    print(f"metrics: {args.out / 'metrics.json'}\nconfusion matrix: {args.out / 'confusion.png'}\n"
          f"report: {args.out / 'report.md'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from hearai import plots
    from hearai.evaluate import train_classifier

    dataset, features, run = _prepare_run(args)
    chosen = dataset.select(args.folds) if args.folds else dataset
    checkpoint = args.checkpoint or args.out.with_name(args.out.name + ".checkpoint.pt")
    classifier, result = train_classifier(chosen, features=features, config=_train_config(args), run=run,
                                          checkpoint=checkpoint)
    if not _is_main_process():
        return 0
    classifier.save(args.out)
    curves = plots.training_curves(result.history, args.out.with_suffix(".curves.png"), title=f"{dataset.name}")
    checkpoint.unlink(missing_ok=True)
    last = result.history[result.best_epoch - 1]
    shown = f", validation accuracy {100 * last['val_accuracy']:.1f}%" if "val_accuracy" in last else ""
    print(f"model: {args.out} (best epoch {result.best_epoch}{shown})\ncurves: {curves}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.evaluate import evaluate_classifier

    classifier = load(args.model)
    dataset, _, run = _prepare_run(args, features=classifier.features)
    chosen = dataset.select(args.folds) if args.folds else dataset
    metrics = evaluate_classifier(classifier, chosen, run, out=args.out)
    print(f"accuracy {100 * metrics['accuracy']:.1f}% on {metrics['n_test']} clips, macro F1 {metrics['macro_f1']:.3f}")
    if args.out:
        print(f"metrics: {args.out / 'metrics.json'}\nconfusion matrix: {args.out / 'confusion.png'}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    classifier = _load_model(args.model)
    for path in args.files:
        print(json.dumps({"file": str(path), **classifier.predict(path)}), flush=True)
    return 0


def _export(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.export import export_onnx
    from hearai.runtime import load_onnx

    classifier = load(args.model)
    export_onnx(classifier, args.onnx, int8=args.int8)
    exported = load_onnx(args.onnx)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB{', int8 weights' if args.int8 else ''}): "
          f"{exported.crop_samples}-sample windows at {exported.features.sample_rate} Hz -> "
          f"{len(exported.labels)} class probabilities")
    return 0


def _detect_config(args: argparse.Namespace, labels: tuple[str, ...]):
    from hearai.detect import DetectConfig

    data = _read_json_object(args.detect_config) if args.detect_config else {}
    if args.threshold is not None:
        data["threshold"] = args.threshold
    if args.release is not None:
        data["release"] = args.release
    elif args.threshold is not None and "release" not in data:
        data["release"] = min(DetectConfig.release, args.threshold)
    ignore = set(_label_list(args.ignore, labels, "--ignore")) | set(data.get("ignore", ()))
    if args.only:
        ignore |= set(labels) - set(_label_list(args.only, labels, "--only"))
    data["ignore"] = sorted(ignore)
    return DetectConfig.from_dict(data)


def _label_list(text: str | None, labels: tuple[str, ...], option: str) -> list[str]:
    chosen = [x.strip() for x in (text or "").split(",") if x.strip()]
    unknown = [x for x in chosen if x not in labels]
    if unknown:
        raise ConfigError(f"{option}: the model has no label(s) {', '.join(unknown)}; it knows {', '.join(labels)}")
    return chosen


def _detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hearai import audio, plots
    from hearai.detect import detect_file, evaluate, read_ground_truth, write_events
    from hearai.detect.files import EVENT_COLUMNS, event_rows

    scorer = _load_model(args.model)
    config = _detect_config(args, scorer.labels)
    truth = read_ground_truth(args.evaluate) if args.evaluate else None
    files = audio.find_audio_files(*args.files)
    detections = []
    for path in tqdm(files, desc="detecting", unit="file", disable=len(files) < 2 or not sys.stderr.isatty()):
        detection = detect_file(scorer, path, config, record=args.plot is not None)
        detections.append(detection)
        if args.plot:
            target = args.plot if len(files) == 1 else args.plot / f"{path.stem}.png"
            known = [(t.label, t.onset, t.offset) for t in truth or [] if t.file == path.name]
            plots.event_timeline(detection.times, detection.probabilities, list(scorer.labels),
                                 [(e.label, e.onset, e.offset, e.confidence) for e in detection.events], target,
                                 title=f"{path.name}: {len(detection.events)} events", threshold=config.threshold,
                                 truth=known or None)
            print(f"timeline: {target}", file=sys.stderr)
    if args.out:
        write_events(args.out, detections, config=config, model=str(args.model))
        print(f"events: {args.out} ({sum(len(d.events) for d in detections)} in {len(files)} files)", file=sys.stderr)
    else:
        print(",".join(EVENT_COLUMNS))
        for row in event_rows(detections):
            print(",".join(str(x) for x in row))
    if truth is not None:
        scores = evaluate(truth, detections)
        print(json.dumps(scores, indent=2))
    return 0


def _listen(args: argparse.Namespace) -> int:
    from hearai.detect import listen as live

    if args.list_devices:
        print(live.list_devices())
        return 0
    sources = [name for name, given in (("--stdin", args.stdin), ("--device", args.device is not None),
                                        ("FILE", args.file is not None)) if given]
    if len(sources) != 1:
        raise ConfigError("give exactly one source: --device N, --stdin --rate R, or FILE"
                          + (f" (got {' and '.join(sources)})" if sources else ""))
    scorer = _load_model(args.model)
    config = _detect_config(args, scorer.labels)
    rate = scorer.features.sample_rate
    if args.stdin:
        if args.rate is None:
            raise ConfigError("--stdin needs --rate: raw PCM does not say its sample rate")
        rate = live.check_rate(args.rate)
        chunks = live.pcm_chunks(sys.stdin.buffer, rate=rate, pcm_format=args.pcm_format, channels=args.channels)
    elif args.file is not None:
        chunks = live.file_chunks(args.file, rate=rate, realtime=args.realtime)
    else:
        device = int(args.device) if args.device.isdigit() else args.device
        chunks = live.microphone_chunks(device=device, rate=rate)

    def show(event) -> None:
        if args.json:
            print(json.dumps(event.to_dict()), flush=True)
        elif event.offset is None:
            print(f"{event.onset:9.2f} s  ALERT  {event.label}  ({100 * event.confidence:.0f}%)", flush=True)
        else:
            print(f"{event.offset:9.2f} s  ended  {event.label}  ({event.onset:.2f}-{event.offset:.2f} s)", flush=True)

    print(f"listening ({', '.join(sources)}; alerts within {_latency(scorer, config):.1f} s of a sound's start)",
          file=sys.stderr, flush=True)
    live.listen(scorer, chunks, rate=rate, config=config, on_event=show)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hearai.serve import ServeConfig, create_app

    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    scorer = _load_model(args.model)
    config = ServeConfig(max_upload_mb=args.max_upload_mb, max_audio_seconds=args.max_audio_seconds,
                         upload_timeout_seconds=args.upload_timeout, max_streams=args.max_streams,
                         stream_idle_seconds=args.stream_idle, cors_origins=tuple(args.cors),
                         detect=_detect_config(args, scorer.labels))
    scheme = "https" if args.ssl_certfile else "http"
    print(f"serving {args.model.name} on {scheme}://{args.host}:{args.port}/ (API docs: /docs)", file=sys.stderr)
    uvicorn.run(create_app(scorer, model_file=args.model.name, config=config), host=args.host, port=args.port,
                log_level="warning", ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return 0


def _latency(scorer, config) -> float:
    from hearai.detect import StreamingDetector

    return StreamingDetector(scorer, config).latency_bound_seconds


def _load_model(path: Path):
    """A torch model file, or an exported .onnx one (run without torch)."""
    if path.suffix.lower() == ".onnx":
        from hearai.runtime import load_onnx

        return load_onnx(path)
    from hearai.artifact import load

    return load(path)


def _demo(args: argparse.Namespace) -> int:
    from hearai import demo

    demo.run(args.out)
    print(f"all outputs are under {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
