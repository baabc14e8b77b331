"""Verbs that make data: ``synth`` (the embedded synthetic set), ``soundscapes`` (real test soundscapes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser(
        "synth", help="generate the embedded synthetic sound-event set and soundscapes",
        description="Write labelled clips (WAV + manifest.csv with path,label,fold) of "
        "ten classes (siren, alarm beep, car horn, dog bark, knock, ...) and soundscapes with a "
        "ground-truth table (file,label,onset,offset). The same seed gives the same audio.")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--per-class", type=int, default=40, help="clips per class (default: %(default)s)")
    p.add_argument("--folds", type=int, default=5, help="folds assigned round-robin (default: %(default)s)")
    p.add_argument("--soundscapes", type=int, default=4, help="soundscapes to write (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds (default: %(default)s)")
    p.add_argument("--sample-rate", type=int, default=16_000, help="Hz (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(run=synth)

    p = verbs.add_parser(
        "soundscapes", help="build real test soundscapes: ESC-50 events of a held-out fold over ESC-50 backgrounds",
        description="Lay event clips of one ESC-50 fold (trimmed of their silent padding) at known times over "
        "background clips of the same fold (the classes in hearai.data.soundscapes.BACKGROUNDS: rain, wind, ...), "
        "at each SNR, up to --overlap sounds at once; write WAVs and ground_truth.csv (file,label,onset,offset,"
        "snr_db: one row per segment where a sound is heard) for 'hearai detect --evaluate'. Evaluate a model "
        "trained without that fold.")
    p.add_argument("--root", type=Path, required=True, help="the ESC-50 folder")
    p.add_argument("--fold", type=int, default=1, help="the held-out fold the clips come from (default: %(default)s)")
    p.add_argument("--subset", choices=("esc10", "esc50"), default="esc10",
                   help="event classes: ESC-10's or all ESC-50's, minus the backgrounds (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--snr", default="0,6,12", help="comma-separated SNRs in dB (default: %(default)s)")
    p.add_argument("--per-snr", type=int, default=4, help="soundscapes per SNR (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each (default: %(default)s)")
    p.add_argument("--events", type=int, default=8, help="event clips in each (default: %(default)s)")
    p.add_argument("--overlap", type=int, default=2, help="most sounds at once (default: %(default)s; 1: none overlap)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(run=soundscapes)


def synth(args: argparse.Namespace) -> int:
    from hearai.data import synth

    manifest = synth.generate_clips(args.out, per_class=args.per_class, seed=args.seed,
                                    sample_rate=args.sample_rate, seconds=args.seconds, folds=args.folds)
    print(f"clips: {len(synth.LABELS)} classes x {args.per_class}, manifest: {manifest}")
    if args.soundscapes > 0:
        truth = synth.generate_soundscapes(args.out / "soundscapes", count=args.soundscapes,
                                           seed=args.seed, sample_rate=args.sample_rate)
        print(f"soundscapes: {args.soundscapes}, ground truth: {truth}")
    return 0


def soundscapes(args: argparse.Namespace) -> int:
    from hearai.data.soundscapes import SoundscapeSpec, build_esc50_soundscapes

    try:
        snrs = tuple(float(x) for x in args.snr.split(","))
    except ValueError as exc:
        raise ConfigError(f"--snr: expected comma-separated numbers, got {args.snr!r}") from exc
    spec = SoundscapeSpec(root=args.root, fold=args.fold, subset=args.subset, seconds=args.seconds,
                          events=args.events, max_overlap=args.overlap, snrs_db=snrs, per_snr=args.per_snr,
                          seed=args.seed)
    truth = build_esc50_soundscapes(spec, args.out)
    print(f"soundscapes: {len(snrs) * args.per_snr} of {args.seconds:g} s, ground truth: {truth}")
    return 0
