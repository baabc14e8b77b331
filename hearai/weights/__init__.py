"""Named pretrained networks: where their weights come from, and getting them without trusting them.

Each name pins its official URL, byte size and sha256, the network it fills and the front end it
expects (timm's pretrained configs, beside the weights). ``fetch`` looks in mirror folders first
(``HEARAI_MIRROR`` or an option: machines without internet never touch the network), then in the
cache, then downloads: bounded by the pinned size, to a temporary file renamed only once its
hash matched, so a cut or altered transfer leaves nothing behind. ``read_state_dict`` opens only
bytes whose hash it checked itself, with ``torch.load(weights_only=True)``: tensors, no code.
Torch-free at module level.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearai.errors import HearaiError, ModelError, OutputError
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import REGULAR, atomic_path, what_is_at

HERE = Path(__file__).parent
MIRROR_VARIABLE = "HEARAI_MIRROR"
CHUNK = 1 << 16
TIMEOUT_SECONDS = 30.0  # of silence from the server
DEADLINE_SECONDS = 600.0  # for a whole download

# The front end EfficientAT's AudioSet networks were trained with: 32 kHz, pre-emphasis 0.97, an
# 800-sample symmetric Hann window in a 1024-point FFT every 10 ms, 128 Kaldi mel bands 0-15 kHz,
# (ln(mel + 1e-5) + 4.5) / 5. Windows of 1.92 s (six 0.32-s columns of the network's map) every 0.32 s.
EFFICIENTAT_FEATURES = FeatureConfig(
    sample_rate=32_000, n_fft=1024, win_length=800, hop_length=320, window="hann", periodic_window=False,
    center=True, pad_mode="reflect", n_mels=128, fmin=0.0, fmax=15_000.0, mel_scale="kaldi", mel_norm=None,
    kind="lnmel", amin=1e-5, log_shift=4.5, log_divisor=5.0, preemphasis=0.97, window_seconds=1.92,
    window_hop_seconds=0.32)


@dataclass(frozen=True)
class Labels:
    """A label set shipped with hearai: ids and display names in the network's output order."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    source: str


def audioset_labels() -> Labels:
    """AudioSet's 527 labels (Google, CC BY 4.0) in the order of EfficientAT's outputs."""
    with open(HERE / "audioset_labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return Labels(tuple(r["mid"] for r in rows), tuple(r["display_name"] for r in rows),
                  "AudioSet ontology (Google), CC BY 4.0: research.google.com/audioset")


@dataclass(frozen=True)
class PretrainedSpec:
    """One named pretrained network: the pinned release file and what it is."""

    name: str
    url: str
    size: int
    sha256: str
    model: str  # the registered network it fills
    model_options: dict[str, Any]
    feature_config: FeatureConfig
    labels: Callable[[], Labels]
    licence_file: str
    summary: str
    trained_on: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def licence(self) -> str:
        return (HERE / self.licence_file).read_text(encoding="utf-8")


def _efficientat(name: str, width: float, release: str, size: int, sha256: str, mean_ap: float) -> PretrainedSpec:
    return PretrainedSpec(
        name=name, url=f"https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/{release}", size=size,
        sha256=sha256, model="efficientat-tagger", model_options={"width": width},
        feature_config=EFFICIENTAT_FEATURES, labels=audioset_labels, licence_file="LICENSE-EfficientAT.txt",
        summary=f"EfficientAT MobileNetV3 width {width:g}, AudioSet's 527 sounds (mAP {mean_ap:.3f})",
        trained_on="AudioSet (about 2 M clips, 527 labels), by knowledge distillation from transformers: Schmid, "
        "Koutini, Widmer, 'Efficient Large-Scale Audio Tagging via Transformer-to-CNN Knowledge Distillation', "
        "ICASSP 2023", metrics={"audioset_map": mean_ap})


PRETRAINED: dict[str, PretrainedSpec] = {spec.name: spec for spec in (
    _efficientat("efficientat-mn04", 0.4, "mn04_as_mAP_432.pt", 4_066_513,
                 "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c", 0.432),
)}


# The ear: the alert sounds (``hearai.ear.table``) heard by this network, a model like the others by its name.
EAR, EAR_BACKBONE = "ear", "efficientat-mn04"
EAR_PREFIX = "ear-"  # the cache's ear files: ear-DIGEST.safetensors, one per alert table in use


def spec(name: str) -> PretrainedSpec:
    if name not in PRETRAINED:
        raise ModelError(f"unknown pretrained network {name!r}; known: {', '.join(sorted(PRETRAINED))}")
    return PRETRAINED[name]


def is_pretrained_name(text: str | os.PathLike) -> bool:
    """A network's name, or the ear's."""
    return str(text) in PRETRAINED or str(text) == EAR


def model_names() -> list[str]:
    """The names a model argument may give instead of a file."""
    return [EAR, *sorted(PRETRAINED)]


def unknown_model(text: str | os.PathLike) -> str | None:
    """What to tell someone whose argument reads as a model but gives none: a web address (files only are read), or
    a bare word that is neither a file here nor a model's name (with the closest name); None otherwise."""
    import difflib

    word = str(text)
    if re.match(r"[A-Za-z][\w+.-]*:/", word):  # a URL (a path argument keeps one slash of "https://")
        return (f"{word.replace(':/', '://', 1)}: a web address; hearai reads model files here, not addresses: "
                f"download the file first ('hearai pull NAME' fetches a pretrained network: {', '.join(PRETRAINED)})")
    if is_pretrained_name(word) or Path(word).suffix or "/" in word or os.sep in word or Path(word).exists():
        return None
    close = difflib.get_close_matches(word.lower(), model_names(), n=1, cutoff=0.6)
    return (f"{word}: no such file, and no model of that name" + (f"; did you mean '{close[0]}'?" if close else "")
            + f" (models: {', '.join(model_names())}, or a .safetensors or .onnx file)")


def available(name: str, *, mirror: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> bool:
    """Whether ``name``'s model file or its weights are here without a download (its hash is checked when used)."""
    pinned = spec(name)
    folders = [cache_root(cache)] + mirror_folders(mirror)
    return (cache_root(cache) / f"{name}.safetensors").is_file() or any(
        (folder / pinned.filename).is_file() or (folder / name / pinned.filename).is_file() for folder in folders)


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Where fetched weights and the model files made from them live: ``$HEARAI_CACHE/pretrained``."""
    if cache is not None:
        return Path(cache)
    return Path(os.environ.get("HEARAI_CACHE", Path.home() / ".cache" / "hearai")) / "pretrained"


def mirror_folders(mirror: str | os.PathLike | None = None) -> list[Path]:
    """The folders looked in before the network: ``mirror``, else ``$HEARAI_MIRROR`` (several: os.pathsep)."""
    given = str(mirror) if mirror is not None else os.environ.get(MIRROR_VARIABLE, "")
    return [Path(p) for p in given.split(os.pathsep) if p]


def sha256_of(path: Path, *, limit: int) -> str:
    """The file's sha256, reading at most ``limit`` + 1 bytes (a larger file cannot match anyway)."""
    digest, seen = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            seen += len(chunk)
            if seen > limit:
                return "larger than pinned"
            digest.update(chunk)
    return digest.hexdigest()


def whole_safetensors(path: Path) -> bool:
    """Whether ``path`` is a regular file as long as its safetensors header says: a cut-off cache file is
    noticed (and made again) without reading its weights."""
    import json
    import struct

    try:
        if what_is_at(path) != REGULAR:
            return False
        with open(path, "rb") as f:
            head = f.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            if not 0 < length <= 100_000_000:
                return False
            header = json.loads(f.read(length))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        return path.stat().st_size == 8 + length + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def verified(path: Path, pinned: PretrainedSpec) -> bool:
    """Whether ``path`` is a regular file of exactly the pinned size and hash."""
    try:
        return path.is_file() and path.stat().st_size == pinned.size and \
            sha256_of(path, limit=pinned.size) == pinned.sha256
    except OSError:
        return False


def fetch(name: str, *, mirror: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
          download: bool = True, url: str | None = None, progress: bool = False) -> Path:
    """A verified copy of ``name``'s weights: from a mirror folder, the cache, or (``download``) its URL.

    A mirror file of the right name but the wrong content is refused, never used. ``url`` replaces
    the pinned address (a local server, a company proxy); size and hash stay pinned.
    """
    pinned = spec(name)
    for folder in mirror_folders(mirror):
        for candidate in (folder / pinned.name / pinned.filename, folder / pinned.filename):
            if candidate.exists():
                if not verified(candidate, pinned):
                    raise ModelError(f"{candidate}: not the pinned {pinned.filename} ({pinned.size:,} bytes, sha256 "
                                     f"{pinned.sha256[:12]}...): remove it or fix the mirror")
                return candidate
    target = cache_root(cache) / pinned.filename
    if verified(target, pinned):
        return target
    if not download:
        raise ModelError(f"{name} is not on this machine: run 'hearai pull {name}' (downloads {pinned.size / 1e6:.1f} "
                         f"MB from {pinned.url}), or set {MIRROR_VARIABLE} to a folder holding {pinned.filename}")
    return _download(pinned, url or pinned.url, target, progress=progress)


def _download(pinned: PretrainedSpec, url: str, target: Path, *, progress: bool) -> Path:
    """Stream ``url`` beside ``target`` (at most the pinned size); keep it only if its hash matches.

    Bounded in time as in size: a server silent for ``TIMEOUT_SECONDS`` or a transfer not done within
    ``DEADLINE_SECONDS`` (one trickling a byte at a time) is given up, and its temporary file removed."""
    from tqdm import tqdm

    check_url(url)
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        kept = _Writer(out, target)
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                    tqdm(total=pinned.size, unit="B", unit_scale=True, desc=pinned.filename,
                         disable=not progress) as bar:
                _receive(response, kept, pinned, url, bar.update)
        except HearaiError:
            raise
        except urllib.error.HTTPError as exc:
            raise ModelError(f"{url}: the server answered HTTP {exc.code} {exc.reason}; nothing downloaded") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
                reason = f"the server sent nothing for {TIMEOUT_SECONDS:g} s"
            raise ModelError(f"{url}: download failed after {kept.written:,} of {pinned.size:,} bytes ({reason}); "
                             f"nothing kept. Without internet, set {MIRROR_VARIABLE} to a folder holding "
                             f"{pinned.filename}") from exc
    return target


def _receive(response: Any, out: _Writer, pinned: PretrainedSpec, url: str, advance: Callable[[int], object]) -> None:
    """Copy the answer's body into ``out`` within the pinned size and ``DEADLINE_SECONDS``."""
    claimed = response.headers.get("Content-Length")
    if claimed is not None and claimed.isdigit() and int(claimed) > pinned.size:
        raise ModelError(f"{url}: the server offers {int(claimed):,} bytes, more than the pinned "
                         f"{pinned.size:,} of {pinned.filename}; nothing kept")
    digest, received, deadline = hashlib.sha256(), 0, time.monotonic() + DEADLINE_SECONDS
    while chunk := response.read1(CHUNK):  # what has arrived: a trickle cannot hold one read for long
        received += len(chunk)
        if received > pinned.size:
            raise ModelError(f"{url}: the server sent more than the pinned {pinned.size:,} bytes of "
                             f"{pinned.filename}; nothing kept")
        if time.monotonic() > deadline:
            raise ModelError(f"{url}: {received:,} of {pinned.size:,} bytes arrived in {DEADLINE_SECONDS:g} s, too "
                             "slowly to finish; nothing kept (run it again, or use a mirror)")
        digest.update(chunk)
        out.write(chunk)
        advance(len(chunk))
    out.flush()
    if received < pinned.size:
        raise ModelError(f"{url}: the transfer stopped after {received:,} of {pinned.size:,} bytes; nothing "
                         "kept (run it again)")
    if digest.hexdigest() != pinned.sha256:
        raise ModelError(f"{url}: sha256 {digest.hexdigest()[:12]}... is not the pinned "
                         f"{pinned.sha256[:12]}... of {pinned.filename}; nothing kept")


class _Writer:
    """The download's temporary file: a failed write (a full disk) is an ``OutputError`` naming the cache file,
    never taken for the network's fault."""

    def __init__(self, out: Any, target: Path) -> None:
        self.out, self.target, self.written = out, target, 0

    def write(self, chunk: bytes) -> None:
        self._guarded(self.out.write, chunk)
        self.written += len(chunk)

    def flush(self) -> None:
        self._guarded(self.out.flush)

    def _guarded(self, step: Callable[..., object], *args: object) -> None:
        try:
            step(*args)
        except OSError as exc:
            raise OutputError(f"{self.target}: could not be written ({exc.strerror or exc}); nothing kept") from exc


def check_url(url: str) -> str:
    """``url`` when it is an http(s) address with a host; ``ModelError`` saying so otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError as exc:
        raise ModelError(f"--url {url[:200]!r}: not a web address ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(f"--url {url[:200]!r}: not a web address: give http://HOST/... or https://HOST/...")
    return url


def read_state_dict(path: Path, name: str) -> dict[str, Any]:
    """The weights at ``path`` as tensors, opened only after their bytes matched ``name``'s pinned hash."""
    pinned = spec(name)
    with open(path, "rb") as f:
        data = f.read(pinned.size + 1)
    if len(data) != pinned.size or hashlib.sha256(data).hexdigest() != pinned.sha256:
        raise ModelError(f"{path}: not the pinned {pinned.filename} (size or sha256 differ); not opened")
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the hash matched, so this is a torch that cannot read the release format
        raise ModelError(f"{path}: torch could not read the weights: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ModelError(f"{path}: not a state dict of named tensors")
    return state
