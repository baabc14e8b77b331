"""File to log-mel throughput on ESC-50, side by side in one run: decode only, librosa, hearai.

Each variant runs in its own process pinned to 1 or 2 cores (sched_setaffinity), after a warm-up
read that puts the files in the page cache, so the table compares compute, not the disk. Prints a
table of clips/s with ratios to decode-only and to librosa, and writes JSON.

    .venv/bin/python bench/featurize.py [--clips 2000] [--data ../shared/data] [--out bench/results/featurize.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from hearai.fsutil import write_text_atomic

REPO = Path(__file__).resolve().parents[1]

# name: (cores, what it measures)
VARIANTS = {
    "decode": (1, "soundfile decode only (the floor)"),
    "decode-2": (2, "soundfile decode only, 2 threads"),
    "librosa": (1, "librosa.load + melspectrogram + power_to_db"),
    "hearai": (1, "hearai end to end (decode + log-mel)"),
    "hearai-2": (2, "hearai end to end, 2 worker processes (start-up included)"),
    "librosa-compute": (1, "librosa features of decoded clips"),
    "hearai-compute": (1, "hearai features of decoded clips, one at a time"),
    "hearai-compute-batch": (1, "hearai features of decoded clips, batches of 16"),
    "hearai-compute-2": (2, "hearai features of decoded clips, 2 cores, batches of 4"),
    "hearai-gpu": (2, "hearai end to end, log-mel on the GPU"),
}


def esc50_files(data: Path, limit: int) -> list[Path]:
    with open(data / "esc50" / "esc50.csv", newline="") as f:
        return [data / "esc50" / "audio" / row["filename"] for row in csv.DictReader(f)][:limit]


def run_variant(name: str, files: list[Path]) -> float:
    """Seconds for the whole variant over ``files`` (run inside a pinned child process)."""
    import soundfile as sf
    import torch

    from hearai import audio
    from hearai.featureconfig import FeatureConfig
    from hearai.features import FeatureExtractor

    cores = VARIANTS[name][0]
    torch.set_num_threads(cores if "compute" in name else 1)
    config = FeatureConfig()
    librosa_args = dict(sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
                        win_length=config.win_length, window=config.window, pad_mode=config.pad_mode,
                        n_mels=config.n_mels)
    if name.endswith("compute") or "compute-" in name:
        waves = [audio.load(p, sample_rate=config.sample_rate) for p in files]
    started = time.perf_counter()
    if name.startswith("decode"):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(cores) as pool:
            for _ in pool.map(lambda p: sf.read(p, dtype="float32"), files):
                pass
    elif name == "librosa":
        import librosa

        for path in files:
            wave, _ = librosa.load(path, sr=config.sample_rate)
            librosa.power_to_db(librosa.feature.melspectrogram(y=wave, **librosa_args), top_db=None)
    elif name == "librosa-compute":
        import librosa

        for wave in waves:
            librosa.power_to_db(librosa.feature.melspectrogram(y=wave, **librosa_args), top_db=None)
    elif name in ("hearai", "hearai-2", "hearai-gpu"):
        extractor = FeatureExtractor(config, device="cuda" if name == "hearai-gpu" else "cpu")
        for _ in extractor.files(files, workers=2 if name == "hearai-2" else 0):
            pass
    else:
        extractor = FeatureExtractor(config)
        size = {"hearai-compute": 1, "hearai-compute-batch": 16, "hearai-compute-2": 4}[name]
        for i in range(0, len(waves), size):
            extractor.batch(waves[i : i + size])
    return time.perf_counter() - started


def child(name: str, files: list[Path]) -> None:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: VARIANTS[name][0]]))
    print(json.dumps({"seconds": run_variant(name, files)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2000)
    default_data = Path(os.environ.get("HEARAI_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "featurize.json")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = esc50_files(args.data, args.clips)
    if args.child:
        child(args.child, files)
        return

    import torch

    variants = [v for v in args.variants if v != "hearai-gpu" or torch.cuda.is_available()]
    for path in files:  # warm the page cache so no variant pays for the disk
        path.read_bytes()
    results = {}
    for name in variants:
        done = subprocess.run([sys.executable, __file__, "--child", name, "--clips", str(args.clips),
                               "--data", str(args.data)], capture_output=True, text=True, check=True)
        seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        results[name] = {"cores": VARIANTS[name][0], "what": VARIANTS[name][1], "seconds": round(seconds, 3),
                         "clips_per_s": round(len(files) / seconds, 1)}
        print(f"  {name:22s} {results[name]['clips_per_s']:8.1f} clips/s", flush=True)

    def ratio(a: str, b: str) -> float | None:
        if a not in results or b not in results:
            return None
        return round(results[a]["clips_per_s"] / results[b]["clips_per_s"], 2)

    ratios = {
        "hearai_vs_decode_1core": ratio("hearai", "decode"),
        "hearai_vs_decode_2cores": ratio("hearai-2", "decode-2"),
        "hearai_vs_librosa_1core": ratio("hearai", "librosa"),
        "hearai_2cores_vs_librosa_1core": ratio("hearai-2", "librosa"),
        "compute_vs_librosa_1core": ratio("hearai-compute", "librosa-compute"),
        "compute_batched_vs_librosa_1core": ratio("hearai-compute-batch", "librosa-compute"),
        "compute_2cores_vs_librosa_1core": ratio("hearai-compute-2", "librosa-compute"),
    }
    print(f"\n{'variant':24s}{'cores':>6s}{'clips/s':>10s}{'vs decode':>11s}{'vs librosa':>12s}  what")
    for name, row in results.items():
        floor = "decode-2" if row["cores"] == 2 and name.startswith("hearai") and "compute" not in name else "decode"
        baseline = "librosa-compute" if "compute" in name else "librosa"
        print(f"{name:24s}{row['cores']:>6d}{row['clips_per_s']:>10.1f}{ratio(name, floor) or 0:>10.2f}x"
              f"{ratio(name, baseline) or 0:>11.2f}x  {row['what']}")
    print("\nratios: " + json.dumps(ratios))
    report = {"clips": len(files), "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
              "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
              "variants": results, "ratios": ratios}
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
