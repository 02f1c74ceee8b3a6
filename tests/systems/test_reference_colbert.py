"""The harness against the reference implementations, installed by setup.sh under .ref/ and run in
their own process (tests/systems/reference_colbert.py): ColBERT-XM against colbert-ai 0.2.20 and
MTD ColBERT-X against PLAID-X 0.3.3 on tiny checkpoints — input ids, attention masks, kept document
tokens and token vectors — and the harness's PLAID against colbert-ai's indexer and CPU search on
the same token vectors (agreement with exact MaxSim, bytes per vector)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import load_dataset
from harness.system import build_system
from harness.training import TrainingData
from systems.colbert.model import ColbertModel
from systems.colbert.plaid import PlaidIndex, build_index, write_shard
from tests import helpers
from tests.helpers import clustered_corpus, clustered_queries, overlap, run_reference

SYNTHETIC = "synthetic:{lang}?docs=96&queries=6&train=6&seed=0"
LANGS = ("en", "de", "ru")
EXTRA_DOCS = [
    "Punctuation, everywhere: (brackets) [square] {curly}; quotes \"double\" 'single' - dashes... and/or #tags!",
    "A trailing full stop. Two more? Yes! 100% & $5 @home ~tilde ^caret |pipe| <angle> `tick` _under_ *star*",
    " ".join(["a very long document that the model truncates"] * 60),
]
"""Texts that exercise the skiplist (every ``string.punctuation`` symbol) and truncation at doc_maxlen."""
VECTOR_TOLERANCE = 1e-6
"""Largest |Δ| allowed between harness and reference token vectors on the tiny checkpoints as built
(attention head size 32, the harness's default attention). transformers 4.57's XMOD has only eager
attention, which divides the scores by √d; transformers 5 runs XMOD through SDPA by default, and its
eager attention multiplies by d^-0.5. Each rounds differently (measured: at most 2.4e-7 for
ColBERT-XM; 0 for XLM-R, SDPA in both versions). With head size 64 (XMOD-base's and XLM-R-large's:
the scale 1/8 is exact) and the reference's attention kernel, the vectors must be equal bit for bit."""

INDEX_DOCS, INDEX_DIM, INDEX_QUERIES, QUERY_TOKENS, INDEX_NBITS = 1000, 64, 50, 16, 2
OVERLAP_MARGIN = 0.02
"""The harness's PLAID may agree with exact MaxSim this much less than colbert-ai's, at most."""


@pytest.fixture(scope="module")
def collections() -> dict[str, list]:
    """Per language: (queries, documents) texts of a small synthetic collection plus `EXTRA_DOCS`."""
    out = {}
    for lang in LANGS:
        data = load_dataset(SYNTHETIC.format(lang=lang))
        out[lang] = ([q.text for q in data.queries()], [d.contents for d in data.docs()] + EXTRA_DOCS)
    return out


@pytest.fixture(scope="module")
def training() -> TrainingData:
    return TrainingData({lang: load_dataset(SYNTHETIC.format(lang=lang)).training() for lang in LANGS})


def tiny(system: str, training: TrainingData, folder: Path) -> Path:
    """A tiny checkpoint of ``system`` in its released layout (`System.tiny`)."""
    build_system(system, {"device": "cpu"}).tiny(training, folder)
    return folder


def harness_encoding(model: ColbertModel, queries: list[str], docs: list[str], lang: str | None) -> dict:
    """The harness's inputs, kept tokens and vectors for one group, under the reference's names."""
    q, d = model.query_inputs(queries), model.doc_inputs(docs)
    q_lang = model.lang_ids([lang] * len(queries), len(queries)) if lang else None
    d_lang = model.lang_ids([lang] * len(docs), len(docs)) if lang else None
    with torch.no_grad():
        Q, _ = model.query(q["input_ids"], q["attention_mask"], q_lang)
        D, keep = model.doc(d["input_ids"], d["attention_mask"], d_lang)
    return {"q_ids": q["input_ids"], "q_mask": q["attention_mask"], "Q": Q, "d_ids": d["input_ids"],
            "d_mask": d["attention_mask"], "D": D, "d_keep": keep}


def head_size_64(folder: Path, out: Path) -> Path:
    """A copy of tiny checkpoint ``folder`` with half the attention heads: the same weights, head size 64."""
    shutil.copytree(folder, out)
    config = json.loads((out / "config.json").read_text())
    config["num_attention_heads"] = config["hidden_size"] // 64
    (out / "config.json").write_text(json.dumps(config))
    return out


def compare(system: str, package: str, attention: str, training, tmp_path: Path, groups: list[tuple]) -> None:
    """Encode every group with the harness and with ``package``, on the tiny checkpoint as built and
    with head size 64 (there with the reference's ``attention`` kernel); ids, masks and kept tokens
    must be equal, vectors within `VECTOR_TOLERANCE` as built and equal with head size 64."""
    built = tiny(system, training, tmp_path / "ckpt")
    folders = [built, head_size_64(built, tmp_path / "ckpt-64")]
    job = {"package": package, "task": "encode", "checkpoints": list(map(str, folders)),
           "groups": [{"adapter": adapter, "queries": queries, "docs": docs} for adapter, _, queries, docs in groups]}
    reference = run_reference(job, tmp_path)
    worst = []
    for c, folder in enumerate(folders):
        model = ColbertModel.load(folder)
        if c:
            model.backbone.set_attn_implementation(attention)
        worst.append(0.0)
        for i, (_, lang, queries, docs) in enumerate(groups):
            ours = harness_encoding(model, queries, docs, lang)
            for key in ("q_ids", "q_mask", "d_ids", "d_mask", "d_keep"):
                assert np.array_equal(ours[key].numpy(), reference[f"{c}.{i}.{key}"]), f"{folder} group {i}: {key}"
            assert ours["d_keep"].sum() < (ours["d_ids"] != model.pad_id).sum(), "no punctuation was skipped"
            assert ours["d_ids"].shape[1] == model.settings.doc_maxlen, "the long document was not truncated"
            for key in ("Q", "D"):
                worst[c] = max(worst[c], float(np.abs(ours[key].numpy() - reference[f"{c}.{i}.{key}"]).max()))
    print(f"\n{system} vs {package}: ids, masks and kept tokens equal; largest |Δ| of token vectors "
          f"{worst[0]:.3g} (head size 32), {worst[1]:.3g} (head size 64, {attention} attention)")
    assert worst[0] <= VECTOR_TOLERANCE and worst[1] == 0


def test_colbert_xm_encodes_as_colbert_ai(training, collections, tmp_path) -> None:
    """Each language through its own adapter (colbert-ai: ``set_default_language``)."""
    from harness.languages import xmod_code

    groups = [(xmod_code(lang), lang, *collections[lang]) for lang in LANGS]
    compare("colbert-xm", "colbert-ai", "eager", training, tmp_path, groups)


def test_mtd_encodes_as_plaid_x(training, collections, tmp_path) -> None:
    """One group mixing the languages (XLM-R has no adapters)."""
    queries = [q for lang in LANGS for q in collections[lang][0]]
    docs = [d for lang in LANGS for d in collections[lang][1][:-len(EXTRA_DOCS)]] + EXTRA_DOCS
    compare("mtd-colbertx", "plaid-x", "sdpa", training, tmp_path, [(None, None, queries, docs)])


def test_plaid_against_colbert_ai_index(tmp_path) -> None:
    """The same token vectors indexed by colbert-ai (its defaults: centroid count, k-means, k=10
    search settings) and by the harness (its defaults): top-10 agreement with exact MaxSim at least
    colbert-ai's less `OVERLAP_MARGIN`, and no more bytes per vector (payload, and the whole index)."""
    embeddings, doclens = clustered_corpus(INDEX_DOCS, INDEX_DIM, seed=5)
    queries = clustered_queries(embeddings, doclens, INDEX_QUERIES, QUERY_TOKENS, seed=6)
    np.savez(tmp_path / "vectors.npz", embeddings=embeddings, doclens=doclens, queries=np.stack(queries))
    reference = run_reference({"package": "colbert-ai", "task": "index", "vectors": str(tmp_path / "vectors.npz"),
                               "root": str(tmp_path / "colbert-ai"), "nbits": INDEX_NBITS, "k": 10}, tmp_path)
    shards = [write_shard(tmp_path / "shard", embeddings, doclens)]
    facts = build_index(shards, tmp_path / "plaid", INDEX_NBITS, device="cpu")
    index = PlaidIndex.open(tmp_path / "plaid", device="cpu")
    exact = index.exhaustive(queries, 10, shards)
    ours = np.mean([overlap(p, e, 10) for (p, _), (e, _) in zip(index.search(queries, 10), exact)])
    theirs = np.mean([overlap(t, e, 10) for t, (e, _) in zip(reference["top"], exact)])
    print(f"\ntop-10 agreement with exact MaxSim: harness {ours:.3f}, colbert-ai {theirs:.3f}; payload bytes per "
          f"vector: harness {facts['bytes_per_vector']:.2f}, colbert-ai {float(reference['payload_bytes_per_vector']):.2f}"
          f" (whole index: {facts['index_bytes'] / len(embeddings):.2f}, "
          f"{float(reference['index_bytes_per_vector']):.2f}; centroids: {facts['centroids']}, {int(reference['centroids'])})")
    assert theirs >= 0.5, "colbert-ai's search is not working on these vectors"
    assert ours >= theirs - OVERLAP_MARGIN
    assert facts["bytes_per_vector"] <= float(reference["payload_bytes_per_vector"])
    assert facts["index_bytes"] / len(embeddings) <= float(reference["index_bytes_per_vector"])  # centroids too
    assert math.isclose(facts["bytes_per_vector"], facts["bytes_per_vector_formula"], rel_tol=0.01)


@pytest.mark.parametrize("ci", ["true", None])
def test_missing_reference_fails_and_says_to_run_setup(ci, tmp_path, monkeypatch) -> None:
    """Without .ref/ the reference tests fail (in CI and out of it), never skip, naming setup.sh."""
    monkeypatch.setattr(helpers, "REF", tmp_path / ".ref")
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="setup.sh") as failed:
        helpers.reference_path("plaid-x")
    assert str(tmp_path / ".ref" / "plaid-x") in str(failed.value)
    assert ("CI ran setup.sh" in str(failed.value)) == bool(ci)

