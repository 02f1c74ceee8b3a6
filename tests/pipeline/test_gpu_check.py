"""bin/gpu-check: its smoke mode runs every part on CPU and writes every number the GPU run reports,
a failing part is recorded without losing the others, and bad options fail in one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "gpu-check"
RECIPES = {"mnrl", "colbert-xm", "mtd", "nllb-e5", "add-language"}


def load_script():
    loader = SourceFileLoader("gpu_check", str(SCRIPT))
    module = module_from_spec(spec_from_loader("gpu_check", loader))
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu-check")
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out / "check.json")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "check.json").read_text(encoding="utf-8")), done.stdout


def test_smoke_reports_every_part(smoke: tuple[dict, str]) -> None:
    report, printed = smoke
    assert report["facts"]["device"] == "cpu" and report["config"]["smoke"] is True
    assert {report[part]["status"] for part in ("peak", "encode", "dense_search", "plaid", "training")} == {"ok"}
    assert report["peak"]["tflops"] > 0
    for row in report["encode"]["models"].values():
        assert row["tokens"] > row["documents"] > 0 and 0 < row["non_embedding_parameters"] < row["parameters"]
        for mode in ("bucketed", "unbucketed"):
            assert row[mode]["tokens_per_s"] > 0 and 0 < row[mode]["fraction_of_floor"] < 1
    dense = report["dense_search"]
    assert dense["harness_faiss"]["qps"] > 0 and dense["torch_float32"]["top10_overlap_with_faiss"] > 0.99
    plaid = report["plaid"]
    for k in (10, 100):
        searched = plaid["harness"][f"k{k}"]
        assert searched["qps"] > 0 and 0 < searched["top10_overlap_with_exact"] <= 1
        assert searched["own_doc_at_1"] >= 0.8  # each query is noisy tokens of one document
    try:
        import fast_plaid  # noqa: F401
    except ImportError:
        assert "not importable" in plaid["fast_plaid"]["skipped"]
    else:
        assert 0 <= plaid["fast_plaid"]["k10"]["top10_overlap_with_harness"] <= 1
    recipes = report["training"]["recipes"]
    assert set(recipes) == RECIPES
    for row in recipes.values():
        assert row["steps"] == report["config"]["train_steps"] == 2 and row["finite"]
        assert all(math.isfinite(x) for x in row["losses"]) and row["fit_seconds_per_step"] > 0
        assert row["steady_step_seconds"] > 0  # timed between the optimiser steps after the first
    assert "GPU check on CPU" in printed and "train add-language" in printed


def test_a_failing_part_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script()

    def broken(*args):
        raise RuntimeError("planted")

    monkeypatch.setattr(script, "peak", broken)
    report = script.run(dict(script.SMOKE), "cpu", tmp_path, ("peak", "dense_search"))
    assert report["peak"]["status"] == "error" and "planted" in report["peak"]["error"]
    assert report["dense_search"]["status"] == "ok" and report["plaid"]["status"] == "skipped"
    assert "peak: error RuntimeError: planted" in script.summary(report)


def test_unknown_part_is_a_one_line_error() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--parts", "peak,bogus"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 2 and "unknown part 'bogus'" in done.stderr.strip().splitlines()[-1]


def test_unknown_size_is_a_one_line_error() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--set", "dense_m=5"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 2 and "unknown size 'dense_m'" in done.stderr.strip().splitlines()[-1]
