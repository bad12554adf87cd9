#!/usr/bin/env bash
# Quick start, second command: set up (with Chromium for the report test), then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
exec .venv/bin/python -m pytest "$@"
