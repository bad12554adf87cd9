#!/usr/bin/env bash
# Quick start, first command: set up, then run the default scenario end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/driftgate run "$@"
