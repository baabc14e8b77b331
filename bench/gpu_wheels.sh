#!/usr/bin/env bash
# The packages hearai needs that the GPU machine's Python (3.12) lacks, as wheels in .whl/
# (git-ignored; carried with the run). Everything else there (torch, numpy, safetensors,
# matplotlib, tqdm) is already installed: ../.library/device/KINDS.md lists it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12
ls -la .whl
