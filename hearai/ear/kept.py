"""The person's corrections of an ear, kept in the data folder and applied to whatever ear is opened there.

``Corrector`` keeps ``DATA/corrections.safetensors`` (``hearai.ear.corrections``) and, for each
correction, the recording it was said of (``DATA/heard/ID.flac``, at most ``MAX_KEPT_CLIPS``, the
oldest removed; removed with its correction). A file of corrections that cannot be used
(damaged, no regular file, made on another network) is left as it is: the ear is served without
corrections, and no new one is taken until it is moved away, so none is ever overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hearai.errors import ConfigError, ModelError
from hearai.interface import SoundModel

HEARD_FOLDER = "heard"
MAX_KEPT_CLIPS = 200


class Corrector:
    """Corrections of the ear served from ``data_dir`` (none without a data folder, or for another model)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self.corrections: Any = None  # hearai.ear.corrections.Corrections once restored for an ear
        self.why_not = "the server was started without a data folder to keep corrections in" if data_dir is None \
            else "only the ear learns from corrections"

    @property
    def active(self) -> bool:
        return self.corrections is not None

    @property
    def path(self) -> Path:
        from hearai.ear.corrections import CORRECTIONS_FILE

        assert self.data_dir is not None
        return self.data_dir / CORRECTIONS_FILE

    def restore(self, model: SoundModel) -> str:
        """Read the kept corrections for ``model`` (an ear); what happened, in words (for the server's console)."""
        from hearai.ear.corrections import network_of, read_corrections, tagger_of

        if self.data_dir is None:
            return ""
        try:
            net = tagger_of(model)  # type: ignore[arg-type]
        except ModelError:
            return ""
        try:
            self.corrections = read_corrections(self.path, network=network_of(model),  # type: ignore[arg-type]
                                                hidden_size=net.hidden_size)
        except ModelError as exc:
            self.why_not = (f"the corrections kept in the data folder cannot be used ({self._private(str(exc))}); "
                            "they are kept as they are, and no correction is taken until they are moved away")
            return f"{exc}: left as it is; the ear is served without corrections"
        self.why_not = ""
        count = len(self.corrections.items)
        return f"restored {count} correction(s) from {self.path}" if count else ""

    def apply(self, model: SoundModel) -> SoundModel:
        """``model`` with the corrections applied (itself when there are none)."""
        from hearai.ear.corrections import corrected

        if not self.active or not self.corrections.items:
            return model
        return corrected(model, self.corrections)[0]  # type: ignore[arg-type]

    def correct(self, base: SoundModel, samples: np.ndarray, rate: int, sound: str, kind: str, *, source: str
                ) -> tuple[SoundModel, dict[str, Any]]:
        """Take what a person said of a recording: the corrected model to serve, and what the re-fit measured.

        ``ConfigError`` when the re-fit is refused (the sound would stop hearing its own examples);
        nothing is kept then."""
        from hearai import audio
        from hearai.ear.corrections import always_on, corrected, correction_of

        if not self.active:
            raise ConfigError(self.why_not)
        wave = audio.resample(np.asarray(samples, dtype=np.float32), orig_rate=rate, target_rate=base.sample_rate)
        said = correction_of(base, wave, sound, kind, source=source)  # type: ignore[arg-type]
        corrections = self.corrections.adding(said)
        served, reports = corrected(base, corrections, check=sound)  # type: ignore[arg-type]
        corrections.save(self.path)
        self.corrections = corrections
        self._keep_clip(said.id, wave, base.sample_rate)
        only_this = kind == "not" and sound in always_on(base)  # type: ignore[arg-type]
        report = {"id": said.id, "sound": sound, "kind": kind, "only_this_recording": only_this,
                  "measured": reports.get(sound, {})}
        return served, report

    def undo(self, base: SoundModel, id: str) -> SoundModel:
        """Take back correction ``id``: the model to serve without it."""
        if not self.active:
            raise ConfigError(self.why_not)
        corrections = self.corrections.without(id)
        corrections.save(self.path)
        self.corrections = corrections
        assert self.data_dir is not None
        (self.data_dir / HEARD_FOLDER / f"{id}.flac").unlink(missing_ok=True)
        return self.apply(base)

    def describe(self) -> dict[str, Any]:
        return {"correctable": self.active, "why_not": self.why_not or None,
                "sounds": self.corrections.summary() if self.active else []}

    def _keep_clip(self, id: str, wave: np.ndarray, rate: int) -> None:
        """The recording a correction was said of, beside it (the oldest beyond ``MAX_KEPT_CLIPS`` removed)."""
        from hearai.detect.listen import keep_recording

        assert self.data_dir is not None
        keep_recording(self.data_dir / HEARD_FOLDER / f"{id}.flac", wave, rate, latest=MAX_KEPT_CLIPS, among="*.flac")

    def _private(self, text: str) -> str:
        return text.replace(str(self.data_dir), "the data folder") if self.data_dir is not None else text
