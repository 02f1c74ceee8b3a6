"""Tiny random checkpoints in sentence-transformers layout, with tokenizers trained on the fly."""

from __future__ import annotations

from pathlib import Path

import torch

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2, initializer_range=0.2)


def xlmr_tokenizer(corpus: list[str]):
    """An XLM-R-style fast tokenizer (Unigram, Metaspace, <s> … </s>) trained on ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=SPECIALS, unk_token="<unk>")
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def sentence_transformer(root: Path, corpus: list[str], model_cls, config_cls, pooling: str,
                         prompts: dict[str, str] | None = None, **config: object) -> Path:
    """Save a random ``model_cls`` (tiny sizes) + Pooling + Normalize as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    fast = xlmr_tokenizer(corpus)
    torch.manual_seed(0)
    model_cls(config_cls(vocab_size=len(fast), **TINY, **config)).save_pretrained(root / "hf")
    fast.save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=128), Pooling(TINY["hidden_size"], pooling), Normalize()]
    SentenceTransformer(modules=modules, prompts=prompts).save(str(root / "st"))
    return root / "st"
