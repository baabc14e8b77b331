"""The server's taught sounds: taught on the served network, kept in a folder the server owns.

``SoundTeacher`` holds the model being served. Teaching or removing a sound (``hearai.teach``)
makes a new model, writes it atomically to ``DATA/taught.safetensors`` and only then serves it, so
a crash never leaves a half-written file and a restart serves the same sounds. A taught file is
used only on top of the model it was taught on (its ``taught_from`` digest), never on another.
Teaching needs the network's weights: the served ``.safetensors`` file, or the one beside an
``.onnx`` (as the shipped model has); torch is imported only when a sound is taught or restored.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hearai.errors import ConfigError, ModelError
from hearai.interface import SoundModel

TAUGHT_FILE = "taught.safetensors"


class SoundTeacher:
    """The served model, and what teaching it a sound takes (the base weights, the data folder, one lock)."""

    def __init__(self, served: SoundModel, *, model_path: Path, data_dir: Path | None) -> None:
        from hearai.ear.kept import Corrector

        self.model = self.base = served  # served: ``base`` (taught sounds included) with the corrections applied
        self.corrector = Corrector(data_dir)
        self.data_dir = data_dir
        self._lock = threading.Lock()
        twin = model_path if model_path.suffix.lower() == ".safetensors" else model_path.with_suffix(".safetensors")
        self._base_path = twin if twin.is_file() and served.task == "detector" else None
        if "alert_sounds" in served.provenance and "teaching_reference" not in served.provenance:
            self._base_path = None
            self.why_not = ("this ear's file holds no reference of other sounds to teach against (it was made "
                            "without the package's ear-reference.safetensors)")
        elif self._base_path is None:
            self.why_not = (f"{served.model_name} is a classifier: only detectors learn new sounds"
                            if served.task != "detector" else
                            f"teaching needs the network's weights: no {twin.name} beside {model_path.name}")
        elif data_dir is None:
            self.why_not = "the server was started without a data folder to keep taught sounds in"
        else:
            self.why_not = ""
        self._origin: dict[str, str] | None = None

    @property
    def teachable(self) -> bool:
        return not self.why_not

    def restore(self) -> str:
        """Serve the taught sounds kept in the data folder; what happened, in words (for the server's console).

        Sounds taught on this model are served as kept; the ear's, taught before its alert-sound table
        was edited, are carried onto the new table (``hearai.teach.carry_taught``). A kept file that
        cannot be used (damaged, not a file, taught on another network, a taught name the table now
        uses) is left exactly as it is and teaching stays off until it is moved away or the model it
        was taught on comes back, so no later teach can overwrite the sounds it holds."""
        said = self._restore_taught()
        corrections = self.corrector.restore(self.base)
        self._serve(self.base)
        return "; ".join(line for line in (said, corrections) if line)

    def _restore_taught(self) -> str:
        if not self.teachable or self.data_dir is None:
            return ""
        from hearai.artifact import load
        from hearai.fsutil import NOTHING, REGULAR, what_is_at
        from hearai.teach import carry_taught

        kept = self.data_dir / TAUGHT_FILE
        found = what_is_at(kept)
        if found == NOTHING:
            return ""
        if found != REGULAR:
            return self._set_aside(f"{kept}: is {found}, not a file of taught sounds")
        try:
            taught = load(kept)
            if taught.provenance.get("taught_from") != self.origin():
                taught = carry_taught(taught, self._torch_model(), origin=self.origin())
                self.base = taught
                return f"restored {len(self.taught())} taught sound(s) from {kept} onto the edited alert-sound table"
        except ModelError as exc:
            reason = str(exc)
            return self._set_aside(reason if reason.startswith(str(kept)) else f"{kept}: {reason}")
        self.base = taught
        return f"restored {len(self.taught())} taught sound(s) from {kept}"

    def _set_aside(self, reason: str) -> str:
        """Leave the kept taught sounds untouched and turn teaching off; the console line saying so."""
        self.why_not = (f"the taught sounds kept in the data folder cannot be used ({self._private(reason)}); they are "
                        "kept as they are, and no sound can be taught until they are moved away or the model they "
                        "were taught on is back")
        return f"{reason}: left as it is; teaching is off until it is moved away or its model is back"

    def _private(self, text: str) -> str:
        """``text`` without the data folder's path: clients are not told where the server keeps its files."""
        if self.data_dir is None:
            return text
        text = text.replace(str(self.data_dir / TAUGHT_FILE), TAUGHT_FILE)
        return text.replace(str(self.data_dir), "the data folder")

    def origin(self) -> dict[str, str]:
        from hearai.teach import file_identity

        assert self._base_path is not None
        if self._origin is None:
            self._origin = file_identity(self._base_path)
        return self._origin

    def taught(self) -> dict[str, dict[str, Any]]:
        from hearai.teach import taught_sounds

        return taught_sounds(self.base)

    def describe(self) -> dict[str, Any]:
        return {"teachable": self.teachable, "why_not": self.why_not or None,
                "sounds": [{"name": name, "icon": r.get("icon"), "examples": r.get("examples"), "on": r.get("on"),
                            "off": r.get("off"), "taught": r.get("taught")} for name, r in self.taught().items()]}

    def teach(self, name: str, examples: list[Path], *, negatives: list[Path], icon: str | None, save: bool = True
              ) -> tuple[SoundModel, dict[str, Any]]:
        """Teach ``name``; with ``save``, keep and serve the result. Returns (the taught model, its report)."""
        from hearai import teach as teaching

        with self._busy():
            model = self._torch_model()
            read = [teaching.read_example(p, model.feature_config, name=f"example {i + 1}")
                    for i, p in enumerate(examples)]
            refused = [teaching.read_example(p, model.feature_config, name=f"negative {i + 1}")
                       for i, p in enumerate(negatives)]
            taught, report = teaching.teach(model, name, read, negatives=refused, icon=_icon(icon),
                                            origin=self.origin())
            if save:
                self._keep(taught)
            return taught, report

    def forget(self, name: str) -> None:
        from hearai.teach import forget

        with self._busy():
            self._keep(forget(self._torch_model(), name))

    def _keep(self, model: SoundModel) -> None:
        from hearai.artifact import Classifier
        from hearai.errors import OutputError

        assert self.data_dir is not None and isinstance(model, Classifier)
        try:
            model.save(self.data_dir / TAUGHT_FILE)
        except OutputError as exc:
            raise OutputError(self._private(str(exc))) from exc
        self._serve(model)

    def _serve(self, base: SoundModel) -> None:
        """Serve ``base`` (its taught sounds as kept) with the person's corrections applied."""
        self.base = base
        self.model = self.corrector.apply(base)

    def correct(self, samples: Any, rate: int, sound: str, kind: str, *, source: str) -> dict[str, Any]:
        """What a person said of a recording ("not"/"yes" ``sound``), taken and served at once; its report."""
        with self._busy():
            self.model, report = self.corrector.correct(self.base, samples, rate, sound, kind, source=source)
            return report

    def undo(self, id: str) -> None:
        with self._busy():
            self.model = self.corrector.undo(self.base, id)

    def _torch_model(self):
        from hearai.artifact import Classifier, load

        if not self.teachable or self._base_path is None:
            raise ConfigError(self.why_not)
        return self.base if isinstance(self.base, Classifier) else load(self._base_path)

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """Hold the teaching lock, or refuse at once: a second teach waits for no one."""
        if not self._lock.acquire(blocking=False):
            raise Busy("another sound is being taught; retry in a few seconds")
        try:
            yield
        finally:
            self._lock.release()


class Busy(ConfigError):
    """Teaching is already running."""


def _icon(icon: str | None) -> str | None:
    """An icon is one short emoji-like string, or nothing."""
    if icon is None or not icon.strip():
        return None
    icon = icon.strip()
    if len(icon) > 8 or any(c.isalnum() or c in "<>&\"'" for c in icon):
        raise ConfigError(f"an icon is one emoji, got {icon!r}")
    return icon


def warn(text: str) -> None:
    if text:
        print(f"hearai serve: {text}", file=sys.stderr, flush=True)
