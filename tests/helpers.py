"""What several test modules use: the repository, running its workflow, writing suites, torch's CPU kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
