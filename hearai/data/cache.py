"""Clip features computed once per (file content, FeatureConfig) and reused across runs and folds.

Entries live at ``ROOT/<config hash>/<content hash>.safetensors``, one per clip, each written
atomically: a killed featurization keeps every clip it finished, and a file edited in place gets a
new key instead of stale features. The default root is ``$HEARAI_CACHE`` or ``~/.cache/hearai``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from hearai.errors import AudioError
from hearai.features import FeatureConfig, FeatureExtractor
from hearai.fsutil import atomic_path


def default_cache_root() -> Path:
    return Path(os.environ.get("HEARAI_CACHE", Path.home() / ".cache" / "hearai")) / "features"


def config_key(config: FeatureConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def content_key(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


class FeatureCache:
    """Features of clips under one ``FeatureConfig``, from disk when present, computed otherwise."""

    def __init__(self, config: FeatureConfig, root: str | Path | None = None) -> None:
        self.config = config
        self.folder = Path(root) if root is not None else default_cache_root()
        self.folder = self.folder / config_key(config)

    def entry(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def features(self, paths: Sequence[Path], *, workers: int = 0, progress: bool = True) -> list[torch.Tensor]:
        """Each file's clip features (n_features, frames), in order; computes only the misses."""
        hashing = tqdm(paths, desc="hashing", unit="file", disable=not progress, delay=2.0)
        keys = [content_key(Path(p)) for p in hashing]
        out: list[torch.Tensor | None] = [self._read(k) for k in keys]
        missing = [i for i, f in enumerate(out) if f is None]
        if missing:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "feature_config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            extractor = FeatureExtractor(self.config)
            computed = extractor.files([paths[i] for i in missing], workers=workers, progress=progress)
            for index, features in zip(missing, computed):
                with atomic_path(self.entry(keys[index])) as tmp:
                    save_file({"features": features.contiguous()}, str(tmp))
                out[index] = features
        return [f for f in out if f is not None]

    def _read(self, key: str) -> torch.Tensor | None:
        path = self.entry(key)
        if not path.is_file():
            return None
        try:
            return load_file(str(path))["features"]
        except (SafetensorError, OSError, KeyError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
            return None
