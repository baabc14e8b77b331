"""What the verbs that read a dataset share: the dataset the options name, its features, how the run runs."""

from __future__ import annotations

import argparse
import sys

from hearai.cli import options
from hearai.errors import ConfigError


def start_recipe(args: argparse.Namespace):
    """The (TrainConfig, FeatureConfig) the options start from: the model's recipe, or transfer learning's."""
    from hearai.train import TrainConfig, recipe, transfer_recipe

    if getattr(args, "backbone", None) is None:
        return recipe(args.model or TrainConfig().model)
    if args.model not in (None, "efficientat"):
        raise ConfigError(f"--backbone {args.backbone} trains model efficientat, not --model {args.model}")
    return transfer_recipe(args.backbone, args.finetune)


def features(args: argparse.Namespace, dataset=None):
    """The FeatureConfig for training: the recipe's (a pack's own), with --feature-config's fields.

    With a pretrained backbone and the ``dataset``'s audio, the band its files can hold (half the
    lowest sample rate) is recorded, so the model never meets frequencies it was not trained on.
    """
    from dataclasses import replace

    from hearai.data.packed import open_pack
    from hearai.runs import training_bandwidth

    base = open_pack(args.root.resolve()).feature_config if args.dataset == "packed" else start_recipe(args)[1]
    config = options.feature_config(args.feature_config, base)
    if getattr(args, "backbone", None) and dataset is not None and args.dataset != "packed" \
            and config.bandwidth_hz is None:
        bandwidth = training_bandwidth(dataset)
        if bandwidth < config.max_frequency:
            config = replace(config, bandwidth_hz=bandwidth)
    return config


def load_dataset(args: argparse.Namespace):
    """The dataset the --dataset/--root/--folds options name (only the chosen folds' files checked)."""
    from hearai.data import prepare

    dataset = prepare(args.dataset, args.root, n_folds=args.n_folds, seed=getattr(args, "seed", 0), folds=args.folds)
    for warning in dataset.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return dataset


def run_options(args: argparse.Namespace, *, processes: int = 1):
    """Where features are cached and how this process runs, from the run options (cores set for it)."""
    from hearai.data.cache import FeatureCache
    from hearai.data.packed import open_pack
    from hearai.runs import RunOptions, is_main_process, use_cores

    use_cores(args.device, processes=processes)
    source = open_pack(args.root.resolve()) if args.dataset == "packed" else FeatureCache(args.cache)
    return RunOptions(cache=source, workers=args.workers, device=args.device,
                      progress=not args.quiet and is_main_process(), resume=getattr(args, "resume", False),
                      together=getattr(args, "together", 1))
