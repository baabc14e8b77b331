"""Verbs that make or check data: ``synth``, ``soundscapes``, ``prepare`` (a manifest), ``pack`` (features)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hearai.cli import options
from hearai.cli.shared import features, load_dataset, run_options
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

    p = verbs.add_parser(
        "prepare", help="check a dataset and write its clips as one CSV manifest (path,label,fold,source)",
        description="Read a corpus in its own layout, run every check (missing files, unknown labels, clips "
        "in two folds, ...) and write a manifest that --dataset csv reads back.")
    options.add_dataset(p)
    p.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    p.set_defaults(run=prepare)

    p = verbs.add_parser(
        "pack", help="a dataset's features in one small file, for a machine without the corpus (a GPU box)",
        description="Featurize the dataset (through the feature cache) and write every clip's features, 8-bit "
        "quantized per clip and LZMA-compressed, with the clips' labels, folds and audio hashes and the feature "
        "config, to one file; 'hearai cv --dataset packed --root FILE' (and train) then run anywhere without the "
        "audio. Recipes that need waveforms (waveform augmentation) cannot use a pack.")
    options.add_dataset(p)
    p.add_argument("--out", type=Path, required=True, help="the pack to write (e.g. esc50.pack)")
    if options.verb_is_running(p, running):  # the run options import torch: only for the verb that runs
        p.add_argument("--model", default="dsresnet", help="the model whose recipe's features to pack (default: "
                       "%(default)s; a detector's recipe has its own)")
        options.add_feature_config(p)
        options.add_run(p)
    p.set_defaults(run=pack)


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


def prepare(args: argparse.Namespace) -> int:
    from hearai.data import write_manifest

    dataset = load_dataset(args)
    summary = dataset.summary()
    target = write_manifest(dataset, args.out)
    print(f"{summary['clips']} clips, {summary['classes']} classes, folds {summary['folds']}: {target}")
    return 0


def pack(args: argparse.Namespace) -> int:
    from hearai.data.packed import pack_features
    from hearai.runs import clip_features

    if args.dataset == "packed":
        raise ConfigError("--dataset packed: that is a pack already")
    dataset = load_dataset(args)
    run = run_options(args)
    feature_config = features(args)
    paths = [c.path for c in dataset.clips]
    size = pack_features(dataset, list(clip_features(dataset, feature_config, run).features),
                         run.cache.content_keys(paths), feature_config, args.out)
    print(f"{len(paths)} clips of {dataset.name} ({feature_config.n_features} features): {args.out}, "
          f"{size / 2**20:.1f} MiB")
    return 0
