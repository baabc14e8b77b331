"""The ``hearai`` command: one verb per pipeline stage; each verb parses, calls the library, prints.

Verbs live in modules by stage (``features``, ``data``, ``training``, ``models``, ``teaching``, ``detection``).
Options whose defaults import torch (training, device) are added only for the verb being run, so
``detect``, ``listen``, ``predict`` and ``serve`` with an ONNX model start without loading torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hearai import __version__
from hearai.cli import data, detection, features, models, teaching, training
from hearai.errors import HearaiError

_STAGES = (features, data, training, models, teaching, detection)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(running=next((a for a in argv if not a.startswith("-")), ""))
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "files_anywhere", False) and not any(a.startswith("-") for a in extra):
        args.inputs += [Path(a) for a in extra]  # files after an option (teach: MODEL --name N FILE...)
    elif extra:
        _unknown_options(parser, args.verb, extra)
    try:
        return args.run(args)
    except HearaiError as exc:
        said = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line, always
        print(f"hearai {args.verb}: error: {said}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output folder that cannot be written, a full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hearai {args.verb}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hearai {args.verb}: interrupted", file=sys.stderr)
        return 130


def _unknown_options(parser: argparse.ArgumentParser, verb: str, extra: list[str]) -> None:
    """Exit with the verb's usage (not the top level's), naming each unknown option's closest one of the verb."""
    import difflib

    verb_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[verb]
    known = [flag for action in verb_parser._actions for flag in action.option_strings]
    flags = [word.split("=", 1)[0] for word in extra if word.startswith("-")]
    hints = [f"{close[0]} for {flag}" for flag in flags
             for close in [difflib.get_close_matches(flag, known, n=1, cutoff=0.6)] if close]
    verb_parser.error(f"unrecognized arguments: {' '.join(extra)}" + (f"; did you mean {', '.join(hints)}?"
                                                                       if hints else ""))


def build_parser(*, running: str | None = None) -> argparse.ArgumentParser:
    """Every verb; ``running`` names the verb about to run (None: every verb's options in full)."""
    parser = argparse.ArgumentParser(
        prog="hearai", description="Sound event classification and detection, from any audio file to alerts.")
    parser.add_argument("--version", action="version", version=f"hearai {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for stage in _STAGES:
        stage.add_verbs(verbs, running=running)
    p = verbs.add_parser(
        "demo", help="run the pipeline end to end on embedded synthetic data",
        description="Explain the featurizer on two tones, make a synthetic labelled set of ten sound classes, "
        "featurize it, cross-validate the efficient CNN on it, train a model and detect events with timestamps in "
        "synthetic soundscapes, then let the default model (the pretrained ear when its network is here, else the "
        "shipped detector) hear sounds it never trained on. Every figure and table goes under --out, each path "
        "printed; the feature cache stays in hearai's cache folder ($HEARAI_CACHE, default ~/.cache/hearai).")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)")
    p.add_argument("--real-audio", type=Path, metavar="DIR",
                   help="an UrbanSound8K folder (audio/foldN, metadata/UrbanSound8K.csv): the last step names its "
                   "sounds with the default model")
    p.set_defaults(run=demo)
    return parser


def demo(args: argparse.Namespace) -> int:
    from hearai import demo

    demo.run(args.out, real_audio=args.real_audio)
    print(f"all outputs are under {args.out}")
    return 0
