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
    p.add_argument("--list", action="store_true", help="list the model's taught sounds (and the ear's corrections) "
                   "and stop")
    p.add_argument("--remove", metavar="NAME", help="remove this taught sound (write the result to --out)")
    said = p.add_mutually_exclusive_group()
    said.add_argument("--not", dest="not_sound", metavar="SOUND",
                      help="the ear alerted SOUND on these recordings, wrongly: it learns they are not that sound "
                      "(an always-on sound, such as the smoke alarm, learns only that these recordings are not one)")
    said.add_argument("--yes", dest="yes_sound", metavar="SOUND",
                      help="these recordings are SOUND (one the ear missed): it learns to hear them")
    said.add_argument("--undo", metavar="ID", help="take back the ear's correction ID (see --list)")
    p.add_argument("--data-dir", type=Path, help="where the ear's corrections are kept, as the server keeps them "
                   "(default: $HEARAI_SERVE_DATA, else $XDG_DATA_HOME/hearai or ~/.local/share/hearai)")
    p.set_defaults(run=teach, files_anywhere=True)


def teach(args: argparse.Namespace) -> int:
    from hearai import load_file
    from hearai import teach as teaching

    given, files = options.split_model(args.inputs)
    if args.not_sound or args.yes_sound or args.undo:
        return _correct(args, given, files)
    source = options.chosen_model(given)
    if given is None and source.suffix.lower() == ".onnx":  # the shipped detector: its weights are beside it
        source = source.with_suffix(".safetensors")
    if args.list:
        model = load_file(source)
        sounds = teaching.taught_sounds(model)
        print(f"{len(sounds)} taught sound(s) in {source}" + (":" if sounds else ""))
        for name, report in sounds.items():
            print(f"  {name}: {report.get('examples')} examples, on {report.get('on')} / off {report.get('off')}, "
                  f"taught {report.get('taught')}")
        if "alert_sounds" in model.provenance:
            _list_corrections(_corrector(model, args.data_dir))
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


def _correct(args: argparse.Namespace, given: Path | None, files: list[Path]) -> int:
    """``--not SOUND`` / ``--yes SOUND`` FILE...: the ear learns from the recordings, as from the page; ``--undo``."""
    from hearai import audio
    from hearai.artifact import load

    if args.name or args.remove or args.list or args.out:
        raise ConfigError("--not, --yes and --undo teach the ear from the person's corrections: no --name, --remove, "
                          "--list or --out with them")
    model = load(options.chosen_model(given))
    corrector = _corrector(model, args.data_dir)
    if args.undo:
        if files:
            raise ConfigError("--undo takes a correction's id only, no recordings")
        corrector.undo(model, args.undo)
        print(f"took back correction {args.undo}")
        _list_corrections(corrector)
        return 0
    if not files:
        raise ConfigError("give the recordings the ear was wrong about")
    sound, kind = (args.not_sound, "not") if args.not_sound else (args.yes_sound, "yes")
    for path in files:
        started = time.perf_counter()
        wave = audio.load(path, sample_rate=model.sample_rate)
        _, report = corrector.correct(model, wave, model.sample_rate, sound, kind, source=path.name)
        took = time.perf_counter() - started
        what = f"{path.name} is {'not ' if kind == 'not' else ''}“{sound}”"
        if report["only_this_recording"]:
            what += f" (“{sound}” is always heard: this recording only)"
        print(f"learnt: {what}, in {took:.1f} s (correction {report['id']})")
    _list_corrections(corrector)
    return 0


def _corrector(model, data_dir: Path | None):
    """The corrections kept in the data folder for the ear ``model``; ``ConfigError`` saying why there are none."""
    from hearai.ear.kept import Corrector
    from hearai.ear.table import default_data_dir

    corrector = Corrector(data_dir or default_data_dir())
    said = corrector.restore(model)
    if not corrector.active:
        raise ConfigError(said or corrector.why_not)
    return corrector


def _list_corrections(corrector) -> None:
    summary = corrector.describe()["sounds"]
    print(f"{sum(s['not'] + s['yes'] for s in summary)} correction(s) of the ear in {corrector.path}"
          + (":" if summary else ""))
    for sound in summary:
        for c in sound["corrections"]:
            print(f"  {c['id']}  {c['kind']:>3} {sound['sound']}: {c['source']} ({c['said']})")


def _export(model, onnx: Path | None) -> int:
    if onnx is not None:
        from hearai.export import export_onnx

        export_onnx(model, onnx)
        print(f"wrote {onnx}")
    return 0
