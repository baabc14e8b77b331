"""Clip features computed once per (file content, FeatureConfig) and reused across runs and folds.

Entries live at ``ROOT/<config hash>/<content hash>.safetensors``, one per clip, each written
atomically: a killed featurization keeps every clip it finished, and a file edited in place gets a
new key instead of stale features. The default root is ``$HEARAI_CACHE`` or ``~/.cache/hearai``.
The feature config is given with every request, so one cache serves every config.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from hearai.errors import AudioError
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor
from hearai.fsutil import atomic_path, write_text_atomic


def default_cache_root() -> Path:
    return Path(os.environ.get("HEARAI_CACHE", Path.home() / ".cache" / "hearai")) / "features"


def config_key(feature_config: FeatureConfig) -> str:
    return hashlib.sha256(json.dumps(feature_config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


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
    """Clip features on disk under ``root``, one folder per ``FeatureConfig``; computed on a miss."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self._keys: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> content hash, this process

    def content_keys(self, paths: Sequence[Path], *, progress: bool = False) -> list[str]:
        """Each file's content hash (read once per process while the file's size and time stay)."""
        keys = []
        for path in tqdm(paths, desc="hashing", unit="file", disable=not progress, delay=2.0):
            try:
                stat = Path(path).stat()
            except OSError as exc:
                raise AudioError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
            seen = (str(path), stat.st_size, stat.st_mtime_ns)
            if seen not in self._keys:
                self._keys[seen] = content_key(Path(path))
            keys.append(self._keys[seen])
        return keys

    def folder(self, feature_config: FeatureConfig) -> Path:
        return self.root / config_key(feature_config)

    def features(self, paths: Sequence[Path], feature_config: FeatureConfig, *, workers: int = 0,
                 progress: bool = True) -> list[torch.Tensor]:
        """Each file's clip features (n_features, frames), in order; computes only the misses."""
        folder = self.folder(feature_config)

        def featurize(missing: list[Path]) -> Iterable[torch.Tensor]:
            write_text_atomic(folder / "feature_config.json", json.dumps(feature_config.to_dict(), indent=2))
            return FeatureExtractor(feature_config).files(missing, workers=workers, progress=progress)

        return self._cached(folder, paths, featurize, progress=progress)

    def derived(self, paths: Sequence[Path], feature_config: FeatureConfig, tag: str,
                compute: Callable[[list[Path]], Iterable[torch.Tensor]], *, progress: bool = True
                ) -> list[torch.Tensor]:
        """What ``compute`` makes of each file (e.g. a frozen network's embeddings of its windows), cached per
        (file content, ``feature_config``, ``tag``): ``tag`` names what computes it, e.g. the network's digest."""
        return self._cached(self.root / f"{config_key(feature_config)}-{tag}", paths, compute, progress=progress)

    def _cached(self, folder: Path, paths: Sequence[Path], compute: Callable[[list[Path]], Iterable[torch.Tensor]],
                *, progress: bool) -> list[torch.Tensor]:
        """Each file's entry in ``folder``, in order; ``compute`` makes the missing ones, each written atomically."""
        entries = [folder / f"{key}.safetensors" for key in self.content_keys(paths, progress=progress)]
        out: list[torch.Tensor | None] = [_read(e) for e in entries]
        missing = [i for i, f in enumerate(out) if f is None]
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            for index, value in zip(missing, compute([paths[i] for i in missing])):
                with atomic_path(entries[index]) as tmp:
                    save_file({"features": value.contiguous()}, str(tmp))
                out[index] = value
        return [f for f in out if f is not None]


def _read(entry: Path) -> torch.Tensor | None:
    if not entry.is_file():
        return None
    try:
        return load_file(str(entry))["features"]
    except (SafetensorError, OSError, KeyError):
        entry.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        return None
