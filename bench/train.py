"""Training throughput per model: full data pipeline vs preloaded tensors, in one run.

The pipeline path builds each batch as ``fit`` does (``BatchMaker``, no augmentation: windows cut
from cached clip features); the preloaded path feeds tensors already stacked in memory. Their ratio
is the data pipeline's share of a training step (goal: under 10 %). Each model's training work
(3 x 2 x multiply-adds a window: forward and backward) per second is set against this machine's
measured dense-matrix peak (float32 on a CPU, bf16 on a GPU). Then the cost of building one
batch with each augmentation ingredient, beside the plain batch and a `dsresnet` training step;
with ``--device cuda``, side by side: batches made on the CPU (then copied) and on the GPU.
Prints tables and writes JSON.

    .venv/bin/python bench/train.py [--steps 30] [--device cuda] [--threads 1] [--out bench/results/train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from hearai.augment import AugmentConfig, BatchMaker
from hearai.data.clips import ClipFeatures, ResidentWindows
from hearai.featureconfig import FeatureConfig
from hearai.features import LogMel
from hearai.fsutil import write_text_atomic
from hearai.models import count_macs, count_parameters, create_model, list_models
from hearai.models.stacked import StackedNet

REPO = Path(__file__).resolve().parents[1]


def synchronized(device: torch.device) -> float:
    """perf_counter once the device has finished its queued work (GPU kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def steps_per_second(model: nn.Module, batches, steps: int, device: torch.device, *, bf16: bool = False,
                     forward: nn.Module | None = None) -> float:
    """Training steps a second (warm-up excluded); ``forward``: a compiled model to run instead."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    run = forward if forward is not None else model
    for i, make in enumerate(batches):
        if i == 3:  # warm-up steps (and compilation) excluded
            started = synchronized(device)
        x, y = make()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = run(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
        loss = nn.functional.cross_entropy(logits.float().flatten(0, -2), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i == steps + 2:
            break
    return steps / (synchronized(device) - started)


def matmul_peak(device: torch.device) -> float:
    """FLOP/s of a large dense matrix product: the most this device does (float32 on CPU, bf16 on GPU)."""
    n, dtype = (2048, torch.float32) if device.type == "cpu" else (8192, torch.bfloat16)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    rounds, started = 5, synchronized(device)
    for _ in range(rounds):
        a @ b
    return rounds * 2 * n**3 / (synchronized(device) - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU threads (default: every core; 1 mimics one of several fold processes)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "train.json")
    parser.add_argument("--n-mels", type=int, default=FeatureConfig().n_mels,
                        help="mel bands of the features (default: %(default)s, the default recipe's)")
    parser.add_argument("--models", default=",".join(spec.name for spec in list_models()),
                        help="comma-separated models to time (default: every registered one)")
    parser.add_argument("--together", default="",
                        help="comma-separated numbers of dsresnet models to train at once as one stacked network "
                        "(hearai cv --together), e.g. 1,2,5,10: windows/s of them all and per model")
    parser.add_argument("--bf16", action="store_true", help="the --together rows with bf16 autocast (as on a GPU)")
    parser.add_argument("--variants", action="store_true",
                        help="also time dsresnet with bf16 autocast and with torch.compile (minutes: it compiles)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = FeatureConfig(n_mels=args.n_mels)
    generator = torch.Generator().manual_seed(0)
    # 400 clips of 5 s of coloured noise: the size of ESC-10, without the decode cost.
    waves = [(torch.randn(5 * config.sample_rate, generator=generator).cumsum(0) * 1e-3).numpy() for _ in range(400)]
    logmel = LogMel(config)
    with torch.no_grad():
        clips = ClipFeatures([logmel(torch.from_numpy(w)) for w in waves], torch.arange(400) % 10, waves)
    rows = clips.window_index(config)
    b = args.batch_size

    def maker(augment: AugmentConfig, on: torch.device = device) -> BatchMaker:
        return BatchMaker(clips, rows, feature_config=config, augment=augment, n_classes=10,
                          band_mean=torch.cat(list(clips.features), 1).mean(1), seed=0, device=on)

    plain = maker(AugmentConfig.plain())

    def pipeline():
        while True:
            chunk = rows[torch.randperm(len(rows), generator=generator)[:b]]
            yield lambda chunk=chunk: plain(chunk)

    preloaded_x = clips.windows(rows[:b], config.window_frames).to(device).contiguous(memory_format=torch.channels_last)
    preloaded_y = clips.labels[rows[:b, 0]].to(device)

    def preloaded():
        while True:
            yield lambda: (preloaded_x, preloaded_y)

    # Cutting a batch of windows: from the clips' own tensors, then copied to the device (before), or
    # from the features kept on the device (ResidentWindows, what BatchMaker does now: one gather on
    # a GPU, slices of one tensor on a CPU).
    resident = ResidentWindows(clips.features, device)
    chunks = [rows[torch.randperm(len(rows), generator=generator)[:b]] for _ in range(50)]
    cut = {}
    frames = config.window_frames
    for name, cut_batch in [("from each clip, then copied (before)", lambda c: clips.windows(c, frames).to(device)),
                            ("where the features live (ResidentWindows)", lambda c: resident.windows(c, frames))]:
        cut_batch(chunks[0])
        started = synchronized(device)
        for chunk in chunks:
            cut_batch(chunk)
        cut[name] = round(1000 * (synchronized(device) - started) / len(chunks), 3)
        print(f"a batch of {b} windows {name}: {cut[name]:.3f} ms")
    peak = matmul_peak(device)
    print(f"dense matrix peak ({'float32' if device.type == 'cpu' else 'bf16'}): {peak / 1e12:.3f} TFLOP/s")
    results = {}
    for name in args.models.split(","):
        model = create_model(name, n_classes=10, n_features=config.n_features, n_frames=config.window_frames)
        model = model.to(device, memory_format=torch.channels_last)
        # Alternate the two paths and keep each one's best round: the machine's noise hits both alike.
        fast = full = 0.0
        for _ in range(2):
            full = max(full, steps_per_second(model, pipeline(), args.steps, device) * b)
            fast = max(fast, steps_per_second(model, preloaded(), args.steps, device) * b)
        results[name] = {
            "parameters": count_parameters(model),
            "macs_per_window": count_macs(model, config.n_features, config.window_frames),
            "macs_per_second_of_audio": count_macs(model, config.n_features, config.window_frames)
            / config.window_hop_seconds,
            "samples_per_s_preloaded": round(fast, 1),
            "samples_per_s_pipeline": round(full, 1),
            "pipeline_overhead": round(max(0.0, 1 - full / fast), 3),
        }
        r = results[name]
        r["training_flops_per_s"] = 6 * r["macs_per_window"] * fast
        r["share_of_peak"] = round(r["training_flops_per_s"] / peak, 4)
        print(f"{name:12s} params {r['parameters']:>9,}  MMACs/window {r['macs_per_window'] / 1e6:7.1f}  "
              f"preloaded {fast:7.1f}/s  pipeline {full:7.1f}/s  overhead {100 * r['pipeline_overhead']:.1f} %  "
              f"{r['training_flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * r['share_of_peak']:.1f} % of peak")
    variants = {}
    if args.variants:  # what pays on this device: bf16 autocast, torch.compile, both
        for name, bf16, compiled in [("eager float32", False, False), ("eager bf16", True, False),
                                     ("compiled float32", False, True), ("compiled bf16", True, True)]:
            torch.manual_seed(0)
            model = create_model("dsresnet", n_classes=10, n_features=config.n_features,
                                 n_frames=config.window_frames).to(device, memory_format=torch.channels_last)
            forward = torch.compile(model) if compiled else None
            rate = steps_per_second(model, preloaded(), args.steps, device, bf16=bf16, forward=forward) * b
            variants[name] = round(rate, 1)
            print(f"dsresnet {name:17s} {rate:8.1f} windows/s ({rate / variants['eager float32']:.2f}x eager float32)")
    together = {}
    for count in [int(k) for k in args.together.split(",") if k.strip()]:
        torch.manual_seed(0)
        members = [create_model("dsresnet", n_classes=10, n_features=config.n_features, n_frames=config.window_frames)
                   for _ in range(count)]
        net = StackedNet(members).to(device, memory_format=torch.channels_last)
        x = torch.randn(count, b, 1, config.n_features, config.window_frames, device=device)
        y = torch.randint(0, 10, (count, b), device=device)

        def stacked_batches(x=x, y=y):
            while True:
                yield lambda: (x, y)

        rate = steps_per_second(net, stacked_batches(), args.steps, device, bf16=args.bf16) * b * count
        flops = 6 * results["dsresnet"]["macs_per_window"] * rate
        together[count] = {"windows_per_s": round(rate, 1), "windows_per_s_per_model": round(rate / count, 1),
                           "training_flops_per_s": flops, "share_of_peak": round(flops / peak, 4)}
        print(f"dsresnet x{count:<3d} at once{' (bf16)' if args.bf16 else ''}: {rate:9.1f} windows/s, "
              f"{rate / count:8.1f} per model, {100 * flops / peak:.1f} % of peak")
    step_ms = 1000 * b / results["dsresnet"]["samples_per_s_preloaded"]
    ingredients = {
        "plain": AugmentConfig.plain(),
        "spec_augment": AugmentConfig.plain(spec_augment=True),
        "mixup": AugmentConfig.plain(mixing="mixup"),
        "bc-logmel": AugmentConfig.plain(mixing="bc-logmel"),
        "bc-waveform": AugmentConfig.plain(mixing="bc-waveform"),
        "waveform": AugmentConfig.plain(waveform=True),
        "default recipe": AugmentConfig(),
    }
    batch_cost = {}
    makers_on = {"cpu": torch.device("cpu")} | ({"device": device} if device.type != "cpu" else {})
    for name, augment in ingredients.items():
        chunks = [rows[torch.randperm(len(rows), generator=generator)[:b]] for _ in range(6)]
        batch_cost[name] = {}
        for where, on in makers_on.items():
            make = maker(augment, on)
            make(chunks[0])
            started = synchronized(on)
            for chunk in chunks[1:]:
                make(chunk)
            ms = 1000 * (synchronized(on) - started) / (len(chunks) - 1)
            batch_cost[name][where] = {"ms_per_batch": round(ms, 1), "share_of_dsresnet_step": round(ms / step_ms, 3)}
        print(f"batch with {name:13s} " + "  ".join(f"made on {where}: {cost['ms_per_batch']:7.1f} ms"
                                                   for where, cost in batch_cost[name].items())
              + f"  (a dsresnet step: {step_ms:.1f} ms)")
    report = {"threads": torch.get_num_threads(), "device": str(device), "batch_size": b, "torch": torch.__version__,
              "matmul_peak_flops_per_s": peak, "dsresnet_variants_windows_per_s": variants, "batch_cut_ms": cut,
              "n_mels": config.n_mels, "dsresnet_together": together, "together_bf16": args.bf16,
              "models": results,
              "augmentation_batch_cost": batch_cost}
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
