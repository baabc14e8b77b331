"""A dataset's clip features in one small file, for a machine without the corpus: a remote GPU
machine may take small transfers only, and ESC-50's audio is far larger than its features.

``pack_features`` writes every clip's features, each quantized to 8 bits between its own lowest
and highest value (for log-mel dB with an 80-dB range a step of 0.31 dB, an error of at most
0.16 dB: far under what SpecAugment and mixing change), with the clips' table (name, label, fold,
source, the content hash of the audio it came from) and the feature config, as safetensors
compressed with LZMA. ``PackedFeatures`` reads one back, checking every size against the header
before allocating, and serves as both the dataset (``prepare("packed", FILE)``) and the feature
source of a run in place of the ``FeatureCache``: ``hearai cv --dataset packed --root FILE``.
A packed dataset has no audio, so recipes that need waveforms (waveform augmentation) refuse it.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from hearai.data.records import Clip, Dataset
from hearai.errors import DatasetError
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import write_bytes_atomic
from hearai.jsontext import parse_json

FORMAT = "hearai-features-pack/1"
MAX_PACK_BYTES = 1 << 30  # a pack, unpacked: ESC-50 at 150 mel bands is 76 MB
LEVELS = 255


def pack_features(dataset: Dataset, features: Sequence[torch.Tensor], keys: Sequence[str],
                  feature_config: FeatureConfig, out: Path) -> int:
    """Write ``dataset``'s clip ``features`` (in clip order; ``keys``: their audio's content hashes) to ``out``.

    Returns the file's size in bytes.
    """
    if not (len(features) == len(keys) == len(dataset.clips)):
        raise DatasetError(f"{out}: {len(dataset.clips)} clips but {len(features)} feature arrays and {len(keys)} keys")
    low = np.array([float(f.min()) for f in features], dtype=np.float32)
    high = np.array([float(f.max()) for f in features], dtype=np.float32)
    step = np.maximum(high - low, 1e-6) / LEVELS
    codes = np.concatenate([np.rint((f.numpy() - lo) / s).clip(0, LEVELS).astype(np.uint8)
                            for f, lo, s in zip(features, low, step)], axis=1)
    header = {"format": FORMAT, "dataset": dataset.name, "labels": list(dataset.labels),
              "corpus_folds": dataset.all_folds, "feature_config": feature_config.to_dict(),
              "clips": [[c.path.name, c.label, c.fold, c.source, key] for c, key in zip(dataset.clips, keys)]}
    body = save_arrays({"codes": codes, "frames": np.array([f.shape[1] for f in features], dtype=np.int64),
                        "low": low, "step": step}, metadata={"hearai": json.dumps(header)})
    packed = lzma.compress(body, preset=9 | lzma.PRESET_EXTREME)
    write_bytes_atomic(out, packed)
    return len(packed)


class PackedFeatures:
    """A pack read back: its ``dataset`` (clips at ``FILE/NAME``, no audio), ``feature_config`` and features."""

    def __init__(self, path: Path) -> None:
        self.path = path
        arrays, header = _read(path)
        try:
            self.feature_config = FeatureConfig.from_dict(header["feature_config"])
            rows = header["clips"]
            clips = tuple(Clip(path=path / str(name), label=str(label), fold=fold, source=source)
                          for name, label, fold, source, _ in rows)
            self._keys = {str(path / str(row[0])): str(row[4]) for row in rows}
            self.dataset = Dataset(name=str(header["dataset"]), clips=clips, labels=tuple(header["labels"]),
                                   corpus_folds=tuple(int(k) for k in header["corpus_folds"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: damaged pack header ({exc})") from exc
        codes, frames, low, step = arrays["codes"], arrays["frames"], arrays["low"], arrays["step"]
        n = len(clips)
        if not (codes.ndim == 2 and codes.dtype == np.uint8 and codes.shape[0] == self.feature_config.n_features
                and frames.shape == low.shape == step.shape == (n,) and int(frames.sum()) == codes.shape[1]
                and (frames > 0).all() and np.isfinite(low).all() and np.isfinite(step).all()):
            raise DatasetError(f"{path}: damaged pack (its arrays do not match its {n} clips)")
        starts = np.concatenate([[0], np.cumsum(frames)[:-1]])
        self._features = {str(c.path): torch.from_numpy(codes[:, s : s + f].astype(np.float32) * st + lo)
                          for c, s, f, lo, st in zip(clips, starts, frames, low, step)}

    def content_keys(self, paths: Sequence[Path], *, progress: bool = False) -> list[str]:
        """The content hash of each clip's original audio, as the pack recorded it."""
        return [self._key(p) for p in paths]

    def features(self, paths: Sequence[Path], feature_config: FeatureConfig, *, workers: int = 0,
                 progress: bool = True) -> list[torch.Tensor]:
        """The packed features of ``paths``: only for the config they were packed with."""
        if feature_config != self.feature_config:
            differing = _differing(self.feature_config, feature_config)
            raise DatasetError(f"{self.path}: packed with other features ({differing} differ); pack again with "
                               "this --feature-config")
        return [self._features[self._name(p)] for p in paths]

    def derived(self, paths: Sequence[Path], feature_config: FeatureConfig, tag: str,
                compute: Callable[[list[Path]], Iterable[torch.Tensor]], *, progress: bool = True
                ) -> list[torch.Tensor]:
        """``FeatureCache.derived``'s answer, computed each time: a pack is read-only."""
        del feature_config, tag, progress
        return list(compute(list(paths)))

    def _key(self, path: Path) -> str:
        return self._keys[self._name(path)]

    def _name(self, path: Path) -> str:
        if str(path) not in self._features:
            raise DatasetError(f"{path}: not a clip of the pack {self.path}")
        return str(path)


@lru_cache(maxsize=4)
def open_pack(path: Path) -> PackedFeatures:
    """One ``PackedFeatures`` per file and process (the dataset and the run's feature source share it)."""
    return PackedFeatures(path)


def prepare_packed(path: str | Path) -> Dataset:
    return open_pack(Path(path).resolve()).dataset


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        size = path.stat().st_size
        if size > MAX_PACK_BYTES:
            raise DatasetError(f"{path}: {size} bytes; a pack is at most {MAX_PACK_BYTES}")
        decompressor = lzma.LZMADecompressor()
        body = decompressor.decompress(path.read_bytes(), max_length=MAX_PACK_BYTES + 1)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except lzma.LZMAError as exc:
        raise DatasetError(f"{path}: not a hearai pack ({exc})") from exc
    if len(body) > MAX_PACK_BYTES or not decompressor.eof:
        raise DatasetError(f"{path}: not a whole hearai pack (truncated, or over {MAX_PACK_BYTES} bytes unpacked)")
    try:
        header_length = int.from_bytes(body[:8], "little")
        meta = parse_json(body[8 : 8 + header_length], source=str(path), error=DatasetError).get("__metadata__", {})
        header = parse_json(meta["hearai"], source=str(path), error=DatasetError)
        arrays = load_arrays(body)
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: damaged pack ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a {FORMAT} file")
    if set(arrays) != {"codes", "frames", "low", "step"}:
        raise DatasetError(f"{path}: damaged pack (arrays {sorted(arrays)})")
    return arrays, header


def _differing(ours: FeatureConfig, theirs: FeatureConfig) -> str:
    a, b = ours.to_dict(), theirs.to_dict()
    return ", ".join(k for k in a if a[k] != b.get(k))
