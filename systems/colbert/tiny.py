"""Tiny random ColBERT checkpoints in the released layouts (`systems.common.tiny` has the parts)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.languages import xmod_code
from systems.colbert.model import ColbertModel
from systems.common.weights import PYTORCH_BIN, SAFETENSORS

if TYPE_CHECKING:
    from harness.training import TrainingData

TINY_QUERY_MAXLEN = 8
"""Query length of tiny checkpoints (real ones: 32). Synthetic queries are 2-5 words; padded to 32,
the ``<mask>`` vectors of an untrained model outweigh them in MaxSim and training learns the
training topics instead of matching (held-out nDCG@10 fell 0.09 → 0.03; at 8 it rises 0.14 → 0.24)."""
TINY_COLBERT_XM_METADATA = {
    "query_maxlen": TINY_QUERY_MAXLEN, "doc_maxlen": 256, "dim": 32, "query_token_id": "[unused0]",
    "doc_token_id": "[unused1]", "query_token": "[Q]", "doc_token": "[D]", "mask_punctuation": True,
    "attend_to_mask_tokens": True, "similarity": "cosine", "nbits": 2, "interaction": "colbert"}
"""ColBERT-XM's ``artifact.metadata`` values (REFERENCE.md), dim and query length shrunk for tiny checkpoints."""
TINY_PLAIDX_METADATA = {
    "query_maxlen": TINY_QUERY_MAXLEN, "doc_maxlen": 180, "dim": 32, "query_token_id": "[unused0]",
    "doc_token_id": "[unused1]", "query_token": "[Q]", "doc_token": "[D]", "mask_punctuation": True,
    "attend_to_mask_tokens": False, "similarity": "cosine", "nbits": 1, "interaction": "colbert",
    "force_resize_embeddings": True}
"""PLAID-X ``ColBERTConfig`` values for tiny MTD checkpoints (nbits 1; PLAID-X's default attend_to_mask_tokens)."""


def tiny_colbert_xm(data: TrainingData, out: Path) -> Path:
    """A tiny random ColBERT-XM checkpoint in ``out``, in its real layout: XMOD with adapters for the
    training languages and en_XX, ``model.safetensors``, ``artifact.metadata`` with ColBERT-XM's
    values (dim 32)."""
    from transformers import XmodConfig

    from systems.common.tiny import CORPUS, TINY, TINY_SIZES, VOCAB, xlmr_tokenizer

    tokenizer = xlmr_tokenizer(data.texts(limit=CORPUS), vocab_size=VOCAB)
    config = XmodConfig(vocab_size=len(tokenizer), **{**TINY, **TINY_SIZES}, adapter_reduction_factor=2,
                        languages=sorted({xmod_code(lang) for lang in data.languages} | {"en_XX"}),
                        default_language="en_XX")
    metadata = {**TINY_COLBERT_XM_METADATA, "checkpoint": "tiny", "model_name": "facebook/xmod-base"}
    return ColbertModel.create(config, tokenizer, metadata, SAFETENSORS).save(out)


def tiny_mtd(data: TrainingData, out: Path) -> Path:
    """A tiny random MTD checkpoint in ``out``, in PLAID-X's layout: XLM-R with ``[unused0]``/``[unused1]``
    added to the tokenizer (after its vocabulary, as 250002/250003), ``pytorch_model.bin``."""
    from transformers import XLMRobertaConfig

    from systems.common.tiny import CORPUS, TINY, TINY_SIZES, VOCAB, xlmr_tokenizer

    tokenizer = xlmr_tokenizer(data.texts(limit=CORPUS), vocab_size=VOCAB)
    tokenizer.add_tokens([TINY_PLAIDX_METADATA["query_token_id"]])  # PLAID-X's order: query marker first
    tokenizer.add_tokens([TINY_PLAIDX_METADATA["doc_token_id"]])
    config = XLMRobertaConfig(vocab_size=len(tokenizer), **{**TINY, **TINY_SIZES})
    metadata = {**TINY_PLAIDX_METADATA, "checkpoint": "tiny", "model_name": "xlm-roberta-large"}
    return ColbertModel.create(config, tokenizer, metadata, PYTORCH_BIN).save(out)
