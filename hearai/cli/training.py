"""Verbs that train and score on datasets: ``cv``, ``train``, ``calibrate``, ``evaluate``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hearai.cli import options
from hearai.cli.shared import features, load_dataset, run_options, start_recipe
from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser(
        "cv", help="cross-validate on a dataset's folds: metrics.json, confusion matrix, curves, report",
        description="Each listed fold is the test fold once; training uses only the other listed folds (with "
        "--validation-fraction F, a share of them is held out to pick the epoch). A partial fold list is reported "
        "as partial. Re-run with --resume to continue a killed run: finished folds are kept, the current one "
        "resumes from its last epoch.")
    options.add_dataset(p)
    p.add_argument("--out", type=Path, required=True, help="run folder (metrics.json, report.md, confusion.png, ...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--test-folds", type=options.fold_list, metavar="K[,K]",
                   help="train and test only these folds in this process; other processes (e.g. on the same GPU) "
                   "run the rest into the same --out, and the one that finds every fold done writes the report "
                   "(bench/parallel_cv.py does this)")
    p.add_argument("--test-hop", type=float, metavar="SECONDS",
                   help="test-time crops: also score each model's test clips by windows every SECONDS (e.g. 0.25: "
                   "more, overlapping windows averaged) and report the results so (default: the features' window "
                   "hop only)")
    if options.verb_is_running(p, running):
        _add_training(p)
    p.set_defaults(run=cross_validate)

    p = verbs.add_parser(
        "train", help="train a classifier or a detector on chosen folds and save the model file",
        description="Train on the listed folds (all by default) and write one self-describing model file "
        "(.safetensors) with its training curves. By default every clip trains a classifier and the last epoch is "
        "kept; --validation-fraction F holds a share out to pick the best epoch and stop early. A detector "
        "(--model sed) holds 15 % out by default: to pick its epoch and to calibrate its per-class thresholds on "
        "soundscapes of those clips.")
    options.add_dataset(p)
    p.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    p.add_argument("--checkpoint", type=Path, help="per-epoch checkpoint (default: OUT + .checkpoint.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    if options.verb_is_running(p, running):
        _add_training(p)
    p.set_defaults(run=train)

    p = verbs.add_parser(
        "calibrate", help="choose a detector's per-class thresholds again, on the clips its training held out",
        description="Rebuild the validation soundscapes of the clips a detector's training held out (the split is "
        "recomputed from the training config the model carries, so give the dataset and folds it was trained on) "
        "and their backgrounds alone, and pick each class's lowest threshold whose frame precision reaches "
        "--target-precision. 'hearai train' already does this for a detector; use it to trade alerts for false "
        "alarms. Per-class thresholds can also be set at detection time with --detect-config.")
    p.add_argument("model", type=Path, help="a detector's .safetensors file")
    options.add_dataset(p)
    p.add_argument("--target-precision", type=float, default=0.8,
                   help="frame-level precision each class's threshold must reach (default: %(default)s)")
    p.add_argument("--max-alarms-per-hour", type=float, metavar="N",
                   help="then raise each class's threshold until it gives at most N events per hour on the "
                   "validation clips' backgrounds alone (0: none in their 20 minutes); default: no such bound")
    p.add_argument("--out", type=Path, required=True, help="the calibrated model file to write (.safetensors)")
    if options.verb_is_running(p, running):
        options.add_run(p)
    p.set_defaults(run=calibrate)

    p = verbs.add_parser("evaluate", help="score a trained model on a dataset's folds",
                         description="Accuracy, macro F1 and the confusion matrix of a .safetensors model on the "
                         "listed folds; only score folds the model was not trained on.")
    p.add_argument("model", type=Path, help="model file written by 'hearai train'")
    options.add_dataset(p)
    p.add_argument("--out", type=Path, help="folder for metrics.json, confusion.png/csv, predictions.csv")
    if options.verb_is_running(p, running):
        options.add_run(p)
    p.set_defaults(run=evaluate)


def _add_training(parser: argparse.ArgumentParser) -> None:
    from hearai.augment.config import MIXING
    from hearai.models import list_models
    from hearai.train import DETECTOR_RECIPE, TrainConfig

    d, detector = TrainConfig(), DETECTOR_RECIPE
    names = [m.name for m in list_models()]
    both = "classifiers: {}; detectors: {}"
    parser.add_argument("--model", choices=names,
                        help=f"network (default: {d.model}; with --backbone: efficientat); a detector (sed) trains by "
                        "its own recipe, whose defaults the options below show second")
    from hearai.weights import PRETRAINED

    parser.add_argument("--backbone", choices=sorted(PRETRAINED),
                        help="transfer learning: start from this pretrained network (its front end, 5-s windows "
                        "every 2.5 s, and the training audio's bandwidth applied to everything it hears later)")
    parser.add_argument("--finetune", choices=("head", "all"), default="all",
                        help="with --backbone: 'head' keeps the network frozen and fits a linear head on its cached "
                        "embeddings (minutes for ESC-50 on a CPU); 'all' trains every weight from the pretrained ones "
                        "(mixup, SpecAugment, the body at a tenth of the learning rate; default: %(default)s)")
    parser.add_argument("--head", choices=("linear", "mlp"),
                        help="with --backbone: the new head, 'linear' on the embedding or 'mlp' from AudioSet's hidden "
                        "layer (default: linear with --finetune head, mlp with all)")
    parser.add_argument("--epochs", type=int,
                        help="maximum epochs (default: " + both.format(d.epochs, detector.epochs) + ")")
    parser.add_argument("--batch-size", type=int, help=f"windows per step (default: {d.batch_size})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate (default: {d.learning_rate})")
    parser.add_argument("--patience", type=int,
                        help="with a validation share: stop after this many epochs without gain (default: "
                        + both.format(d.patience, detector.patience) + ")")
    parser.add_argument("--validation-fraction", type=float,
                        help="share of the training clips held out to pick the best epoch and stop early (and, for "
                        "a detector, to calibrate its thresholds); 0 trains on all of them and keeps the last epoch "
                        "(default: " + both.format(d.validation_fraction, detector.validation_fraction) + ")")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="an ensemble of N models (seeds SEED ... SEED+N-1) whose probabilities are averaged: "
                        "cv scores it (and each model alone); 'train' needs --distill with it (default: "
                        f"{d.seeds})")
    parser.add_argument("--distill", action="store_true",
                        help="then train one more model to give the ensemble's probabilities on the same augmented "
                        "windows: the one model 'train' saves and cv scores first")
    parser.add_argument("--together", type=int, default=1, metavar="N",
                        help="train N models at once as one stacked network (an ensemble's seeds, cv's folds): on a "
                        "GPU, e.g. every fold's models fill the chip; on a CPU one at a time is faster (default: "
                        "%(default)s)")
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
    group.add_argument("--waveform-variants", type=int, metavar="N",
                       help="with --waveform-augment: draw N augmented copies of each training clip once and train "
                       "on windows of the clips and their copies, at plain training's speed (default: "
                       f"{a.waveform_variants}: augment every crop as it is drawn)")
    group.add_argument("--augment-config", metavar="JSON",
                       help="AugmentConfig fields (mask widths, noise SNR, ...) as a JSON object or the path of a "
                       "JSON file; the switches above override it")
    options.add_feature_config(parser)
    options.add_run(parser)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def train_config(args: argparse.Namespace):
    """The TrainConfig (with its AugmentConfig) the training options describe, over the model's recipe."""
    from dataclasses import replace

    from hearai.augment import AugmentConfig

    base, _ = start_recipe(args)
    fields = base.augment.to_dict()
    fields.update(options.read_json_object(args.augment_config, "--augment-config") if args.augment_config else {})
    given = {"scaler": args.scaler, "spec_augment": args.spec_augment, "mixing": args.mixing,
             "mixup_alpha": args.mixup_alpha, "waveform": args.waveform_augment,
             "waveform_variants": args.waveform_variants}
    fields.update({k: v for k, v in given.items() if v is not None})
    try:
        augment = AugmentConfig.from_dict(fields)
    except TypeError as exc:
        raise ConfigError(f"--augment-config: {exc}") from exc
    if getattr(args, "head", None) is not None:
        if getattr(args, "backbone", None) is None:
            raise ConfigError("--head chooses a pretrained backbone's head: give --backbone too")
        base = replace(base, model_options={**base.model_options, "head": args.head})
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
             "patience": args.patience, "validation_fraction": args.validation_fraction, "seeds": args.seeds,
             "distill": args.distill or None}
    return replace(base, seed=args.seed, augment=augment, **{k: v for k, v in given.items() if v is not None})


def cross_validate(args: argparse.Namespace) -> int:
    from hearai.crossval import cross_validate
    from hearai.runs import under_torchrun

    if under_torchrun():
        raise ConfigError("distributed runs (torchrun) are supported for 'hearai train'; run 'hearai cv' alone")
    dataset = load_dataset(args)
    report = cross_validate(dataset, folds=args.folds, feature_config=features(args, dataset),
                            config=train_config(args), run=run_options(args), out=args.out,
                            test_folds=args.test_folds, test_hop=args.test_hop)
    if report is None:
        print(f"fold(s) {args.test_folds} done in {args.out}; the report waits for the other folds")
        return 0
    partial = " (PARTIAL: not every fold)" if report["partial"] else ""
    per_fold = ", ".join(f"{r['fold']}: {100 * r['accuracy']:.1f}%" for r in report["folds"])
    print(f"{dataset.name} CV accuracy {100 * report['mean_accuracy']:.1f}% ± {100 * report['std_accuracy']:.1f}%"
          f"{partial} [{per_fold}]")
    for name, system in report.get("systems", {}).items():
        print(f"  {name}: {100 * system['mean_accuracy']:.1f}% ± {100 * system['std_accuracy']:.1f}%")
    detection = report.get("detection")
    if detection:
        shown = ", ".join(f"{name} {detection[key]['mean']:.3g} ± {detection[key]['std']:.2g}"
                          for key, name in (("event_f1", "event F1"), ("segment_f1", "segment F1"), ("psds1", "PSDS1"),
                                            ("psds2", "PSDS2"), ("latency_median", "latency median (s)"),
                                            ("latency_p95", "p95 (s)"),
                                            ("false_alarms_per_hour", "false alarms/h")) if key in detection)
        print(f"detection on test-fold soundscapes: {shown}")
    print(f"metrics: {args.out / 'metrics.json'}\nconfusion matrix: {args.out / 'confusion.png'}\n"
          f"report: {args.out / 'report.md'}")
    return 0


def train(args: argparse.Namespace) -> int:
    from hearai.runs import start_distributed, train_and_save

    args.device, world = start_distributed(args.device)
    dataset = load_dataset(args)
    saved = train_and_save(dataset, feature_config=features(args, dataset),
                           config=train_config(args), run=run_options(args, processes=world), out=args.out,
                           checkpoint=args.checkpoint)
    if saved is None:  # another torchrun process writes
        return 0
    shown = "" if saved.validation_accuracy is None else \
        f", validation accuracy {100 * saved.validation_accuracy:.1f}%"
    print(f"model: {saved.model} (kept epoch {saved.best_epoch}{shown})\ncurves: {saved.curves}")
    return 0


def calibrate(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.runs import calibrate_on_validation
    from hearai.sedeval import DetectionProtocol

    if not 0 < args.target_precision < 1:
        raise ConfigError(f"--target-precision must be between 0 and 1, got {args.target_precision}")
    protocol = DetectionProtocol(target_precision=args.target_precision, alarms_per_hour=args.max_alarms_per_hour)
    detector = calibrate_on_validation(load(args.model), load_dataset(args), run=run_options(args), protocol=protocol)
    detector.save(args.out)
    shown = ", ".join(f"{label} {on:g}" for label, (on, _) in sorted(detector.thresholds.items()))
    print(f"{args.out}: thresholds {shown}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.evaluate import evaluate_classifier

    classifier = load(args.model)
    dataset = load_dataset(args)
    metrics = evaluate_classifier(classifier, dataset, run_options(args), out=args.out)
    print(f"accuracy {100 * metrics['accuracy']:.1f}% on {metrics['n_test']} clips, macro F1 {metrics['macro_f1']:.3f}")
    if args.out:
        print(f"metrics: {args.out / 'metrics.json'}\nconfusion matrix: {args.out / 'confusion.png'}")
    return 0
