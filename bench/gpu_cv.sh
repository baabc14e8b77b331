#!/usr/bin/env bash
# The GPU measurements of training, from a pack, in one command run on the GPU machine.
# Here, first (README, "Training fast, ensembles and distillation"):
#   .venv/bin/hearai pack --dataset esc50 --root ../shared/data/esc50 --feature-config '{"n_mels": 64}' \
#       --out runs/gpu/esc50.pack
#   bench/gpu_wheels.sh            # soundfile, soxr and their needs, for the GPU machine's Python
# then, through the device tool (repo root there; the pack and wheels travel as carried paths):
#   run(command="bash bench/gpu_cv.sh runs/gpu/esc50.pack", carry=["runs/gpu", ".whl"], timeout_s=600)
# Three steps, each under its own time limit so that what finished comes back in $OUT:
#   1. bench/train.py: windows/s and share of the bf16 peak per model, and dsresnet models trained
#      1, 5, 10 and 20 at once (train.json, train.txt);
#   2. ESC-50 5-fold cross-validation of the default recipe, the 5 folds' models trained at once
#      (single/: metrics.json, report.md, wall.txt);
#   3. the ensemble of 2 seeds and its distilled model, 10 models then 5 students at once (distilled/).
# Arguments after the pack go to both cross-validations (e.g. --epochs 200, --model resnet).
# Rehearsed here on CPU: PYTHON=.venv/bin/python OUT=/tmp/out LIMITS="60 300 600" bash bench/gpu_cv.sh PACK --epochs 1
set -uo pipefail
python3=${PYTHON:-python3}
pack=${1:?give the pack: bash bench/gpu_cv.sh PACK [hearai cv options]}
shift
out=${OUT:-runs/gpu-out}
read -r bench_limit single_limit ensemble_limit <<< "${LIMITS:-90 180 270}"  # seconds per step
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if ! $python3 -c 'import soundfile, soxr' 2>/dev/null; then  # the GPU machine's Python lacks them
  $python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
device=cpu
$python3 -c 'import torch; raise SystemExit(0 if torch.cuda.is_available() else 1)' && device=cuda
$python3 -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU: CPU")' \
  | tee "$out/device.txt"
n_mels=$($python3 -c "import sys; from hearai.data.packed import open_pack; from pathlib import Path
print(open_pack(Path(sys.argv[1]).resolve()).feature_config.n_mels)" "$pack")
bf16=""
[ "$device" = cuda ] && bf16=--bf16
timeout "$bench_limit" $python3 bench/train.py --device "$device" --n-mels "$n_mels" --models dsresnet,resnet,vgg-dcase \
  --together 1,5,10,20 $bf16 --out "$out/train.json" > "$out/train.txt" 2>&1
echo "bench/train.py: exit $?" | tee -a "$out/train.txt"

cv() {  # NAME LIMIT [hearai cv options]: one cross-validation, its wall time and report into $out/NAME
  local name=$1 limit=$2
  shift 2
  local run
  run=$(mktemp -d)/cv
  mkdir -p "$out/$name"
  local started=$SECONDS
  timeout "$limit" $python3 -m hearai.cli cv --dataset packed --root "$pack" --device "$device" --quiet --out "$run" \
    "$@" > "$out/$name/log.txt" 2>&1
  local status=$?
  echo "exit $status after $((SECONDS - started)) s: hearai cv $*" | tee "$out/$name/wall.txt"
  cp "$run/metrics.json" "$run/report.md" "$run/confusion.png" "$out/$name/" 2>/dev/null
  tail -n 20 "$out/$name/log.txt"
}
cv single "$single_limit" --together 5 "$@"
cv distilled "$ensemble_limit" --seeds 2 --distill --together 10 "$@"
