"""NLLB-E5's training recipe (seed 002 §4): MSE distillation from plain E5 into the projection and
LoRA of `systems.nllb_e5.module`, NLLB and E5's base weights frozen, run by `harness.training.loop.fit`.

Choices where the paper is silent or loose
------------------------------------------
- The student's MSE target is E5's unnormalised mean-pooled embedding of ``"query: <text>"`` /
  ``"passage: <text>"`` computed with the LoRA adapters disabled (the plain E5), in eval mode;
  the student's output is its mean-pooled embedding before normalisation.
- NLLB stays in eval mode (no dropout) during training: it is a frozen feature extractor.
- Batch size (32), warm-up (none), weight decay (0.01), gradient clipping (1.0) are not in the
  paper; steps 25k, lr 2e-4, linear schedule and fp16 mixed precision (on CUDA) are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.data.base import DataError
from harness.system import Params
from harness.training import TrainingData, epochs, loop

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

TEACHER_CACHE = 200_000
"""Most distinct training texts whose teacher vectors are kept (the teacher is frozen)."""


class NllbE5TrainParams(Params):
    steps: int = Field(25_000, ge=1, description="optimiser steps (paper: 25k)")
    lr: float = Field(2e-4, gt=0, description="peak learning rate (paper: 2e-4)")
    batch_size: int = Field(32, ge=1, description="texts per step (not in the paper)")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of steps of linear warm-up, then linear decay "
                                                         "(paper: 'linear scheduler', no warm-up stated)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not in the paper)")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping (not in the paper); None: off")
    max_length: int | None = Field(None, ge=3, description="NLLB tokens per training text; None: the checkpoint's "
                                                           "max_seq_length (508)")
    teacher_max_length: int | None = Field(None, ge=3, description="E5 tokens the teacher reads; None: E5's limit "
                                                                   "(512), so it sees the text the student sees")
    precision: Literal["fp16", "bf16", "fp32"] = Field("fp16", description="autocast dtype on CUDA (paper: fp16); "
                                                                          "CPU always trains in fp32")
    distill_languages: tuple[str, ...] = Field(("en",), min_length=1, description="languages whose training text is "
                                               "distilled (paper: English only; the teacher is English E5)")
    seed: int = Field(0, description="batch order, dropout and LoRA-dropout randomness")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")


def parameter_counts(module) -> dict[str, int]:
    """Trainable (projection, LoRA) and frozen (NLLB encoder, E5 base) parameter counts."""
    lora = sum(p.numel() for n, p in module.e5.named_parameters() if "lora_" in n)
    projection = sum(p.numel() for p in module.projection.parameters())
    return {"projection": projection, "lora": lora, "trainable": projection + lora,
            "trainable_check": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "nllb_frozen": sum(p.numel() for p in module.nllb.parameters()),
            "e5_frozen": sum(p.numel() for n, p in module.e5.named_parameters() if "lora_" not in n)}


def _mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def teacher_embeddings(module, texts: list[str], task: str, max_length: int, device: str = "cpu",
                       precision: str = "fp32") -> torch.Tensor:
    """The distillation targets: plain E5 (LoRA disabled, eval mode) on ``"query: <text>"`` /
    ``"passage: <text>"``, mean-pooled, not normalised (float32, no gradient)."""
    import torch

    tokens = module.e5_tokenizer([module.teacher_text(text, task) for text in texts], padding=True, truncation=True,
                                 max_length=max_length, return_tensors="pt").to(device)
    was_training = module.e5.training
    module.e5.eval()
    try:
        with torch.no_grad(), module.e5.disable_adapter(), loop.autocast(device, precision):
            states = module.e5(**tokens).last_hidden_state
    finally:
        module.e5.train(was_training)
    return _mean_pool(states.float(), tokens["attention_mask"])


def student_embeddings(model: SentenceTransformer, texts: list[str], task: str, code: str, device: str = "cpu",
                       precision: str = "fp32") -> torch.Tensor:
    """NLLB-E5's mean-pooled, not normalised embeddings of ``texts`` in NLLB language ``code`` (with
    gradient, in the model's current mode)."""
    module, pooling = model[0], model[1]
    module.set_language(code)
    features = {k: v.to(device) for k, v in module.preprocess(texts, task=task).items()}
    with loop.autocast(device, precision):
        return pooling(module(features))["sentence_embedding"].float()


def distill(model: SentenceTransformer, data: TrainingData, params: NllbE5TrainParams, device: str) -> dict[str, Any]:
    """Train ``model``'s projection and LoRA in place so its mean-pooled output matches plain E5's on
    the same English text (MSE); returns the facts of the run (`loop.fit`'s and the recipe's)."""
    import torch
    import torch.nn.functional as F

    module = model[0]
    items: list[tuple[str, str, str]] = []  # (NLLB code, task, text)
    for lang in params.distill_languages:
        if lang not in data.languages:
            raise DataError(f"distill language {lang!r} has no training split; have {', '.join(data.languages)}")
        code = module.language_key(lang)
        items += [(code, "document", doc.contents) for doc in data.docs(lang).values()]
        items += [(code, "query", query.text) for query in data.queries(lang)]
    if params.batch_size > len(items):
        raise DataError(f"batch_size {params.batch_size} exceeds the {len(items)} training texts")
    max_length = params.max_length or module.max_seq_length
    teacher_length = params.teacher_max_length or module.e5.get_base_model().config.max_position_embeddings

    model.to(device)
    random_state = torch.get_rng_state()
    torch.manual_seed(params.seed)
    cache: dict[int, torch.Tensor] = {}
    keep = len(items) <= TEACHER_CACHE
    saved_length, saved_language = module.max_seq_length, module.language
    module.max_seq_length = max_length

    def teacher(batch: list[int]) -> torch.Tensor:
        found: dict[int, torch.Tensor] = {}
        missing = [i for i in batch if i not in cache]
        for task in ("query", "document"):
            group = [i for i in missing if items[i][1] == task]
            if group:
                vectors = teacher_embeddings(module, [items[i][2] for i in group], task, teacher_length, device,
                                             params.precision)
                found.update(zip(group, vectors))
        if keep:
            cache.update(found)
        return torch.stack([cache[i] if i in cache else found[i] for i in batch])

    def student(batch: list[int]) -> torch.Tensor:
        rows: list[torch.Tensor | None] = [None] * len(batch)
        groups: dict[tuple[str, str], list[int]] = {}
        for row, i in enumerate(batch):
            groups.setdefault(items[i][:2], []).append(row)
        for (code, task), group in groups.items():
            vectors = student_embeddings(model, [items[batch[row]][2] for row in group], task, code, device,
                                         params.precision)
            for row, vector in zip(group, vectors):
                rows[row] = vector
        return torch.stack(rows)

    def loss(batch: list[int]) -> torch.Tensor:
        target = teacher(batch)
        return F.mse_loss(student(batch), target)

    settings = loop.Optimiser(lr=params.lr, steps=params.steps, warmup_steps=int(params.warmup * params.steps), weight_decay=params.weight_decay,
                              max_grad_norm=params.max_grad_norm, precision=params.precision)
    try:
        facts = loop.fit(model, epochs(list(range(len(items))), params.batch_size, params.steps, params.seed), loss, settings,
                         device)
    finally:
        model.eval()
        module.max_seq_length = saved_length
        module.set_language(saved_language)
        torch.set_rng_state(random_state)
    tasks = [task for _, task, _ in items]
    return {**facts, "parameters": parameter_counts(module),
            "texts": {"documents": tasks.count("document"), "queries": tasks.count("query")},
            "languages": list(params.distill_languages), "max_length": max_length, "teacher_max_length": teacher_length}


def distill_and_save(model: SentenceTransformer, data: TrainingData, params: NllbE5TrainParams,
                     out: Path) -> dict[str, Any]:
    """Distil E5 into ``model`` (a private copy: it changes in place) on the device ``params`` ask for
    and save it into ``out``; returns `distill`'s facts."""
    device = loop.device(params.device)
    model = model.to(device)
    facts = distill(model, data, params, device)
    Path(out).mkdir(parents=True, exist_ok=True)
    model.save(str(out), create_model_card=False)
    return facts
