#!/usr/bin/env bash
# Set up a virtualenv with the project (first run only), then start the bot with long polling.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python -m bot "$@"
