"""What several test modules use: the repository, running its workflow, writing suites, torch's CPU kernels,
the reference implementations under .ref/, synthetic token vectors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "all"]
DEMO_THREADS = 2
"""Threads per job of the tests' demo run (Snakemake's default, and CI's own demo run, is one)."""


def snakemake(workdir: Path, *targets: str, env: dict[str, str] | None = None) -> str:
    """Run Snakemake on the repository's workflow in ``workdir`` (with extra ``env``); its log."""
    done = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *targets], capture_output=True, text=True,
                          check=False, timeout=1200, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def write_suite(workdir: Path, name: str, text: str) -> Path:
    """Suite ``name`` written to ``workdir/suites/``, where `load_suite` and Snakemake look."""
    path = workdir / "suites" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def other_capability() -> str:
    """A torch CPU capability other than this machine's: AVX2 on an AVX-512 CPU, else no SIMD."""
    import torch

    return "avx2" if torch.backends.cpu.get_cpu_capability() == "AVX512" else "default"


REF = REPO / ".ref"
"""Where setup.sh installs the reference implementations (one folder each, apart from .venv)."""
REFERENCES = {"colbert-ai": ("colbert-ai", "hf4"), "plaid-x": ("plaid-x", "hf4")}
"""Each reference's folders under `REF`, first on its path: the package, then transformers 4 and the
few modules it imports that .venv lacks."""
REFERENCE_SCRIPT = REPO / "tests" / "systems" / "reference_colbert.py"


def reference_path(package: str) -> list[Path]:
    """``package``'s folders under `REF`; fails the test (never skips) when setup.sh has not installed them."""
    import pytest

    folders = [REF / name for name in REFERENCES[package]]
    missing = [str(f) for f in folders if not (f / ".installed").is_file()]
    if missing:
        where = "CI ran setup.sh, which should have" if os.environ.get("CI") else "run `bash setup.sh`: it"
        pytest.fail(f"the reference tests need {package} in {', '.join(missing)}; {where} installed it there",
                    pytrace=False)
    return folders


def run_reference(job: dict, workdir: Path, timeout: int = 900) -> dict:
    """Run `REFERENCE_SCRIPT` on ``job`` under its package's reference folders (transformers 4 ahead
    of .venv's); the arrays it wrote."""
    import json

    import numpy as np

    folders = reference_path(job["package"])
    (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, folders)), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TORCH_EXTENSIONS_DIR": str(REF / "torch_extensions"),
           "PATH": os.pathsep.join([str(REF / "hf4" / "bin"), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, str(REFERENCE_SCRIPT), str(workdir / "job.json"), str(workdir / "out.npz")],
                          capture_output=True, text=True, check=False, timeout=timeout, env=env)
    assert done.returncode == 0, f"{job['package']} {job['task']} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    with np.load(workdir / "out.npz") as arrays:
        return dict(arrays)


# -- synthetic ColBERT-like token vectors (PLAID tests) ----------------------------------------------


def clustered_corpus(n_docs: int, dim: int, seed: int, lengths: tuple[int, int] = (8, 40), topics: int = 256,
                     spread: float = 0.75, block: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Float16 unit token vectors [tokens, dim] and doclens (lengths drawn in ``[lo, hi]``)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    doclens = rng.integers(lengths[0], lengths[1] + 1, n_docs)
    doc_topics = rng.integers(0, topics, (n_docs, 4))
    parts = []
    for start in range(0, n_docs, block):
        lens = doclens[start : start + block]
        owner = np.repeat(np.arange(start, start + len(lens)), lens)
        vectors = centres[doc_topics[owner, rng.integers(0, 4, len(owner))]]
        vectors += spread / math.sqrt(dim) * rng.standard_normal(vectors.shape, dtype=np.float32)
        parts.append((vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16))
    return np.concatenate(parts), doclens


def clustered_queries(embeddings: np.ndarray, doclens: np.ndarray, n: int, length: int, seed: int,
                      noise: float = 0.5) -> list[np.ndarray]:
    """``n`` queries of ``length`` unit vectors: noisy copies of random tokens of random documents."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum(doclens) - doclens
    queries = []
    for doc in rng.integers(0, len(doclens), n):
        rows = starts[doc] + rng.integers(0, doclens[doc], length)
        q = embeddings[rows].astype(np.float32)
        q += noise / math.sqrt(q.shape[1]) * rng.standard_normal(q.shape, dtype=np.float32)
        queries.append(q / np.linalg.norm(q, axis=1, keepdims=True))
    return queries


def overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return len(set(a[:k].tolist()) & set(b[:k].tolist())) / k
