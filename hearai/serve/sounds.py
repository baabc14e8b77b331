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
        self.model = served
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
        """Serve the taught model kept in the data folder, if it was taught on this model; what happened, in words."""
        if not self.teachable or self.data_dir is None:
            return ""
        kept = self.data_dir / TAUGHT_FILE
        if not kept.is_file():
            return ""
        from hearai.artifact import load

        try:
            taught = load(kept)
        except ModelError as exc:
            return f"ignored {kept}: {exc}"
        if taught.provenance.get("taught_from") != self.origin():
            return f"ignored {kept}: its sounds were taught on another model"
        self.model = taught
        return f"restored {len(self.taught())} taught sound(s) from {kept}"

    def origin(self) -> dict[str, str]:
        from hearai.teach import file_identity

        assert self._base_path is not None
        if self._origin is None:
            self._origin = file_identity(self._base_path)
        return self._origin

    def taught(self) -> dict[str, dict[str, Any]]:
        from hearai.teach import taught_sounds

        return taught_sounds(self.model)

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

        assert self.data_dir is not None and isinstance(model, Classifier)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        model.save(self.data_dir / TAUGHT_FILE)
        self.model = model

    def _torch_model(self):
        from hearai.artifact import Classifier, load

        if not self.teachable or self._base_path is None:
            raise ConfigError(self.why_not)
        return self.model if isinstance(self.model, Classifier) else load(self._base_path)

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
