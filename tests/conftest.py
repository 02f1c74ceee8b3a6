"""Shared fixtures: every test runs with its own results folder and cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
