"""What the ear is taught new sounds against: the embeddings of windows of ESC-50's sounds, silence and noise.

Teaching the ear a sound (``hearai.teach``) tells its examples apart from other sounds. The ear's
file is made where it is used, from the pulled weights, and no dataset is there; so the package
carries the embeddings (512 numbers per 1-s window: the AudioSet head's hidden layer) of windows
of ESC-50's 50 sounds, made by ``make ear-reference`` with the pinned weights. The file names
those weights' sha256, and an ear on other weights refuses it.

    python -m hearai.ear.reference --root ../shared/data/esc50 --out hearai/default_model/ear-reference.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from hearai import audio
from hearai.artifact import Classifier, EmbeddedReference
from hearai.data.records import Dataset
from hearai.data.soundscapes import BACKGROUNDS
from hearai.ear.network import body, embed_windows
from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor, decibels
from hearai.fsutil import atomic_path
from hearai.jsontext import parse_json
from hearai.windows import window_starts

REFERENCE_FILE = Path(__file__).parents[1] / "default_model" / "ear-reference.safetensors"
PER_CLASS, PER_BACKGROUND = 8, 16  # recordings per sound (two windows of each)
QUIET_SOUND = "silence and steady noise (synthetic)"
MAX_FILE_BYTES = 8 << 20


def shipped_reference(tagger: Classifier) -> tuple[EmbeddedReference, dict[str, Any]]:
    """The package's ear reference, checked against ``tagger``'s weights and embedding size."""
    return read_ear_reference(REFERENCE_FILE, sha256=tagger.provenance["pretrained"]["sha256"],
                              size=body(tagger).hidden_size)

def build_ear_reference(dataset: Dataset, ear: Classifier, *, per_class: int = PER_CLASS,
                        per_background: int = PER_BACKGROUND, seed: int = 0, progress: bool = True
                        ) -> tuple[EmbeddedReference, dict[str, Any]]:
    """Per sound of ``dataset``, the ear's embeddings of ``per_class`` of its recordings (``per_background``
    for background sounds): each recording's loudest 1-s window and one at random, so quiet stretches
    are there too; then silence and steady noise from very soft to loud (``quiet_windows``)."""
    rng = np.random.default_rng(seed)
    config = ear.feature_config
    extractor = FeatureExtractor(config)
    chosen: list[tuple[int, Path]] = []
    for k, label in enumerate(dataset.labels):
        paths = [c.path for c in dataset.clips if c.label == label]
        count = min(len(paths), per_background if label in BACKGROUNDS else per_class)
        chosen += [(k, paths[int(i)]) for i in rng.permutation(len(paths))[:count]]
    windows, labels, streamed = [], [], 0
    for k, path in tqdm(chosen, desc="embedding reference windows", unit="clip", disable=not progress):
        features = extractor.clip(audio.load(path, sample_rate=config.sample_rate))
        windows += [loudest_window(features, config), random_window(features, config, rng)]
        labels += [-1 - k] * 2
        streamed += len(window_starts(features.shape[-1], config))
    quiet = quiet_windows(extractor, rng)
    windows += quiet
    labels += [-1 - len(dataset.labels)] * len(quiet)
    sounds = [*dataset.labels, QUIET_SOUND]
    background = torch.tensor([label < -len(dataset.labels) or sounds[-1 - label] in BACKGROUNDS for label in labels])
    pretrained = ear.provenance.get("pretrained", {})
    info = {"backbone": pretrained.get("name"), "sha256": pretrained.get("sha256"), "data": dataset.name,
            "sounds": sounds, "windows": len(windows), "window_seconds": config.window_seconds,
            "stands_for": round(streamed / (2 * len(chosen)), 3),
            "files": sorted(p.name for _, p in chosen)}
    return EmbeddedReference(embed_windows(ear, torch.stack(windows)).half(), torch.tensor(labels), background), info

def quiet_windows(extractor: FeatureExtractor, rng: np.random.Generator) -> list[torch.Tensor]:
    """Windows of no sound: digital silence, and white and brown noise from -90 to -30 dBFS (a quiet room's hiss
    and rumble, a microphone's own noise), so that a taught sound is told apart from quiet."""
    config = extractor.config
    samples = config.window_samples
    white = rng.standard_normal(samples)
    brown = np.cumsum(rng.standard_normal(samples))
    brown -= np.convolve(brown, np.ones(1001) / 1001, mode="same")  # no drift below ~30 Hz
    noises = [np.zeros(samples)]
    for level_db in (-90.0, -75.0, -60.0, -45.0, -30.0):
        noises += [n / np.sqrt((n**2).mean()) * 10 ** (level_db / 20) for n in (white, brown)]
    return [loudest_window(extractor.clip(n.astype(np.float32)), config) for n in noises]

def loudest_window(features: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """The window-long stretch of a recording's features (``FeatureExtractor.clip``: at least a window) with
    the most power."""
    frames = config.window_frames
    power = (10.0 ** (decibels(features.double(), config) / 10.0)).sum(dim=0)
    energy = torch.nn.functional.conv1d(power.view(1, 1, -1), torch.ones(1, 1, frames, dtype=power.dtype)).flatten()
    start = int(energy.argmax())
    return features[:, start : start + frames]

def random_window(features: torch.Tensor, config: FeatureConfig, rng: np.random.Generator) -> torch.Tensor:
    """A window-long stretch of a recording's features (at least a window) starting anywhere."""
    frames = config.window_frames
    start = int(rng.integers(0, features.shape[-1] - frames + 1))
    return features[:, start : start + frames]

def write_ear_reference(reference: EmbeddedReference, info: dict[str, Any], path: str | Path) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(reference.tensors(), str(tmp), metadata={"hearai-ear-reference": json.dumps(info)})
    return target

def read_ear_reference(path: str | Path, *, sha256: str, size: int) -> tuple[EmbeddedReference, dict[str, Any]]:
    """The reference at ``path``, checked: made with the weights ``sha256``, embeddings ``size`` wide."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
        raise ModelError(f"{path}: the ear's reference is missing or over {MAX_FILE_BYTES >> 20} MB")
    try:
        with safe_open(str(path), framework="pt") as f:
            info = parse_json((f.metadata() or {}).get("hearai-ear-reference", "null"), source=str(path),
                              error=ModelError)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable reference file: {exc}") from exc
    if not isinstance(info, dict) or info.get("sha256") != sha256 or not isinstance(info.get("sounds"), list):
        raise ModelError(f"{path}: the reference was not made with these weights (sha256 {sha256[:12]}…)")
    reference = EmbeddedReference.from_tensors(tensors, size=size, n_classes=0, source=path)
    if int(reference.labels.min()) < -len(info["sounds"]):
        raise ModelError(f"{path}: the reference's labels name more sounds than it lists")
    stands_for = info.get("stands_for")
    if isinstance(stands_for, bool) or not isinstance(stands_for, (int, float)) or not 1 <= stands_for <= 1000:
        raise ModelError(f"{path}: 'stands_for' must be a number from 1 to 1000, got {stands_for!r}")
    return reference, {**info, "digest": hashlib.sha256(path.read_bytes()).hexdigest()}

def main(argv: list[str] | None = None) -> int:
    from hearai.data.esc50 import prepare_esc50
    from hearai.ear.building import build_ear
    from hearai.ear.table import shipped_alert_table
    from hearai.pretrained import load_pretrained
    from hearai.weights import EAR_BACKBONE

    parser = argparse.ArgumentParser(description="Make the pretrained ear's shipped teaching reference from ESC-50.")
    parser.add_argument("--root", type=Path, required=True, help="the ESC-50 folder")
    parser.add_argument("--out", type=Path, default=REFERENCE_FILE)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    ear = build_ear(load_pretrained(EAR_BACKBONE), shipped_alert_table())
    reference, info = build_ear_reference(prepare_esc50(args.root), ear)
    write_ear_reference(reference, info, args.out)
    print(f"{args.out}: {info['windows']} windows of {len(info['sounds'])} sounds ({args.out.stat().st_size} bytes)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
