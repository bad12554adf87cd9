#!/usr/bin/env bash
# Set up driftgate on a fresh Debian or Ubuntu machine: Debian's Prometheus (and, with
# --with-browser, the tools the tests use: Chromium, docker-compose, amtool), then a virtual environment in .venv with driftgate
# installed in editable mode. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=false
[ "${1:-}" = "--with-browser" ] && with_browser=true

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if $with_browser; then
  # The test suite's extra tools: a browser for the report, compose's parser, amtool.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
fi
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo_cmd=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "driftgate setup: need root or sudo to run: apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "driftgate setup: installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u)
fi

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "driftgate setup: Python 3.11 or newer is needed, found $(python3 --version)" >&2
  exit 2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "driftgate setup: ready (.venv/bin/driftgate)"
