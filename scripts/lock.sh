#!/usr/bin/env bash
# Regenerates requirements-lock.txt (the whole test and CI environment, pinned) from requirements-dev.txt.
# Run after changing a pin in requirements.txt or requirements-dev.txt, then commit both files.
# torch resolves to its CPU build (no multi-GB CUDA wheels in CI): from PyTorch's CPU index, or where the CPU
# wheel lies on this machine's disk (the project's own machines), from there.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_source=(--torch-backend cpu)
if compgen -G "/opt/wheels/torch-*+cpu-*.whl" >/dev/null; then torch_source=(--find-links /opt/wheels); fi
.venv/bin/uv pip compile requirements-dev.txt -o requirements-lock.txt "${torch_source[@]}" \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-annotate \
  --custom-compile-command "bash scripts/lock.sh" --quiet
