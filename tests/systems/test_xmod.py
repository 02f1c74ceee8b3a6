"""Post-hoc language addition (systems/common/xmod.py, xmod_adapters.py) on tiny random XMOD checkpoints with en_XX and de_DE
adapters: Russian gets a new adapter learned by MLM with everything else frozen, then is routed to it."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.languages import UnsupportedLanguage
from harness.system import build_system
from systems.common.tiny import sentence_transformer
from systems.common.xmod import add_language_to_checkpoint
from systems.common.xmod_adapters import AddLanguageParams, add_language, find_xmod

ENGLISH = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Mozart composed symphonies and operas.",
    "The river flows through the old town.",
    "Children play in the park after school.",
    "The library opens at nine in the morning.",
    "Rain is expected over the mountains tomorrow.",
]
GERMAN = [
    "Der Eiffelturm ist ein Gitterturm aus Schmiedeeisen in Paris.",
    "Mozart komponierte Sinfonien und Opern.",
    "Der Fluss fließt durch die Altstadt.",
    "Kinder spielen nach der Schule im Park.",
    "Die Bibliothek öffnet um neun Uhr morgens.",
    "Morgen wird Regen über den Bergen erwartet.",
]
RUSSIAN = [
    "Эйфелева башня — металлическая башня в Париже.",
    "Моцарт сочинял симфонии и оперы.",
    "Река течёт через старый город.",
    "Дети играют в парке после школы.",
    "Библиотека открывается в девять утра.",
    "Завтра в горах ожидается дождь.",
    "Москва — столица России.",
    "Мы пьём чай с лимоном каждый вечер.",
    "Кошка спит на тёплом окне.",
    "Поезд прибывает на вокзал в полдень.",
    "Студенты готовятся к экзамену в библиотеке.",
    "Зимой в лесу очень тихо.",
    "Бабушка печёт пироги с яблоками.",
    "Учитель объясняет новую тему.",
    "На рынке продают свежие овощи.",
    "Летом мы ездим на море.",
    "Мой брат работает врачом в больнице.",
    "Собака бежит за мячом.",
    "В музее открылась новая выставка.",
    "Солнце садится за горизонт.",
    "Она читает интересную книгу.",
    "Старый мост соединяет два берега реки.",
    "Мама готовит обед на кухне.",
    "Город украшают к празднику.",
    "Футбольный матч начнётся в семь часов.",
    "Птицы улетают на юг осенью.",
    "В саду растут красные розы.",
    "Мы смотрим фильм в кинотеатре.",
    "Дедушка рассказывает сказку внукам.",
    "Весной на улицах много цветов.",
    "Самолёт летит над облаками.",
    "Друзья встречаются в кафе.",
    "Снег покрыл крыши домов.",
    "Художник рисует портрет девушки.",
    "Магазин закрывается в десять вечера.",
    "Озеро замёрзло в январе.",
]
PARAMS = {"language": "ru", "steps": 60, "batch_size": 36, "lr": 2e-2, "warmup_ratio": 0.1, "max_length": 64, "seed": 0,
          "device": "cpu"}
NEW_KEYS = {f"encoder.layer.{i}.output.adapter_modules.ru_RU.{p}" for i in range(2)
            for p in ("dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A random 2-layer XMOD (en_XX, de_DE) saved as XmodForMaskedLM (``mlm``, with its MLM head) and as
    the sentence-transformers folder over its XmodModel (``st``, no head: the DPR-XM layout)."""
    from transformers import XmodConfig, XmodForMaskedLM

    root = tmp_path_factory.mktemp("tiny-xmod")
    st = sentence_transformer(root, ENGLISH + GERMAN + RUSSIAN, XmodForMaskedLM, XmodConfig, "mean",
                              adapter_reduction_factor=2, languages=["en_XX", "de_DE"], default_language="en_XX")
    return SimpleNamespace(root=root, st=st, mlm=root / "hf")


@pytest.fixture(scope="module")
def added_st(tiny: SimpleNamespace) -> SimpleNamespace:
    out = tiny.root / "st-ru"
    facts = add_language_to_checkpoint(tiny.st, out, RUSSIAN, AddLanguageParams(**PARAMS, lm_head=str(tiny.mlm)))
    return SimpleNamespace(out=out, facts=facts)


@pytest.fixture(scope="module")
def added_mlm(tiny: SimpleNamespace) -> SimpleNamespace:
    out = tiny.root / "mlm-ru"
    facts = add_language_to_checkpoint(tiny.mlm, out, RUSSIAN, AddLanguageParams(**PARAMS))
    return SimpleNamespace(out=out, facts=facts)


def st_system(folder: Path):
    return build_system(f"st:{folder}", {"device": "cpu", "pooling": "mean"})


def assert_only_new_tensors(before: Path, after: Path, new_keys: set[str]) -> None:
    """``after``'s weights are ``before``'s, tensor by tensor, plus exactly ``new_keys``."""
    old, new = load_file(before), load_file(after)
    assert set(new) - set(old) == new_keys and set(old) <= set(new)
    for key, value in old.items():
        assert torch.equal(new[key], value), key
    for key in new_keys:
        assert torch.isfinite(new[key]).all()


def assert_same_files_but(before: Path, after: Path, changed: set[str]) -> None:
    """Every file of ``before`` is in ``after`` byte for byte except ``changed`` (relative paths)."""
    names = {p.relative_to(before).as_posix() for p in before.rglob("*") if p.is_file()}
    assert names == {p.relative_to(after).as_posix() for p in after.rglob("*") if p.is_file()}
    for name in names - changed:
        assert (before / name).read_bytes() == (after / name).read_bytes(), name


def assert_config_only_adds(before: Path, after: Path, code: str) -> None:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    assert new.pop("languages") == old.pop("languages") + [code]
    assert new == old


# --- routing through the harness before and after -------------------------------------------------


def test_routing_the_new_language_fails_before(tiny: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match=r"language 'ru' \(XMOD adapter 'ru_RU'\) has no adapter"):
        st_system(tiny.st).encode(RUSSIAN[:2], "document", languages=["ru", "ru"])


def test_routes_the_new_language_to_its_adapter(tiny: SimpleNamespace, added_st: SimpleNamespace) -> None:
    from sentence_transformers import SentenceTransformer

    system = st_system(added_st.out)
    ours = system.encode(RUSSIAN[:4], "document", languages=["ru"] * 4)
    reference = SentenceTransformer(str(added_st.out), device="cpu").eval()
    backbone = reference[0].auto_model
    backbone.set_default_language("ru_RU")
    np.testing.assert_allclose(ours, reference.encode(RUSSIAN[:4], normalize_embeddings=True), atol=1e-5)
    as_english = system.encode(RUSSIAN[:4], "document", languages=["en"] * 4)
    assert np.abs(ours - as_english).max(axis=1).min() > 1e-3
    # the DPR-XM preset over the new folder routes the same way; queries too
    dpr = build_system("dpr-xm", {"model": str(added_st.out), "device": "cpu"})
    np.testing.assert_allclose(dpr.encode(RUSSIAN[:4], "document", languages=["ru"] * 4), ours, atol=1e-6)


def test_other_languages_are_bit_identical(tiny: SimpleNamespace, added_st: SimpleNamespace) -> None:
    texts, languages = ENGLISH + GERMAN + ENGLISH[:2], ["en"] * 6 + ["de"] * 6 + ["de"] * 2
    before = st_system(tiny.st).encode(texts, "document", languages=languages)
    after = st_system(added_st.out).encode(texts, "document", languages=languages)
    assert np.array_equal(before, after)


def test_new_adapter_in_config_and_every_layer(added_st: SimpleNamespace) -> None:
    from sentence_transformers import SentenceTransformer

    backbone = find_xmod(SentenceTransformer(str(added_st.out), device="cpu"))
    assert list(backbone.config.languages) == ["en_XX", "de_DE", "ru_RU"]
    assert backbone.config.default_language == "en_XX"
    for layer in backbone.encoder.layer:
        assert list(layer.output.adapter_modules) == ["en_XX", "de_DE", "ru_RU"]


# --- what changed on disk ---------------------------------------------------------------------------


def test_st_folder_differs_only_by_the_new_adapter(tiny: SimpleNamespace, added_st: SimpleNamespace) -> None:
    assert_only_new_tensors(tiny.st / "model.safetensors", added_st.out / "model.safetensors", NEW_KEYS)
    assert_same_files_but(tiny.st, added_st.out, {"model.safetensors", "config.json"})
    assert_config_only_adds(tiny.st / "config.json", added_st.out / "config.json", "ru_RU")
    facts = added_st.facts
    assert facts["layout"] == "sentence-transformers" and facts["backbone_prefix"] == ""
    assert facts["lm_head"] == str(tiny.mlm) and set(facts["added_tensors"]) == NEW_KEYS


def test_mlm_loss_falls_and_only_adapters_train(added_st: SimpleNamespace) -> None:
    facts = added_st.facts
    losses = facts["losses"]
    assert len(losses) == PARAMS["steps"] and all(isinstance(x, float) and np.isfinite(x) for x in losses)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < first - 0.25, (first, last)  # seen: 5.66 → 5.21; the noise of a 10-step mean is ~0.1
    per_layer = 32 * 16 + 16 + 16 * 32 + 32  # dense1 (32→16) and dense2 (16→32) with biases
    assert facts["adapter_parameters_per_layer"] == per_layer
    assert facts["trainable_parameters"] == 2 * per_layer and facts["layers"] == 2
    assert facts["frozen_parameters"] > 10 * facts["trainable_parameters"]
    assert facts["verified_unchanged_tensors"] > 50
    assert (facts["adapter"], facts["adapter_index"], facts["languages"]) == ("ru_RU", 2, ["en_XX", "de_DE", "ru_RU"])
    assert facts["sequences"] == len(RUSSIAN) and facts["masked_tokens"] > 0 and facts["precision"] == "fp32"
    assert facts["init_from"].startswith("fresh")


def test_xmod_for_masked_lm_folder_uses_its_own_head(tiny: SimpleNamespace, added_mlm: SimpleNamespace) -> None:
    from transformers import XmodForMaskedLM

    assert added_mlm.facts["lm_head"] == "checkpoint" and added_mlm.facts["backbone_prefix"] == "roberta."
    assert_only_new_tensors(tiny.mlm / "model.safetensors", added_mlm.out / "model.safetensors",
                            {f"roberta.{key}" for key in NEW_KEYS})
    assert_same_files_but(tiny.mlm, added_mlm.out, {"model.safetensors", "config.json"})
    assert_config_only_adds(tiny.mlm / "config.json", added_mlm.out / "config.json", "ru_RU")
    model = XmodForMaskedLM.from_pretrained(added_mlm.out)
    assert list(model.config.languages) == ["en_XX", "de_DE", "ru_RU"]
    saved = load_file(added_mlm.out / "model.safetensors")
    for key in NEW_KEYS:
        assert torch.equal(model.state_dict()[f"roberta.{key}"], saved[f"roberta.{key}"])
    losses = added_mlm.facts["losses"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.25


def test_colbert_layout_keeps_its_prefix_and_extra_tensors(tiny: SimpleNamespace, tmp_path: Path) -> None:
    """colbert-ai's HF_ColBERT: XMOD config with architectures HF_ColBERT, the backbone under ``roberta.``
    (XMOD's base-model prefix), ``linear.weight`` beside it, ``artifact.metadata`` and the tokenizer."""
    from transformers import XmodModel

    folder = tmp_path / "colbert"
    folder.mkdir()
    tensors = {k: v for k, v in load_file(tiny.mlm / "model.safetensors").items() if k.startswith("roberta.")}
    tensors["linear.weight"] = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tiny.mlm / "config.json").read_text())
    config["architectures"] = ["HF_ColBERT"]
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "artifact.metadata").write_text(json.dumps({"dim": 8, "query_maxlen": 32, "doc_maxlen": 64}))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny.mlm / name, folder / name)
    out = tmp_path / "colbert-ru"
    facts = add_language_to_checkpoint(folder, out, RUSSIAN, AddLanguageParams(**{**PARAMS, "steps": 3},
                                                                                lm_head=str(tiny.mlm)))
    assert facts["backbone_prefix"] == "roberta." and facts["layout"] == "huggingface"
    assert_only_new_tensors(folder / "model.safetensors", out / "model.safetensors",
                            {f"roberta.{key}" for key in NEW_KEYS})
    assert_same_files_but(folder, out, {"model.safetensors", "config.json"})
    assert json.loads((out / "config.json").read_text())["architectures"] == ["HF_ColBERT"]
    backbone = XmodModel.from_pretrained(out)  # the backbone loads as colbert-ai loads it
    assert list(backbone.config.languages) == ["en_XX", "de_DE", "ru_RU"]
    saved = load_file(out / "model.safetensors")
    for key in NEW_KEYS:
        assert torch.equal(backbone.state_dict()[key], saved[f"roberta.{key}"])


def test_sharded_checkpoint_gets_one_new_shard(tiny: SimpleNamespace, tmp_path: Path) -> None:
    from transformers import XmodForMaskedLM

    folder = tmp_path / "sharded"
    XmodForMaskedLM.from_pretrained(tiny.mlm).save_pretrained(folder, max_shard_size="40KB")
    shutil.copy(tiny.mlm / "tokenizer.json", folder)
    shutil.copy(tiny.mlm / "tokenizer_config.json", folder)
    assert (folder / "model.safetensors.index.json").is_file()
    out = tmp_path / "sharded-ru"
    facts = add_language_to_checkpoint(folder, out, RUSSIAN, AddLanguageParams(**{**PARAMS, "steps": 2}))
    assert facts["weights"] == "model.safetensors.index.json"
    assert (out / "model-xmod-ru_RU.safetensors").is_file()
    assert set(load_file(out / "model-xmod-ru_RU.safetensors")) == {f"roberta.{key}" for key in NEW_KEYS}
    model = XmodForMaskedLM.from_pretrained(out)
    assert list(model.config.languages) == ["en_XX", "de_DE", "ru_RU"]
    original = XmodForMaskedLM.from_pretrained(folder).state_dict()
    for key, value in model.state_dict().items():
        if "ru_RU" not in key:
            assert torch.equal(value, original[key]), key


# --- in memory: determinism, init, freezing ---------------------------------------------------------


def load_mlm(tiny: SimpleNamespace):
    from transformers import AutoTokenizer, XmodForMaskedLM

    return XmodForMaskedLM.from_pretrained(tiny.mlm), AutoTokenizer.from_pretrained(str(tiny.mlm))


def test_deterministic_under_the_seed(tiny: SimpleNamespace) -> None:
    model, tokenizer = load_mlm(tiny)
    params = AddLanguageParams(**{**PARAMS, "steps": 5})
    runs = []
    for seed in (0, 0, 1):
        copy_ = copy.deepcopy(model)
        facts = add_language(copy_.roberta, tokenizer, RUSSIAN, params.model_copy(update={"seed": seed}),
                             copy_.lm_head)
        runs.append((facts["losses"], {k: v for k, v in copy_.state_dict().items() if "ru_RU" in k}))
    assert runs[0][0] == runs[1][0] and runs[0][0] != runs[2][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    # the original model was not touched
    assert list(model.config.languages) == ["en_XX", "de_DE"]


def test_init_from_copies_an_existing_adapter(tiny: SimpleNamespace) -> None:
    model, tokenizer = load_mlm(tiny)
    params = AddLanguageParams(**{**PARAMS, "steps": 1, "lr": 1e-12, "init_from": "de"})
    facts = add_language(model.roberta, tokenizer, RUSSIAN, params, model.lm_head)
    assert facts["init_from"] == "de_DE"
    for layer in model.roberta.encoder.layer:
        new, german = layer.output.adapter_modules["ru_RU"], layer.output.adapter_modules["de_DE"]
        assert new is not german
        for a, b in zip(new.parameters(), german.parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="'fr'.*not an adapter"):
        add_language(model.roberta, tokenizer, RUSSIAN, AddLanguageParams(language="el", init_from="fr"),
                     model.lm_head)


def test_requires_grad_restored_and_languages_routed(tiny: SimpleNamespace) -> None:
    model, tokenizer = load_mlm(tiny)
    model.freeze_embeddings_and_language_adapters()
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    add_language(model.roberta, tokenizer, RUSSIAN, AddLanguageParams(**{**PARAMS, "steps": 2}), model.lm_head)
    for name, p in model.named_parameters():
        assert p.requires_grad == flags.get(name, False), name  # new adapters frozen like the others
    model.roberta.set_default_language("ru_RU")  # routable without saving
    model.eval()
    ids = tokenizer(RUSSIAN[:1], return_tensors="pt")
    assert model(**ids).logits.shape[-1] == model.config.vocab_size


# --- errors -----------------------------------------------------------------------------------------


def test_adding_an_existing_adapter_is_an_error(tiny: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already has an adapter 'de_DE'"):
        add_language_to_checkpoint(tiny.st, tmp_path / "x", GERMAN, AddLanguageParams(**{**PARAMS, "language": "de"},
                                                                                      lm_head=str(tiny.mlm)))
    model, tokenizer = load_mlm(tiny)
    with pytest.raises(ValueError, match="already has an adapter 'en_XX'"):
        add_language(model.roberta, tokenizer, ENGLISH, AddLanguageParams(language="en"), model.lm_head)
    assert not (tmp_path / "x").exists()


def test_unknown_language_is_an_error(tiny: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedLanguage, match="unsupported language 'xx'"):
        add_language_to_checkpoint(tiny.st, tmp_path / "x", RUSSIAN, AddLanguageParams(language="xx"))
    model, tokenizer = load_mlm(tiny)
    with pytest.raises(UnsupportedLanguage, match="unsupported language 'klingon'"):
        add_language(model.roberta, tokenizer, RUSSIAN, AddLanguageParams(language="klingon"), model.lm_head)
    assert list(model.config.languages) == ["en_XX", "de_DE"]


def test_folders_without_an_xmod_model_are_errors(tiny: SimpleNamespace, tmp_path: Path) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaModel

    xlmr = sentence_transformer(tmp_path / "xlmr", ENGLISH + RUSSIAN, XLMRobertaModel, XLMRobertaConfig, "mean")
    with pytest.raises(ValueError, match="holds no XMOD model"):
        add_language_to_checkpoint(xlmr, tmp_path / "x", RUSSIAN, AddLanguageParams(**PARAMS))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no XMOD model"):
        add_language_to_checkpoint(tmp_path / "empty", tmp_path / "x", RUSSIAN, AddLanguageParams(**PARAMS))
    with pytest.raises(FileNotFoundError):
        add_language_to_checkpoint(tmp_path / "missing", tmp_path / "x", RUSSIAN, AddLanguageParams(**PARAMS))
    with pytest.raises(ValueError, match="no MLM head.*facebook/xmod-base"):
        add_language_to_checkpoint(tiny.st, tmp_path / "x", RUSSIAN, AddLanguageParams(**PARAMS))
    with pytest.raises(FileExistsError):
        add_language_to_checkpoint(tiny.st, tmp_path / "empty", RUSSIAN, AddLanguageParams(**PARAMS))
    with pytest.raises(ValueError, match="no XMOD model"):
        find_xmod(XLMRobertaModel(XLMRobertaConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1,
                                                   num_attention_heads=1, intermediate_size=8)))
    assert not (tmp_path / "x").exists()


def test_params_are_strict() -> None:
    with pytest.raises(ValueError):
        AddLanguageParams(language="ru", epochs=3)
    with pytest.raises(ValueError):
        AddLanguageParams(language="ru", mlm_probability=0)
    params = AddLanguageParams(language="ru")
    assert (params.mlm_probability, params.init_from, params.lm_head) == (0.15, None, None)
    with pytest.raises(ValueError):
        params.steps = 3  # frozen


def test_find_xmod(tiny: SimpleNamespace) -> None:
    from sentence_transformers import SentenceTransformer
    from torch import nn

    model, _ = load_mlm(tiny)
    assert find_xmod(model) is model.roberta and find_xmod(model.roberta) is model.roberta
    st = SentenceTransformer(str(tiny.st), device="cpu")
    assert find_xmod(st) is st[0].auto_model

    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.bert = inner

    assert find_xmod(Wrapper(model.roberta)) is model.roberta
    assert find_xmod(SimpleNamespace(checkpoint=SimpleNamespace(model=model))) is model.roberta
    with pytest.raises(ValueError, match="no XMOD model"):
        find_xmod(SimpleNamespace(x=1))
    with pytest.raises(ValueError, match="holds 2 XMOD models"):
        find_xmod(nn.ModuleList([model.roberta, copy.deepcopy(model.roberta)]))
