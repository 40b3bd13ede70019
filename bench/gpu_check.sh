#!/usr/bin/env bash
# Every measurement that needs a GPU, written to one JSON file (default gpu_check.json).
#
#   bench/gpu_check.sh [--out FILE]            # on a CUDA GPU (H200: a few minutes, < 139 GB)
#   bench/gpu_check.sh --dry-run [--out FILE]  # tiny model on the CPU, seconds (tests the script)
#
# Steps (bench/gpu_check.py): full-size memory and load peak per variant from synthetic weights made
# on the GPU; decode tokens/s at 4bit and bf16 for E2B and 26B-A4B; bench/cache.py --device cuda if present.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON_SET:-}" ] && [ "$PYTHON" = python ]; then PYTHON=.venv/bin/python; fi
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" bench/gpu_check.py "$@"
