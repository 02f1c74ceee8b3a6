"""Tiny randomly initialised checkpoints in the real on-disk layouts, with tokenizers trained on the fly.

Nothing can be downloaded where the demo and the tests run, so `System.tiny` builds its system's
checkpoint layout from these parts at toy sizes: the same files and loaders as the released
models, random weights, a tokenizer trained on the training data's own text.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 130, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "initializer_range": 0.2}
"""Toy transformer sizes (XLM-R family ids: <s>=0, <pad>=1, </s>=2)."""
TINY_SIZES = {"hidden_size": 128, "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 514,
              "initializer_range": 0.02}
"""What `System.tiny` builds: still toy-sized, but wide enough that random token embeddings are near
orthogonal and, with the usual 0.02 init, the residual stream keeps each token's identity — an
untrained tiny model is a bag of words, and training has something to improve on."""
VOCAB = 30_000
"""Tiny models' vocabulary: large enough that the words of the synthetic collections are whole
pieces, since a toy model trained briefly can match tokens, not spell words out of characters."""
CORPUS = 200_000
"""Most texts a tiny tokenizer's vocabulary is counted from."""


def unigram_vocab(corpus: list[str], vocab_size: int, specials: list[str]) -> list[tuple[str, float]]:
    """A Unigram vocabulary counted from ``corpus``, deterministically (the `tokenizers` trainer is
    not: its vocabulary changes from process to process): the specials, every character seen (so
    any text of the corpus's scripts tokenizes), then the most frequent ``▁word`` pieces, each
    scored by its log relative frequency."""
    import math
    from collections import Counter

    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for text in corpus:
        for word in text.split():
            words["\u2581" + word] += 1
            chars.update(word)
    chars["\u2581"] += sum(words.values())
    total = sum(words.values()) + sum(chars.values())
    score = lambda count: math.log(count / total)
    vocab = [(piece, 0.0) for piece in specials]
    vocab += [(c, score(n)) for c, n in sorted(chars.items(), key=lambda item: (-item[1], item[0]))]
    room = max(0, vocab_size - len(vocab))
    common = [(w, n) for w, n in sorted(words.items(), key=lambda item: (-item[1], item[0])) if len(w) > 2][:room]
    return vocab + [(w, score(n)) for w, n in common]


def xlmr_tokenizer(corpus: list[str], vocab_size: int = 200, extra_specials: list[str] | None = None):
    """An XLM-R-style fast tokenizer (Unigram, Metaspace, ``<s> … </s>``) whose vocabulary comes
    from ``corpus`` (see `unigram_vocab`); the same corpus always gives the same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram(unigram_vocab(corpus, vocab_size, SPECIALS), unk_id=SPECIALS.index("<unk>")))
    tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    if extra_specials:
        fast.add_special_tokens({"additional_special_tokens": extra_specials})
    return fast


def sentence_transformer(root: Path, corpus: list[str], model_cls, config_cls, pooling: str,
                         prompts: dict[str, str] | None = None, vocab_size: int = 200,
                         sizes: dict[str, object] | None = None, max_seq_length: int = 128, **config: object) -> Path:
    """Save a random ``model_cls`` + Pooling + Normalize as a sentence-transformers folder ``root/st``
    (the Hugging Face model in ``root/hf``); ``sizes`` override the `TINY` sizes."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    dims = {**TINY, **(sizes or {})}
    fast = xlmr_tokenizer(corpus, vocab_size)
    torch.manual_seed(0)
    model_cls(config_cls(vocab_size=len(fast), **dims, **config)).save_pretrained(root / "hf")
    fast.save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=max_seq_length), Pooling(dims["hidden_size"], pooling),
               Normalize()]
    SentenceTransformer(modules=modules, prompts=prompts).save(str(root / "st"))
    return root / "st"
