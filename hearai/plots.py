"""Every figure hearai draws, in one style, written atomically as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hearai.fsutil import atomic_path  # noqa: E402

if TYPE_CHECKING:  # the walkthrough needs torch; detection figures must not
    from hearai.explain import Walkthrough

_CMAP = "magma"


def explain_panels(walk: Walkthrough, path: str | Path, *, title: str) -> Path:
    """Panels, top to bottom: waveform, FFT spectrogram (dB), log-mel spectrogram (dB), and MFCCs if computed."""
    c = walk.config
    rows = 3 if walk.mfcc is None else 4
    fig, axes = plt.subplots(rows, 1, figsize=(10, 10 * rows / 3), constrained_layout=True)
    ax_wave, ax_spec, ax_mel = axes[:3]
    fig.suptitle(title)
    seconds = np.arange(len(walk.waveform)) / c.sample_rate
    ax_wave.plot(seconds, walk.waveform, linewidth=0.6, color="#1f4e79")
    ax_wave.set(title="Waveform", xlabel="time (s)", ylabel="amplitude", xlim=(0, seconds[-1] if len(seconds) else 1))
    duration = len(walk.waveform) / c.sample_rate
    image = ax_spec.imshow(
        walk.spectrogram_db, origin="lower", aspect="auto", cmap=_CMAP,
        extent=(0, duration, 0, c.sample_rate / 2),
        vmin=walk.spectrogram_db.max() - 100, vmax=walk.spectrogram_db.max(),
    )
    for peak in walk.peaks_hz:
        ax_spec.axhline(peak, color="#7fdbff", linewidth=0.8, linestyle="--")
    ax_spec.set(
        title=f"{c.window.capitalize()}-windowed FFT spectrogram (n_fft={c.n_fft}, hop={c.hop_length}); "
        f"peaks: {', '.join(f'{p:.1f} Hz' for p in walk.peaks_hz)}",
        xlabel="time (s)", ylabel="frequency (Hz)",
    )
    fig.colorbar(image, ax=ax_spec, label="power (dB)")
    image = ax_mel.imshow(walk.logmel_db, origin="lower", aspect="auto", cmap=_CMAP, extent=(0, duration, 0, c.n_mels))
    ax_mel.set(title=f"Log-mel spectrogram ({c.n_mels} {c.mel_scale} bands)", xlabel="time (s)", ylabel="mel band")
    fig.colorbar(image, ax=ax_mel, label="dB")
    if walk.mfcc is not None:
        image = axes[3].imshow(walk.mfcc, origin="lower", aspect="auto", cmap=_CMAP,
                               extent=(0, duration, 0, len(walk.mfcc)))
        axes[3].set(title=f"MFCC ({len(walk.mfcc)} coefficients: DCT-II of the log-mel)", xlabel="time (s)",
                    ylabel="coefficient")
        fig.colorbar(image, ax=axes[3], label="value")
    return _save(fig, path)


def band_comparison(rows: list[tuple[int, int, np.ndarray]], sample_rate: int, duration: float,
                    path: str | Path) -> Path:
    """The same clip with several mel band counts side by side; empty bands are named."""
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4.5), constrained_layout=True)
    for ax, (n_mels, empty, logmel) in zip(np.atleast_1d(axes), rows):
        ax.imshow(logmel, origin="lower", aspect="auto", cmap=_CMAP, extent=(0, duration, 0, n_mels))
        ax.set(title=f"{n_mels} mel bands: {empty} empty", xlabel="time (s)", ylabel="mel band")
    fig.suptitle(f"Band count vs FFT resolution ({sample_rate} Hz): too many bands leave some between FFT bins")
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return target


def training_curves(history: list[dict[str, float]], path: str | Path, *, title: str) -> Path:
    """Loss and accuracy per epoch, training and validation side by side."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    fig.suptitle(title)
    for ax, key, name in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [row[f"train_{key}"] for row in history], label="training (windows)", color="#1f4e79")
        if all(f"val_{key}" in row for row in history):
            ax.plot(epochs, [row[f"val_{key}"] for row in history], label="validation (clips)", color="#d1495b")
        ax.set(xlabel="epoch", ylabel=name, title=name.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion(matrix: np.ndarray, labels: list[str], path: str | Path, *, title: str) -> Path:
    """Row-normalized confusion matrix (colour = recall share) with the raw counts written in."""
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(6.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), constrained_layout=True)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8 if len(labels) > 20 else 10)
    ax.set_yticks(range(len(labels)), labels, fontsize=8 if len(labels) > 20 else 10)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(labels) <= 30:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the true class")
    return _save(fig, path)


def event_timeline(times: np.ndarray, probabilities: np.ndarray, labels: list[str],
                   events: list[tuple[str, float, float, float]], path: str | Path, *, title: str,
                   thresholds: dict[str, float], truth: list[tuple[str, float, float]] | None = None) -> Path:
    """Scores over time (top) and one lane per label with the detected events (bottom): ``timeline_figure``."""
    return _save(timeline_figure(times, probabilities, labels, events, title=title, thresholds=thresholds,
                                 truth=truth), path)


def timeline_figure(times: np.ndarray, probabilities: np.ndarray, labels: list[str],
                    events: list[tuple[str, float, float, float]], *, title: str, thresholds: dict[str, float],
                    truth: list[tuple[str, float, float]] | None = None) -> plt.Figure:
    """The figure of ``event_timeline``: each label's scores with its own *on* threshold dashed in its colour.

    ``events`` and ``truth`` are (label, onset, offset[, confidence]); only labels that reached their
    threshold somewhere, were detected or are in the truth get a curve and a lane, so 50-class models
    stay legible. The legend sits beside the axes, never over the curves.
    """
    reached = {labels[k] for k in range(len(labels)) if len(probabilities)
               and (probabilities[:, k] >= thresholds[labels[k]]).any()}
    shown = sorted({lab for lab, *_ in events} | {lab for lab, *_ in truth or []} | reached, key=labels.index)
    colours = {lab: plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")(i % 20) for i, lab in enumerate(shown)}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 3 + 0.35 * max(len(shown), 2)), sharex=True,
                                      constrained_layout=True, height_ratios=[2, 1 + 0.15 * len(shown)])
    for lab in shown:
        if len(times):
            top.plot(times, probabilities[:, labels.index(lab)], color=colours[lab], label=lab, lw=1.4)
        top.axhline(thresholds[lab], color=colours[lab], ls="--", lw=0.9)
    top.set(ylabel="score (dashed: its threshold)", ylim=(0, 1.02), title=title)
    if shown:
        top.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, borderaxespad=0)
    for row, lab in enumerate(shown):
        for t_lab, onset, offset in truth or []:
            if t_lab == lab:
                bottom.broken_barh([(onset, offset - onset)], (row - 0.45, 0.3), color="lightgrey", edgecolor="grey")
        for e_lab, onset, offset, confidence in events:
            if e_lab == lab:
                bottom.broken_barh([(onset, offset - onset)], (row - 0.1, 0.5), color=colours[lab],
                                   alpha=0.4 + 0.6 * confidence)
    bottom.set_yticks(range(len(shown)), shown, fontsize=8)
    bottom.set_ylim(-0.7, max(len(shown), 1) - 0.3)
    bottom.invert_yaxis()
    bottom.set(xlabel="time (s)", title="detected events" + (" (grey: ground truth)" if truth else ""))
    return fig
