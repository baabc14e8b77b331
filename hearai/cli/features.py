"""Verbs that show and compute features: ``explain``, ``featurize``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hearai.cli import options
from hearai.errors import ConfigError
from hearai.machine import default_workers


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser(
        "explain", help="draw the featurizer's steps (waveform, FFT, log-mel) for two tones or a file",
        description="Without FILE: build a 1-s clip of two pure tones, draw waveform / FFT spectrogram / log-mel "
        "panels (and MFCCs when the feature config's kind is mfcc), print the recovered tone frequencies and compare "
        "10/150/1000 mel bands. With FILE: draw the same panels for your audio and print its strongest peaks.")
    p.add_argument("file", nargs="?", type=Path, help="an audio file (any format libsndfile reads)")
    p.add_argument("--out", type=Path, default=Path("explain-output"),
                   help="folder for the figures (default: %(default)s)")
    p.add_argument("--tones", type=float, nargs="+", default=[440.0, 2500.0], metavar="HZ",
                   help="tone frequencies of the base case (default: 440 2500)")
    options.add_feature_config(p)
    p.set_defaults(run=explain)

    p = verbs.add_parser(
        "featurize", help="turn audio files into model-ready log-mel windows (safetensors)",
        description="Decode every file (folders are searched recursively), compute the features "
        "the feature config describes and cut them into fixed-size windows. Writes tensors "
        "'windows' and 'clip_index', with the file list and feature config as metadata.")
    p.add_argument("inputs", nargs="+", type=Path, help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="worker processes; 0 works in this process (default: %(default)s, from the cores available)")
    options.add_feature_config(p)
    p.set_defaults(run=featurize)


def explain(args: argparse.Namespace) -> int:
    from hearai import audio, explain, plots

    config = options.feature_config(args.feature_config)
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
    if walk.mfcc is not None:
        print(f"MFCC: {len(walk.mfcc)} coefficients per frame from {config.n_mels} mel bands")
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


def featurize(args: argparse.Namespace) -> int:
    from hearai import audio
    from hearai.features import write_feature_file

    config = options.feature_config(args.feature_config)
    files = audio.find_audio_files(*args.inputs)
    if not files:
        raise ConfigError("no audio files found in " + ", ".join(str(p) for p in args.inputs))
    target, n_windows = write_feature_file(files, config, args.out, workers=args.workers)
    print(f"{len(files)} files -> {n_windows} windows of {config.n_features} x {config.window_frames}: {target}")
    return 0
