"""Training recipe of the single-vector family (DPR-XM, seed 000 §4.3.2; any ``st:`` model).

MultipleNegativesRankingLoss (sentence-transformers' own) over (query, positive, hard negatives)
with in-batch negatives, AdamW with linear warm-up and decay. For XMOD backbones the embeddings
and every language adapter stay frozen and the shared weights are trained through the adapter of
each batch's language (DPR-XM: English only). Each batch holds one language; languages take
turns. Only what the settings leave trainable changes, and the test checks it tensor by tensor.
"""

from __future__ import annotations

import time
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.languages import xmod_code
from harness.system import Params
from harness.training import TrainingData, autocast, device, optimiser

if TYPE_CHECKING:
    from systems.dense import DenseSystem


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


def frozen_names(model, settings: DenseTraining) -> list[str]:
    """Parameter names the settings freeze: embeddings, and XMOD adapters."""
    names = []
    for name, _ in model.named_parameters():
        if settings.freeze_embeddings and ".embeddings." in f".{name}":
            names.append(name)
        elif settings.freeze_adapters and ".adapter_modules." in f".{name}":
            names.append(name)
    return names


def train(system: DenseSystem, data: TrainingData, settings: DenseTraining, out: Path) -> dict[str, Any]:
    """Fine-tune ``system``'s encoder with MNRL on ``data``; save it (sentence-transformers layout) in ``out``."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from systems.dense import open_model

    torch.manual_seed(settings.seed)
    where = device(system.params.device)
    p = system.params
    model = open_model(p.model, p.revision, p.trust_remote_code, where, p.pooling, p.max_length)  # never the cached one
    languages = settings.languages or data.languages
    examples = {lang: data.examples(lang, settings.negatives, settings.seed) for lang in languages}
    backbone = getattr(model[0], "auto_model", None)
    xmod = hasattr(backbone, "set_default_language")
    frozen = set(frozen_names(model, settings))
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name not in frozen
    loss_fn = MultipleNegativesRankingLoss(model, scale=settings.scale)
    opt, schedule = optimiser(model.parameters(), settings.lr, settings.steps, settings.warmup)
    query_prompt, doc_prompt = system.prompt("query"), system.prompt("document")
    streams = {lang: data.batches(ex, min(settings.batch_size, len(ex)), settings.steps, settings.seed)
               for lang, ex in examples.items()}
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for step, lang in zip(range(settings.steps), cycle(languages)):
        batch = next(streams[lang])
        if xmod:
            backbone.set_default_language(xmod_code(lang))
        columns = [[query_prompt + e.query.text for e in batch], [doc_prompt + e.positive.contents for e in batch]]
        for i in range(min(len(e.negatives) for e in batch)):
            columns.append([doc_prompt + e.negatives[i].contents for e in batch])
        features = [{k: v.to(where) if isinstance(v, torch.Tensor) else v for k, v in
                     model.preprocess(texts, task="query" if i == 0 else "document").items()}
                    for i, texts in enumerate(columns)]
        with autocast(where):
            loss = loss_fn(features, None)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], settings.max_grad_norm)
        opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()
    if xmod:
        backbone.set_default_language("en_XX" if "en_XX" in backbone.config.languages else backbone.config.languages[0])
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"recipe": "mnrl", "steps": settings.steps, "losses": losses, "languages": languages,
            "trainable_parameters": trainable, "frozen_parameters": sum(p.numel() for n, p in model.named_parameters()
                                                                         if n in frozen),
            "examples": {lang: len(ex) for lang, ex in examples.items()},
            "seconds": round(time.perf_counter() - started, 3), "device": where}

