"""What the shipped detectors measured, stated once: the CLI, the page and the docs all say these words.

Each figure comes from a named benchmark run on ESC-50's official folds (the docs give the tables):
``bench/ear.py`` for the pretrained ear, ``hearai cv --model sed --dataset esc50`` for the shipped
detector's recipe. A model of your own has no figures here until you measure it (``hearai cv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MACHINE, VERSION = "2-core x86 CPU", "0.1.0"


@dataclass(frozen=True)
class Measured:
    """A detector's headline figures on ESC-50's test soundscapes (means ± std over the 5 official folds)."""

    name: str
    tested: str  # what the figures were measured on: the model itself, or its recipe
    latency_median: float  # seconds from a sound's start to its alert, the folds' mean of each fold's median
    latency_p95: float
    segment_f1: tuple[float, float]
    false_alarms_per_hour: tuple[float, float]
    command: str
    date: str
    cannot_hear: str  # the page says "It cannot hear " and this
    docs: str
    trust: str  # how far to trust it, in words a person reads without the figures (from the same benchmarks)
    false_alarms_from: str = ""  # which of its sounds raised most of those false alarms, when that was measured

    def latency_statement(self) -> str:
        return (f"Alerts come a median {self.latency_median:.2f} s after a sound starts, 95 % of them within "
                f"{self.latency_p95:.2f} s ({self.tested} on ESC-50 test soundscapes, 5 folds).")

    def reliability(self) -> str:
        return (f"On ESC-50 test soundscapes (5 folds) {self.tested} scored segment F1 {self.segment_f1[0]:.2f} ± "
                f"{self.segment_f1[1]:.2f} (1 is perfect) and raised {self.false_alarms_per_hour[0]:g} ± "
                f"{self.false_alarms_per_hour[1]:g} false alarms an hour of rain, wind, crickets, waves and fire "
                f"({self.command}, {MACHINE}, hearai {VERSION}, {self.date}). {self.false_alarms_from}").rstrip()


EAR = Measured(
    name="the pretrained ear", tested="the pretrained ear", latency_median=1.25, latency_p95=3.15,
    segment_f1=(0.34, 0.07), false_alarms_per_hour=(0.4, 0.49), command="bench/ear.py", date="2026-12-07",
    cannot_hear="any sound outside its table (teach it yours); on real recordings it missed half of the knocks, "
    "most doorbells and over half of the smoke alarms that do not beep the standard three-beep pattern, and it "
    "has no recordings of a phone, shouting, a kettle or a slammed door",
    docs="docs/pretrained.md",
    # bench/alerts.py, learnt decisions: each sound's recall on recordings from sources it never learnt from, and
    # alerts on 2.0 % of the clips of other sounds.
    trust="In tests on real recordings it found 9 in 10 beeping alarms and breaking glass, 8 in 10 sirens, babies "
    "and dogs, half of the knocks and smoke alarms, 2 in 10 doorbells, and 1 in 50 other sounds gave a wrong alert. "
    "Keep your smoke alarm's flashing light: do not rely on hearai alone.")
SHIPPED = Measured(
    name="the shipped ESC-50 detector", tested="the shipped detector's recipe", latency_median=0.53,
    latency_p95=2.86, segment_f1=(0.37, 0.07), false_alarms_per_hour=(540.0, 160.0),
    command="hearai cv --model sed --dataset esc50", date="2026-12-03",
    cannot_hear="a smoke or fire alarm, a doorbell, a phone, a microwave, a kettle or speech: ESC-50 has no "
    "such sound (teach it yours, or pull the pretrained ear)",
    docs="docs/pretrained.md",
    trust="It never heard a smoke alarm, a doorbell or a phone, and it raised hundreds of false alarms an hour on "
    "rain, wind and crickets in tests: use it to try hearai, not to be warned (the pretrained ear is the one for "
    "alerts at home).")


def measured(model: Any) -> Measured | None:
    """The figures of ``model`` when it is the ear or the shipped detector (by what its file says it is)."""
    if "alert_sounds" in model.provenance:
        return EAR
    data = model.provenance.get("data")
    if model.model_name == "sed" and isinstance(data, dict) and data.get("name") == "esc50" \
            and data.get("clips") == 2000:
        return SHIPPED
    return None


def latency_statement(model: Any) -> str:
    """How soon ``model`` alerts, as measured; for a model of your own, that it was not measured here."""
    figures = measured(model)
    return figures.latency_statement() if figures else "This model's alert latency was not measured."


def model_card(model: Any) -> dict[str, Any]:
    """Which ear is listening, how far to trust it in words, what it cannot hear and what it measured: what the page
    shows (the words first, the figures behind them)."""
    figures = measured(model)
    if figures is None:
        return {"name": model.model_name, "cannot_hear": f"any sound but its {len(model.labels)} own",
                "trust": "Nobody has measured how far to trust this model: test it on your own recordings first.",
                "reliability": "Not measured here: 'hearai cv' measures a recipe on a dataset's folds.",
                "latency": latency_statement(model), "docs": "docs/detection.md"}
    return {"name": figures.name, "cannot_hear": figures.cannot_hear, "trust": figures.trust,
            "reliability": figures.reliability(),
            "latency": figures.latency_statement(), "docs": figures.docs}
