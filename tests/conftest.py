"""Shared fixtures: every test runs with its own results folder and cache; one demo run per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "all"]


def snakemake(workdir: Path, *targets: str, env: dict[str, str] | None = None) -> str:
    """Run Snakemake on the repository's workflow in ``workdir`` (with extra ``env``); its log."""
    done = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *targets], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the repository's demo suite, shared by every test that reads its outputs."""
    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir, "suites/demo", env={"HARNESS_CACHE": str(workdir / "cache")})
    return workdir


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory: ``results/`` and ``suites/`` resolve under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def write_suite(workdir: Path, name: str, text: str) -> Path:
    """Suite ``name`` written to ``workdir/suites/``, where `load_suite` and Snakemake look."""
    path = workdir / "suites" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path
