#!/usr/bin/env bash
# Set up medstream in ./.venv on a fresh Debian machine: system packages, the CPU build of torch
# (installed first, so that no dependency pulls a multi-GB CUDA build), then the project with its
# development extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# espeak-ng speaks the synthetic medical sentences some tests use; chromium runs the web page
# test (headless, driven by Playwright); haproxy balances two server replicas in the replica
# test (docs/deploy/haproxy.cfg).
missing=""
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
# medstream needs Python 3.11 or newer (pyproject's requires-python); say so before installing.
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "medstream needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 (Ubuntu 22.04: apt install python3.11-venv)." >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
# The nemo extra (about 1 GB) is for the NeMo cache-aware streaming backend and its tests; the
# ray extra for transcribe --ray and its tests.
.venv/bin/python -m pip install -q -e ".[dev,nemo,ray]"
echo "medstream is installed in .venv (run: .venv/bin/medstream --help)"
