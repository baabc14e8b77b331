"""The ``teach`` verb: add a sound to a detector from a few recordings, list taught sounds, remove one."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hearai.cli import options
from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    del running
    p = verbs.add_parser(
        "teach", help="teach a detector a new sound from 3-20 recordings of it (seconds, on a CPU)",
        **options.described(
            "Add a sound to a detector without retraining its network: the examples (any format, any length up to a "
            "minute; the sound is found and trimmed automatically) become windows (on the shipped detector, also "
            "mixed over background sounds), a new head is fitted on the network's embeddings against windows of "
            "other sounds kept with the model, and its threshold is calibrated leaving one example out at a time. "
            "The result is an ordinary model file that predict, detect, listen, serve and export accept. Also lists "
            "(--list) and removes (--remove) taught sounds.",
            ["hearai teach --name 'front doorbell' bell1.wav bell2.wav bell3.wav --out home.safetensors",
             "hearai teach home.safetensors --list",
             "hearai teach home.safetensors --remove 'front doorbell' --out home.safetensors"]))
    options.add_model_and_files(p, "[MODEL] --name NAME FILE [FILE ...] --out OUT", nargs="*",
                                help="the examples: 3 to 20 recordings of the sound")
    p.add_argument("--name", help="the new sound's name (1-60 characters, not one the model knows)")
    p.add_argument("--negative", type=Path, nargs="+", default=[], metavar="FILE",
                   help="recordings that must not set it off (the neighbour's doorbell, the TV)")
    p.add_argument("--icon", help="an emoji the listening page shows for it")
    p.add_argument("--target-precision", type=float, default=0.8,
                   help="the precision its threshold is calibrated for (default: %(default)s)")
    p.add_argument("--out", type=Path, help="the model file to write (.safetensors; may be the input)")
    p.add_argument("--onnx", type=Path, help="also export the result to this ONNX file")
    p.add_argument("--list", action="store_true", help="list the model's taught sounds and stop")
    p.add_argument("--remove", metavar="NAME", help="remove this taught sound (write the result to --out)")
    p.set_defaults(run=teach, files_anywhere=True)


def teach(args: argparse.Namespace) -> int:
    from hearai import load
    from hearai import teach as teaching

    given, files = options.split_model(args.inputs)
    source = options.chosen_model(given)
    if given is None and source.suffix.lower() == ".onnx":  # the shipped detector: its weights are beside it
        source = source.with_suffix(".safetensors")
    if args.list:
        model = load(source)
        sounds = teaching.taught_sounds(model)
        print(f"{len(sounds)} taught sound(s) in {source}" + (":" if sounds else ""))
        for name, report in sounds.items():
            print(f"  {name}: {report.get('examples')} examples, on {report.get('on')} / off {report.get('off')}, "
                  f"taught {report.get('taught')}")
        return 0
    if source.suffix.lower() != ".safetensors":
        raise ConfigError(f"{source}: teaching needs the network's weights, a .safetensors model (export the result "
                          "to ONNX with --onnx)")
    if args.out is None or args.out.suffix.lower() != ".safetensors":
        raise ConfigError("give --out MODEL.safetensors: the taught model is written there")
    from hearai.artifact import load as load_torch

    model = load_torch(source)
    if args.remove is not None:
        if files or args.name:
            raise ConfigError("--remove takes a sound's name only, no --name or example files")
        result = teaching.forget(model, args.remove)
        result.save(args.out)
        print(f"removed {args.remove!r}; wrote {args.out} ({len(result.labels)} sounds)")
        return _export(result, args.onnx)
    if not args.name:
        raise ConfigError("give the new sound's --name (or --list, or --remove NAME)")
    started = time.perf_counter()
    examples = [teaching.read_example(f, model.feature_config) for f in files]
    negatives = [teaching.read_example(f, model.feature_config) for f in args.negative]
    taught, report = teaching.teach(model, args.name, examples, negatives=negatives, icon=args.icon,
                                    origin=teaching.file_identity(source),
                                    config=teaching.TeachConfig(target_precision=args.target_precision))
    taught.save(args.out)
    seconds = time.perf_counter() - started
    for example in report["files"]:
        print(f"  {example['name']}: {example['seconds']:.1f} s, sound at {example['active_from']:.2f}-"
              f"{example['active_to']:.2f} s, loudest {example['level_dbfs']:.0f} dBFS")
    print(f"taught {taught.labels[-1]!r} from {report['examples']} examples in {seconds:.1f} s: alerts at "
          f"{report['on']:g} (off {report['off']:g}); {report['how']}; left out in turn, "
          f"{report['held_out_examples_heard']} of {report['examples']} examples were heard and "
          f"{report['reference_windows_above']} of {report['reference_windows']} windows of other sounds set it off")
    if report["set_aside"]:
        print(f"  the reference's {', '.join(report['set_aside'])} sounded like these examples: not taken as "
              "another sound")
    print(f"wrote {args.out} ({len(taught.labels)} sounds)")
    return _export(taught, args.onnx)


def _export(model, onnx: Path | None) -> int:
    if onnx is not None:
        from hearai.export import export_onnx

        export_onnx(model, onnx)
        print(f"wrote {onnx}")
    return 0
