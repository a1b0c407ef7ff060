#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: graphviz's `dot` (and python3-venv where the venv
# module lacks pip), then a virtual environment in .venv with the project and all its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "error: tinygrad_lite needs Python >= 3.10; python3 is $(python3 --version 2>&1)" >&2
    exit 2
fi
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[ -x .venv/bin/python ] || python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e ".[dev,torch,plot,hf,notebooks]"
