"""Training recipe of the single-vector family (DPR-XM, seed 000 §4.3.2; any ``st:`` model).

MultipleNegativesRankingLoss (sentence-transformers' own) over (query, positive, hard negatives)
with in-batch negatives, run by `harness.training.loop.fit` (AdamW, linear warm-up and decay,
gradient clipping). For XMOD backbones the embeddings and every language adapter stay frozen and
the shared weights are trained through the adapter of each batch's language (DPR-XM: English
only). Each batch holds one language; languages take turns. Only what the settings leave
trainable changes, and the test checks it tensor by tensor.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.languages import xmod_code
from harness.system import Params
from harness.training import Example, TrainingData
from harness.training.loop import Optimiser, fit, freeze

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer


class DenseTraining(Params):
    """Settings of the MNRL recipe; defaults are DPR-XM's (batch 128, lr 2e-5, 10% warm-up)."""

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(128, ge=2, description="queries per batch (the other positives are in-batch negatives)")
    lr: float = Field(2e-5, gt=0)
    warmup: float = Field(0.1, ge=0, lt=1, description="fraction of steps with linearly rising lr")
    negatives: int = Field(1, ge=0, description="hard negatives per query (teacher run's, else random)")
    scale: float = Field(20.0, gt=0, description="MNRL similarity scale (inverse temperature)")
    languages: list[str] | None = Field(["en"], description="training languages (batches take turns); None: all")
    freeze_embeddings: bool = Field(True, description="keep token/position embeddings fixed (as DPR-XM)")
    freeze_adapters: bool = Field(True, description="keep every XMOD language adapter fixed (as DPR-XM)")
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0


def frozen_groups(settings: DenseTraining) -> list[str]:
    """The `harness.training.loop.parameter_groups` the settings freeze: embeddings, XMOD adapters."""
    return [group for group, frozen in (("embeddings", settings.freeze_embeddings),
                                        ("adapters", settings.freeze_adapters)) if frozen]


def language_batches(data: TrainingData, languages: list[str], examples: dict[str, list[Example]],
                     settings: DenseTraining) -> Iterator[tuple[str, list[Example]]]:
    """``settings.steps`` batches, each of one language's ``examples``, ``languages`` taking turns."""
    streams = {lang: data.batches(ex, min(settings.batch_size, len(ex)), settings.steps, settings.seed)
               for lang, ex in examples.items()}
    for _, lang in zip(range(settings.steps), cycle(languages)):
        yield lang, next(streams[lang])


def train(model: SentenceTransformer, data: TrainingData, settings: DenseTraining, out: Path,
          prompts: tuple[str, str], where: str) -> dict[str, Any]:
    """Fine-tune ``model`` (loaded on ``where``, in place) with MNRL on ``data``, ``prompts`` (query,
    document) prepended to the texts; save it (sentence-transformers layout) in ``out``."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    languages = settings.languages or data.languages
    examples = {lang: data.examples(lang, settings.negatives, settings.seed) for lang in languages}
    backbone = getattr(model[0], "auto_model", None)
    xmod = hasattr(backbone, "set_default_language")
    frozen = freeze(model, frozen_groups(settings))
    mnrl = MultipleNegativesRankingLoss(model, scale=settings.scale)
    query_prompt, doc_prompt = prompts

    def loss(batch: tuple[str, list[Example]]) -> torch.Tensor:
        lang, group = batch
        if xmod:
            backbone.set_default_language(xmod_code(lang))
        columns = [[query_prompt + e.query.text for e in group], [doc_prompt + e.positive.contents for e in group]]
        for i in range(min(len(e.negatives) for e in group)):
            columns.append([doc_prompt + e.negatives[i].contents for e in group])
        features = [{k: v.to(where) if isinstance(v, torch.Tensor) else v for k, v in
                     model.preprocess(texts, task="query" if i == 0 else "document").items()}
                    for i, texts in enumerate(columns)]
        return mnrl(features, None)

    optimiser = Optimiser(lr=settings.lr, steps=settings.steps, warmup_steps=int(settings.warmup * settings.steps), weight_decay=0.01,
                          max_grad_norm=settings.max_grad_norm)
    facts = fit(model, language_batches(data, languages, examples, settings), loss, optimiser, where)
    if xmod:
        backbone.set_default_language("en_XX" if "en_XX" in backbone.config.languages else backbone.config.languages[0])
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return {"recipe": "mnrl", **facts, "languages": languages, "frozen_parameters": sum(frozen.values()),
            "examples": {lang: len(ex) for lang, ex in examples.items()}}
