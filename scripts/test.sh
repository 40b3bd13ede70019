#!/usr/bin/env bash
# Installs everything the tests need (system packages, a venv with the locked environment, CPU torch included)
# and runs them in stages, stopping at the first that fails: lint, the quick loop (`-m "not slow"`), then the
# slow tests (models, servers, Chromium). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for tool in chromium ffmpeg espeak-ng; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg espeak-ng fonts-dejavu-core >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
# The lock pins torch's CPU build, so nothing pulls a multi-GB CUDA build; it is installed first, on its own.
.venv/bin/pip install -q "$(grep -E '^torch==' requirements-lock.txt)"
.venv/bin/pip install -q -r requirements-lock.txt

export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== quick loop: pytest -m 'not slow'"
.venv/bin/python -m pytest -m "not slow" --durations=10 "$@"
echo "== slow tests: pytest -m slow"
exec .venv/bin/python -m pytest -m slow --durations=15 "$@"
