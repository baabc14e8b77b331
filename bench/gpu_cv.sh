#!/usr/bin/env bash
# ESC-50 cross-validation on a lent GPU, from a pack: the one command a device run executes.
# Here, first (README, "Training fast: the engine, packs and a lent GPU"):
#   .venv/bin/hearai pack --dataset esc50 --root ../shared/data/esc50 --out runs/gpu/esc50.pack
#   bench/gpu_wheels.sh            # soundfile, soxr and their needs, for the GPU machine's Python
# then, through the device tool (repo root there; the pack and wheels travel as carried paths):
#   run(command="bash bench/gpu_cv.sh runs/gpu/esc50.pack", carry=["runs/gpu", ".whl"], timeout_s=600)
# Arguments after the pack go to `hearai cv` (a recipe: --epochs 200, --model resnet, ...). Every
# fold trains at once on the one GPU (bench/parallel_cv.py); only the results come back in $OUT:
# metrics.json, report.md, confusion.png, parallel_cv.json, the fold logs' last lines and the GPU's name.
# Rehearsed here on CPU: PYTHON=.venv/bin/python OUT=/tmp/out bash bench/gpu_cv.sh PACK --epochs 1
set -euo pipefail
python3=${PYTHON:-python3}
pack=${1:?give the pack: bash bench/gpu_cv.sh PACK [hearai cv options]}
shift
out=${OUT:-runs/gpu-out}
mkdir -p "$out"
export PYTHONPATH=$PWD
if ! $python3 -c 'import soundfile, soxr' 2>/dev/null; then  # the GPU machine's Python lacks them
  $python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
device=cpu
$python3 -c 'import torch; raise SystemExit(0 if torch.cuda.is_available() else 1)' && device=cuda
$python3 -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU: CPU")' \
  | tee "$out/device.txt"
run=$(mktemp -d)/cv
status=0
$python3 bench/parallel_cv.py --out "$run" -- --dataset packed --root "$pack" --device "$device" --quiet "$@" \
  > "$out/parallel_cv.json" || status=$?
cat "$out/parallel_cv.json"
cp "$run/metrics.json" "$run/report.md" "$run/confusion.png" "$out/" 2>/dev/null || true
tail -n 5 "$run"/fold-*.log > "$out/fold-logs-tail.txt" 2>/dev/null || true
exit "$status"
