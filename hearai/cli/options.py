"""Options several verbs share, and turning option values into configs: parsing only, no work."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.interface import SoundModel
from hearai.jsontext import parse_json, read_json_file
from hearai.machine import default_workers


def verb_is_running(parser: argparse.ArgumentParser, verb: str | None) -> bool:
    """Whether ``parser`` belongs to the verb being run: options that import torch are added only then.

    ``verb=None`` builds every verb's options (a whole parser, e.g. for documentation or tests).
    """
    return verb is None or verb == parser.prog.split()[-1]


def fold_list(text: str) -> list[int]:
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"folds must be comma-separated whole numbers, got {text!r}") from None
    if not folds or folds[0] < 1:
        raise argparse.ArgumentTypeError(f"folds are whole numbers from 1, got {text!r}")
    return folds


def read_json_object(value: str | Path, option: str) -> dict[str, Any]:
    """A config option's fields: inline JSON (``'{"n_mels": 128}'``) or the path of a JSON file."""
    text = str(value)
    where = option
    if not text.lstrip().startswith("{"):
        path = Path(text)
        where = f"{option} {path}"
        if not path.is_file():
            raise ConfigError(f"{where}: file not found (give a JSON object or the path of a JSON file)")
        data = read_json_file(path, source=where)
    else:
        data = parse_json(text, source=where)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object of config fields")
    return data


MODEL_SUFFIXES = (".safetensors", ".onnx")
MODEL_HELP = ("a model may come first: a file (.safetensors from 'hearai train', .onnx from 'hearai export'), "
              "'ear' (the alert sounds: smoke alarm, siren, doorbell, ...) or a pretrained network's name "
              "(efficientat-mn04: AudioSet's 527 sounds); without one, the ear when its weights are here "
              "('hearai pull efficientat-mn04'), else the shipped detector of ESC-50's 50 sounds")


def add_model_and_files(parser: argparse.ArgumentParser, usage: str, *, nargs: str, help: str,
                        metavar: str = "FILE") -> None:
    """The positional ``[MODEL] FILE...`` of the verbs that take a model first, with a usage line that says so
    (argparse would repeat the model in ``[[MODEL] FILE ...]``); ``metavar``: what the usage calls the files."""
    parser.usage = f"{parser.prog} [-h] [options] {usage}"
    parser.add_argument("inputs", nargs=nargs, type=Path, metavar=metavar, help=f"{help}; {MODEL_HELP}")


def described(text: str, examples: list[str]) -> dict[str, Any]:
    """``add_parser`` keywords for a description wrapped as argparse wraps, followed by examples kept as written."""
    import textwrap

    return {"description": textwrap.fill(text, 79) + "\n\nexamples:\n" + "\n".join(f"  {e}" for e in examples),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def is_model(path: Path) -> bool:
    """Whether a positional argument names a model: by its suffix, or as a pretrained network's name."""
    from hearai.weights import is_pretrained_name

    return path.suffix.lower() in MODEL_SUFFIXES or (is_pretrained_name(path) and not path.exists())


def split_model(inputs: list[Path]) -> tuple[Path | None, list[Path]]:
    """``[MODEL] FILE...``: the model if the first argument names one (or the last, given after the files), and the
    rest; a mistyped model name or a web address is refused with what was meant."""
    from hearai.weights import unknown_model

    for argument in inputs:
        said = unknown_model(argument)
        if said:
            raise ConfigError(said)
    if inputs and is_model(inputs[0]):
        return inputs[0], inputs[1:]
    if len(inputs) > 1 and is_model(inputs[-1]):
        return inputs[-1], inputs[:-1]
    return None, inputs


def chosen_model(given: Path | None, *, data_dir: Path | None = None) -> Path:
    """The model file ``given`` names, else the default one (``hearai.default_model``), saying why when it is not
    the ear."""
    import sys

    from hearai import default_model, model_file

    if given is not None:
        return model_file(given, data_dir=data_dir)
    path, note = default_model(data_dir=data_dir)
    if note:
        print(note, file=sys.stderr)
    return path


def load_chosen(given: Path | None) -> tuple[Path, SoundModel]:
    """The model ``given`` names (else the default one), opened as ``hearai.load`` opens it (an ear with the
    person's corrections kept in the data folder), saying what the person should know on standard error."""
    import sys

    from hearai import open_model

    path = chosen_model(given)
    model, notes = open_model(path)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return path, model


def add_feature_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-config", metavar="JSON",
                        help="FeatureConfig fields overriding the defaults: a JSON object "
                        "(e.g. '{\"kind\": \"mfcc\", \"n_mfcc\": 20}') or the path of a JSON file")


def feature_config(value: str | None, base: FeatureConfig | None = None) -> FeatureConfig:
    """``base`` (default: ``FeatureConfig()``) with the fields ``--feature-config`` gives."""
    base = base or FeatureConfig()
    if value is None:
        return base
    try:
        return FeatureConfig.from_dict({**base.to_dict(), **read_json_object(value, "--feature-config")})
    except TypeError as exc:
        raise ConfigError(f"--feature-config: {exc}") from exc


def add_dataset(parser: argparse.ArgumentParser) -> None:
    from hearai.data import KINDS

    parser.add_argument("--dataset", choices=KINDS, required=True, help="dataset layout")
    parser.add_argument("--root", type=Path, required=True,
                        help="the dataset folder (for csv: the manifest file with path,label[,fold][,source])")
    parser.add_argument("--folds", type=fold_list,
                        help="comma-separated folds, e.g. 1,2,10 (default: all); only these folds' files must exist")
    parser.add_argument("--n-folds", type=int, default=5, help="folds to assign when the data has none (default: 5)")


def add_run(parser: argparse.ArgumentParser) -> None:
    import torch

    parser.add_argument("--cache", type=Path, help="feature cache folder (default: $HEARAI_CACHE or ~/.cache/hearai)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="featurizing processes; 0 works in this process (default: %(default)s, from the cores)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def score(text: str) -> float:
    """A probability option: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"a score between 0 and 1, such as 0.5; got {text!r}")
    return value


def add_detect(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection (defaults suit most recordings)")
    group.add_argument("--threshold", type=score, help="probability that starts an event, for every class (default: a "
                       "detector's calibrated per-class thresholds, else 0.5)")
    group.add_argument("--release", type=score, help="probability below which it ends (default: the detector's, else "
                       "0.3)")
    group.add_argument("--ignore", help="comma-separated labels never reported (background classes, e.g. rain,wind)")
    group.add_argument("--only", help="comma-separated labels to report; the others are ignored (the ear's optional "
                       "sounds, such as 'someone speaking', are reported only when named here)")
    group.add_argument("--detect-config", metavar="JSON",
                       help="DetectConfig fields (per-label thresholds, rise_db, merge_gap_seconds, ...) as a JSON "
                       "object or the path of a JSON file; the options above override it")


def detect_config(args: argparse.Namespace, labels: tuple[str, ...], optional: list[str] | tuple[str, ...] = ()):
    """The DetectConfig the detection options describe, checked against the model's labels.

    ``optional``: sounds not reported unless ``--only`` names them (the ear's optional tier).
    """
    from hearai.detect import DetectConfig
    from hearai.detect.config import DEFAULT_PAIR

    data = read_json_object(args.detect_config, "--detect-config") if args.detect_config else {}
    if args.threshold is not None:
        data["threshold"] = args.threshold
    if args.release is not None:
        data["release"] = args.release
    elif args.threshold is not None and "release" not in data:
        data["release"] = min(DEFAULT_PAIR[1], args.threshold)
    if args.threshold is not None and args.release is not None and args.release > args.threshold:
        raise ConfigError(f"--release {args.release:g} is above --threshold {args.threshold:g}: a sound must fall "
                          "below the release to end, so the release is the lower of the two")
    ignore = set(_label_list(args.ignore, labels, "--ignore")) | set(data.get("ignore", ()))
    if args.only:
        ignore |= set(labels) - set(_label_list(args.only, labels, "--only"))
    else:
        ignore |= set(optional)
    data["ignore"] = sorted(ignore)
    try:
        return DetectConfig.from_dict(data)
    except TypeError as exc:
        raise ConfigError(f"--detect-config: {exc}") from exc


def _label_list(text: str | None, labels: tuple[str, ...], option: str) -> list[str]:
    """The model's labels that ``text`` names, comma-separated, in any case, with spaces, ``_`` or ``-`` alike."""
    import difflib

    by_key = {_label_key(label): label for label in labels}
    chosen = []
    for given in (x.strip() for x in (text or "").split(",")):
        if not given:
            continue
        if _label_key(given) not in by_key:
            close = difflib.get_close_matches(_label_key(given), list(by_key), n=1, cutoff=0.6)
            hint = f"; did you mean {by_key[close[0]]!r}?" if close else \
                f"; it knows {len(labels)} sounds, such as {', '.join(labels[:5])}"
            raise ConfigError(f"{option}: the model has no sound {given!r}{hint}")
        chosen.append(by_key[_label_key(given)])
    return chosen


def _label_key(label: str) -> str:
    return "".join(ch for ch in label.casefold() if ch not in " _-")


def add_tellers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webhook", metavar="URL", help="POST each alert (and its end) as JSON to this URL, e.g. a "
                        "home hub that flashes a light; in the background: detection never waits for it (3-s "
                        "timeout, 2 retries)")
    parser.add_argument("--mqtt", metavar="URL", help="publish each alert as JSON to an MQTT broker, topic "
                        "TOPIC/<sound> (QoS 1): mqtt://[user:password@]host[:1883][/TOPIC], default topic hearai, "
                        "mqtts:// for TLS; in the background, reconnecting while the broker is away")


def tellers(args: argparse.Namespace):
    """The devices to tell about alerts (``hearai.detect.notify.Tellers``), or None."""
    from hearai.detect.notify import Teller, Tellers

    found: list[Teller] = []
    if args.webhook is not None:
        from hearai.detect.webhook import Webhook

        found.append(Webhook(args.webhook))
    if args.mqtt is not None:
        from hearai.detect.mqtt import MqttAlerts

        found.append(MqttAlerts(args.mqtt))
    return Tellers(found) if found else None
