"""The train step and the single-vector recipe: training data, DPR-XM's MNRL with frozen
embeddings and adapters, checkpoints that load back, and trained systems inside a suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import layout, registry, steps
from harness.data import load_dataset
from harness.data.base import DataError
from harness.evaluate import evaluate, means
from harness.runs import make_run, write_trec
from harness.spec import SuiteError, load_suite
from harness.system import build_system
from harness.training import TrainingData
from harness.training.loop import parameter_groups
from systems.common.tiny import xlmr_tokenizer
from systems.dense.train import frozen_groups
from tests.helpers import write_suite

SYNTHETIC = "synthetic:{lang}?docs=2000&queries=30&train=150&seed=0"


@pytest.fixture(scope="module")
def collections() -> dict:
    return {lang: load_dataset(SYNTHETIC.format(lang=lang)) for lang in ("en", "de")}


@pytest.fixture(scope="module")
def data(collections: dict) -> TrainingData:
    return TrainingData({lang: ds.training() for lang, ds in collections.items()})


# -- training data -------------------------------------------------------------------------------


def test_examples_pair_each_query_with_a_top_positive_and_non_relevant_negatives(data: TrainingData) -> None:
    examples = data.examples("en", negatives=3, seed=1)
    qrels = data.splits["en"].qrels()
    assert [e.query.query_id for e in examples] == [q.query_id for q in data.queries("en")]  # one per query
    for e in examples:
        judged = qrels[e.query.query_id]
        assert judged[e.positive.doc_id] == max(judged.values())
        assert len(e.negatives) == 3 and all(judged.get(d.doc_id, 0) == 0 for d in e.negatives)
        assert e.scores == (float(max(judged.values())), 0.0, 0.0, 0.0)
    assert examples == data.examples("en", negatives=3, seed=1)
    assert examples != data.examples("en", negatives=3, seed=2)


def test_a_teacher_run_gives_hard_negatives_and_its_scores(data: TrainingData, tmp_path: Path) -> None:
    qrels = data.splits["de"].qrels()
    ids = sorted(data.docs("de"))
    run = {}
    for qid, judged in qrels.items():
        wrong = [d for d in ids if d not in judged][:5]
        run[qid] = {**{d: 10.0 - i for i, d in enumerate(wrong)}, **{d: 20.0 for d in judged}}
    write_trec(make_run(run), tmp_path / "teacher.trec", tag="teacher")
    taught = TrainingData(data.splits, tmp_path / "teacher.trec")
    for e in taught.examples("de", negatives=2):
        expected = [d for d in ids if d not in qrels[e.query.query_id]][:2]
        assert [d.doc_id for d in e.negatives] == expected
        assert e.scores[0] == pytest.approx(20.0, abs=1e-4) and e.scores[1:] == (10.0, 9.0)  # tied positives are stepped
        assert e.docs[0].language == "de"


def test_batches_cover_every_example_each_epoch(data: TrainingData) -> None:
    examples = data.examples("en", negatives=0)
    n = len(examples)
    batches = list(data.batches(examples, 5, steps=2 * (n // 5)))
    first_epoch = [e.query.query_id for batch in batches[: n // 5] for e in batch]
    assert len(set(first_epoch)) == len(first_epoch) == (n // 5) * 5
    with pytest.raises(DataError, match="exceeds"):
        next(data.batches(examples, n + 1, steps=1))
    with pytest.raises(DataError, match="no training split"):
        data.docs("fr")


# -- DPR-XM: MNRL with embeddings and adapters frozen --------------------------------------------


@pytest.fixture(scope="module")
def dpr_xm(data: TrainingData, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny random DPR-XM (XMOD, adapters en_XX and de_DE) trained on English, as the paper."""
    root = tmp_path_factory.mktemp("dpr-xm")
    start = build_system("dpr-xm", {"device": "cpu"}).tiny(data, root / "init")
    settings = start.TrainParams(steps=100, batch_size=32, lr=5e-4, warmup=0.1)
    info = start.train(data, settings, root / "trained")
    return {"start": start, "settings": settings, "info": info, "trained": start.with_checkpoint(root / "trained", "t"),
            "root": root}


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    files = sorted(folder.rglob("*.safetensors"))
    assert files, f"no weights under {folder}"
    return {k: v for f in files for k, v in load_file(f).items()}


def test_tiny_dpr_xm_has_the_real_layout(dpr_xm: dict) -> None:
    folder = Path(dpr_xm["start"].params.model)
    assert (folder / "modules.json").is_file() and (folder / "config_sentence_transformers.json").is_file()
    backbone = dpr_xm["start"].encoder[0].auto_model
    assert type(backbone).__name__ == "XmodModel"
    assert sorted(backbone.config.languages) == ["de_DE", "en_XX"]


def test_dpr_xm_recipe_trains_only_the_shared_weights(dpr_xm: dict) -> None:
    before, after = _weights(Path(dpr_xm["start"].params.model)), _weights(dpr_xm["root"] / "trained")
    assert before.keys() == after.keys()
    groups = parameter_groups(dpr_xm["start"].encoder)
    frozen = {n for g in frozen_groups(dpr_xm["settings"]) for n in groups[g]}
    assert any("adapter_modules" in n for n in frozen) and any("embeddings" in n for n in frozen)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed, "training changed nothing"
    assert not any("embeddings" in k or "adapter_modules" in k for k in changed), sorted(changed)[:5]
    assert any("attention" in k for k in changed)
    info = dpr_xm["info"]
    assert info["languages"] == ["en"] and len(info["losses"]) == 100
    assert info["trainable_parameters"] > 0 and info["frozen_parameters"] > 0


def test_dpr_xm_loss_falls(dpr_xm: dict) -> None:
    losses = dpr_xm["info"]["losses"]
    print(f"DPR-XM MNRL loss: first 5 {np.mean(losses[:5]):.3f}, last 5 {np.mean(losses[-5:]):.3f}")
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5


def test_trained_checkpoint_loads_back_and_retrieves_better(dpr_xm: dict, collections: dict, tmp_path: Path) -> None:
    english = collections["en"]
    scores = {}
    for name in ("start", "trained"):
        system = dpr_xm[name]
        system.index(english, tmp_path / name)
        run = system.retrieve(english.queries(), tmp_path / name, 100)
        scores[name] = means(evaluate(run, english.qrels(), ["nDCG@10"]))["nDCG@10"]
    print(f"DPR-XM tiny on synthetic en nDCG@10: untrained {scores['start']:.4f}, trained {scores['trained']:.4f}")
    # held-out topics: the training queries' topics are disjoint from the test queries'
    assert scores["trained"] > scores["start"] + 0.05
    # the saved checkpoint is what the trained system loads: same vectors as sentence-transformers' own
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(dpr_xm["root"] / "trained"), device="cpu")
    model[0].auto_model.set_default_language("en_XX")
    texts = [d.text for d in list(english.docs())[:4]]
    ours = dpr_xm["trained"].encode(texts, "document", languages=["en"] * 4)
    assert np.allclose(ours, model.encode_document(texts, convert_to_numpy=True), atol=1e-5)


def test_trained_identity_names_the_training_record_not_the_path(dpr_xm: dict, collections: dict) -> None:
    a = dpr_xm["start"].with_checkpoint(dpr_xm["root"] / "trained", "train:abc")
    assert a.identity()["params"]["model"] == "train:abc"
    assert a.index_identity(collections["en"])["model"] == "train:abc"
    assert a.identity() != dpr_xm["start"].with_checkpoint(dpr_xm["root"] / "trained", "train:def").identity()


def test_tiny_tokenizer_is_the_same_every_time() -> None:
    corpus = ["der Eiffelturm steht in Paris", "Эйфелева башня в Париже", "埃菲尔铁塔在巴黎"] * 2
    a, b = xlmr_tokenizer(corpus, 40), xlmr_tokenizer(list(corpus), 40)
    assert a.get_vocab() == b.get_vocab()
    assert a("башня Paris")["input_ids"] == b("башня Paris")["input_ids"]


# -- the train step inside a suite ---------------------------------------------------------------

SUITE = """\
name: trained
depth: 20
measures: [nDCG@10]
datasets:
  - name: syn
    id: "synthetic:{lang}?docs=500&queries=20&train=30&seed=0"
    languages: [en]
systems:
  dpr:
    system: dpr-xm
    params: {device: cpu}
    train:
      data: "synthetic:{lang}?docs=500&queries=20&train=30&seed=0"
      languages: [en, de]
      init: tiny
      params: {steps: 3, batch_size: 8, lr: 1.0e-3}
  bm25:
    system: bm25
"""


@pytest.fixture
def suite(workdir: Path):
    write_suite(workdir, "trained", SUITE)
    return load_suite("trained")


def test_train_step_records_the_checkpoint_and_the_index_uses_it(suite, workdir: Path) -> None:
    record = steps.train(suite, "dpr")
    pointer = json.loads(layout.path("train", "trained", "dpr").read_text())
    assert pointer["record"] == record.id
    assert (record.output("checkpoint") / "modules.json").is_file()
    assert record.data["identity"]["init"] == "tiny" and set(record.data["identity"]["data"]) == {"en", "de"}
    assert len(record.data["info"]["losses"]) == 3
    assert steps.train(suite, "dpr").id == record.id  # cached: the registry has it
    unit = suite.units()[0]
    index = steps.index(suite, "dpr", unit)
    assert index.data["identity"]["params"]["model"] == f"train:{record.id}"
    run = steps.retrieve(suite, "dpr", unit)
    assert run.data["queries"] == 20


def test_train_step_errors(suite, workdir: Path) -> None:
    with pytest.raises(SuiteError, match="no train section"):
        steps.train(suite, "bm25")
    with pytest.raises(FileNotFoundError, match="train"):
        steps.index(suite, "dpr", suite.units()[0])  # not trained yet: no pointer
    # what the train step would reject stops the suite from loading, before any job runs
    untrainable = SUITE + '    train: {data: "synthetic:en?docs=500&queries=20&train=30", languages: [en]}\n'
    bad = SUITE.replace("lr: 1.0e-3", "lr: 1.0e-3, learning_rate: 2")
    for text, message in [(untrainable, "system 'bm25': system 'bm25' has no training recipe"),
                          (bad, "system 'dpr': bad train params for system 'dpr-xm': unknown param 'learning_rate'"),
                          (SUITE.replace("languages: [en, de]", "languages: []"), "languages")]:
        write_suite(workdir, "trained", text)
        with pytest.raises(SuiteError, match=message):
            load_suite("trained")
    assert not any(r.step == "train" for r in registry.records())
