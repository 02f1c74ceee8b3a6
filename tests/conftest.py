"""The test environment, set once here: no hub access, one torch/faiss thread (tiny models are
fastest and reproducible on one thread on a shared 2-core machine; ``HARNESS_TEST_THREADS``
overrides), each test with its own results folder and cache, one demo run per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import DEMO_THREADS, other_capability, snakemake

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers or sentence-transformers read it: no hub here
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # datasets reads what the tests stage in the hub cache, nothing more
THREADS = int(os.environ.get("HARNESS_TEST_THREADS", "1"))


@pytest.fixture(scope="session", autouse=True)
def threads() -> int:
    """torch and faiss threads for the whole session (`THREADS`); tests that compare thread counts set their own."""
    import faiss
    import torch

    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    return THREADS


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one run of the repository's demo suite that tests read, made on purpose unlike the
    committed baseline's (native kernels, one thread per job) and unlike CI's own demo run: torch
    on other CPU kernels (`other_capability`) and `DEMO_THREADS` threads per job. So every test of
    the regression gate also checks that it holds across CPUs. Each job's heavy imports are logged
    to ``imports.jsonl`` (`tests/import_trace`)."""
    workdir = tmp_path_factory.mktemp("demo")
    threads = [f"{rule}={DEMO_THREADS}" for rule in ("train", "index", "retrieve", "evaluate", "cost")]
    trace = [str(Path(__file__).parent / "import_trace"), *filter(None, [os.environ.get("PYTHONPATH")])]
    snakemake(workdir, "--set-threads", *threads, "--", "suites/demo",
              env={"HARNESS_CACHE": str(workdir / "cache"), "ATEN_CPU_CAPABILITY": other_capability(),
                   "PYTHONPATH": os.pathsep.join(trace), "HARNESS_IMPORT_TRACE": str(workdir / "imports.jsonl")})
    return workdir


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory: ``results/`` and ``suites/`` resolve under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path
