"""Training recipes of the late-interaction systems: ColBERT-XM, MTD ColBERT-X, post-hoc languages.

Three recipes, chosen by ``recipe`` in a suite's ``train.params`` (`TrainParams`; the catalogue row's
``train`` gives the recipe and its defaults):

``colbert-xm`` (seed 000 §3.4 and "Implementation"; ant-louis/xm-retrievers)
    Triples (query, positive, hard negatives) of one language (English: ``language: en``, routed
    through the ``en_XX`` adapter) from `TrainingData.examples`: the teacher run's top non-relevant
    passages as hard negatives (the paper mines them with 12 retrievers), random ones without a
    run; the model scores every query against every passage of the batch
    and the loss is the pairwise softmax cross-entropy over each query's own positive and hard
    negatives (ColBERTv1, eq. 7) plus the in-batch softmax cross-entropy over the batch's passages
    (ColBERTv2, eq. 8). By default its denominator leaves the query's own hard negatives out, as
    colbert-ai's ``compute_ib_loss``; ``in_batch_own_negatives: true``
    keeps them, as the paper's formula reads.
    Embeddings and every language adapter (with the adapter layer norms) stay frozen, as
    xm-retrievers' ``prepare_xmod_for_finetuning``; the shared weights and the 768→128 projection
    train. AdamW (torch: weight decay 0.01, eps 1e-6 as xm-retrievers), 10% linear warm-up, linear
    decay, gradients clipped at norm 2 (colbert-ai's mixed-precision manager). Defaults are the
    paper's: 50k steps, batch 128, lr 3e-6. The repository's script (``run_multi_vector_biencoder.sh``)
    says 200k steps, 20k warm-up steps and lr 5e-6; which one the released checkpoint used is unknown.

``mtd`` (seed 001; hltcoe PLAID-X ``colbert/training/training.py``)
    Multilingual Translate-Distill. Each training entry is a query with its candidates: the teacher
    run's top ``sample_from`` passages with the teacher's scores (PLAID-X's distillation triples list
    the teacher's top passages, relevant or not), or, without a teacher run, `TrainingData.examples`
    (a positive and ``sample_from - 1`` random negatives, relevance grades as scores); each step takes
    ``queries_per_batch`` entries and samples ``passages_per_query`` passages of each uniformly without
    replacement from its first ``sample_from`` candidates (PLAID-X's ``shuffle_passages``: shuffle, keep the first ``nway``). The passages' languages come
    from the mixing strategy (`systems.colbert.sampling.mix`); a passage in language L is the document with the same id in
    ``data.docs(L)`` (parallel collections). Loss: KL(teacher ‖ student) with both as log-softmax
    over the entry's passages, ``batchmean`` (``KLDivLoss(log_target=True)``, teacher scores times
    ``teacher_alpha`` = PLAID-X's ``distillation_alpha``); no in-batch negatives. AdamW as PLAID-X
    (transformers' AdamW: weight decay 0, eps 1e-8), constant learning rate (PLAID-X's training
    script passes no ``--warmup``, so it builds no scheduler), gradients clipped at norm 2. Defaults
    are the paper's: 200k steps, lr 5e-6, 8 queries × 6 passages from the teacher's top 50.

    ``language_consistency_loss`` (off by default, as in the paper, which does not describe it)
    is PLAID-X's regulariser, which its round-robin batcher adds unless ``nolangreg`` is set: with
    every entry repeated once per language, the student's log-softmax scores are arranged as one
    column per language (rows: every (entry, passage) of the step) and the loss adds the mean,
    over language pairs (i, j) with i ≤ j — the zero i = j terms included, as PLAID-X — of the
    symmetric divergence ½·KL(col_i ‖ col_j) + ½·KL(col_j ‖ col_i), each ``KLDivLoss(batchmean,
    log_target=True)`` over the whole column (`systems.colbert.losses.language_consistency`). It needs ``round-robin``.

``add-language`` (seed 000 Fig. 1d)
    New adapters for one language, learned by MLM on that language's training text with everything
    else frozen: `systems.common.xmod.add_language_to_checkpoint` on the system's checkpoint folder (see
    there). The result is the same checkpoint layout with one more language.

``colbert-xm`` and ``mtd`` are each a batch stream and a loss handed to `harness.training.loop.fit`,
on a model the caller loads (``load_model(device)``: the system's fresh trainable copy); they write
a checkpoint with ``ColbertModel.save`` that the system loads back through ``with_checkpoint``.
Their facts are `fit`'s plus the recipe's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from harness.data.base import DataError
from harness.system import Params
from harness.training.loop import FREEZABLE, Optimiser, device, fit, freeze
from systems.colbert.losses import colbert_xm_loss, kl_distillation_loss, language_consistency
from systems.colbert.sampling import Mixing, mtd_pool, mtd_steps
from systems.common.xmod import AddLanguageParams

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.training import Example, TrainingData
    from systems.colbert.sampling import Entry

ModelLoader = Callable[[str], "nn.Module"]
"""Loads a fresh trainable model on a device (``cpu``, ``cuda``): the system's checkpoint, or a stand-in."""


class ColbertXMRecipe(Params):
    """ColBERT-XM fine-tuning: pairwise + in-batch softmax cross-entropy on triples of one language,
    embeddings and adapters frozen. Defaults: the paper (seed 000); the repository's script says
    200k steps and lr 5e-6 instead of 50k and 3e-6 (unclear which the released checkpoint used)."""

    recipe: Literal["colbert-xm"] = "colbert-xm"
    steps: int = Field(50_000, ge=1, description="optimizer steps (paper: 50k; repo script: 200k)")
    batch_size: int = Field(128, ge=1, description="triples per step")
    lr: float = Field(3e-6, gt=0, description="peak learning rate (paper: 3e-6; repo script: 5e-6)")
    warmup: float = Field(0.1, ge=0, le=1, description="fraction of steps with linear warm-up")
    schedule: Literal["linear", "constant"] = Field("linear", description="after warm-up: linear decay to 0, "
                                                   "or constant")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (torch's default, as xm-retrievers)")
    adam_eps: float = Field(1e-6, gt=0, description="AdamW eps (xm-retrievers: 1e-6)")
    max_grad_norm: float | None = Field(2.0, gt=0, description="gradient clipping (colbert-ai: 2.0); None: none")
    negatives: int = Field(1, ge=1, description="hard negatives per query (teacher run's top non-relevant, "
                           "else random)")
    in_batch: bool = Field(True, description="add the in-batch softmax CE (ColBERTv2) to the pairwise CE (ColBERTv1)")
    in_batch_own_negatives: bool = Field(False, description="keep each query's own hard negatives in its in-batch "
                                         "softmax (seed 000 eq. 8 as written); False: left out, as colbert-ai's "
                                         "compute_ib_loss")
    language: str = Field("en", description="training language: its split and (XMOD) its adapter")
    freeze: tuple[Literal["embeddings", "adapters"], ...] = Field(
        FREEZABLE, description="parameter groups kept fixed (adapters: every language's, with their layer norms)")
    seed: int = Field(0, description="seeds example order, negatives and dropout")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", exclude=True, description="auto: cuda when available")


class MTDRecipe(Params):
    """Multilingual Translate-Distill: KL distillation of teacher scores over passages in mixed
    languages. Defaults: the paper (seed 001) and PLAID-X's training script."""

    recipe: Literal["mtd"] = "mtd"
    steps: int = Field(200_000, ge=1, description="optimizer steps")
    lr: float = Field(5e-6, gt=0, description="learning rate")
    warmup: float = Field(0.0, ge=0, le=1, description="fraction of steps with linear warm-up (PLAID-X: none)")
    schedule: Literal["linear", "constant"] = Field("constant", description="after warm-up: linear decay to 0, or "
                                                   "constant (PLAID-X without --warmup builds no scheduler)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (transformers' AdamW default, as PLAID-X)")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW eps (PLAID-X: 1e-8)")
    max_grad_norm: float | None = Field(2.0, gt=0, description="gradient clipping (colbert-ai: 2.0); None: none")
    queries_per_batch: int = Field(8, ge=1, description="entries per step (round-robin: each repeated per language)")
    passages_per_query: int = Field(6, ge=2, description="passages per entry (PLAID-X nway)")
    sample_from: int = Field(50, ge=2, description="passages are drawn from the teacher's top sample_from")
    mixing: Mixing = Field("mix-passages", description="mix-passages: each passage's language at random; "
                           "mix-entries: one random language per entry; round-robin: each entry once per language")
    language_consistency_loss: bool = Field(False, description="PLAID-X's cross-language regulariser "
                                            "(round-robin only; not in the paper)")
    languages: tuple[str, ...] | None = Field(None, description="passage languages to mix; None: every training split")
    query_language: str = Field("en", description="the split the queries come from (MTD: English queries)")
    teacher_alpha: float = Field(1.0, gt=0, description="teacher scores are multiplied by this before the softmax")
    freeze: tuple[Literal["embeddings", "adapters"], ...] = Field((), description="parameter groups kept fixed")
    seed: int = Field(0, description="seeds entry order, passage sampling, language draws and dropout")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", exclude=True, description="auto: cuda when available")

    @model_validator(mode="after")
    def _consistency_needs_round_robin(self) -> MTDRecipe:
        if self.language_consistency_loss and self.mixing != "round-robin":
            raise ValueError("language_consistency_loss compares each entry across languages and needs "
                             "mixing 'round-robin'")
        if self.passages_per_query > self.sample_from:
            raise ValueError(f"passages_per_query {self.passages_per_query} exceeds sample_from {self.sample_from}")
        return self


class AddLanguageRecipe(AddLanguageParams):
    """Post-hoc language addition (new adapters by MLM, all else frozen): `systems.common.xmod`'s settings."""

    recipe: Literal["add-language"] = "add-language"


TrainParams = Annotated[ColbertXMRecipe | MTDRecipe | AddLanguageRecipe, Field(discriminator="recipe")]
"""The late-interaction systems' training settings: the recipe ``recipe`` names, flat keys (validated by
`harness.system.train_params` over the catalogue row's ``train`` defaults)."""


def optimiser(settings: ColbertXMRecipe | MTDRecipe) -> Optimiser:
    """`fit`'s AdamW and schedule from a recipe's settings."""
    return Optimiser(lr=settings.lr, steps=settings.steps, warmup_steps=int(settings.warmup * settings.steps), weight_decay=settings.weight_decay,
                     eps=settings.adam_eps, schedule=settings.schedule, max_grad_norm=settings.max_grad_norm)


def train(data: TrainingData, params: ColbertXMRecipe | MTDRecipe | AddLanguageRecipe, out: Path,
          load_model: ModelLoader, folder: Callable[[], Path]) -> dict[str, Any]:
    """Run ``params``' recipe on ``data`` and save the result in ``out`` (a folder the system's loader
    reads: `System.with_checkpoint`): ``load_model`` gives the model colbert-xm and mtd train,
    ``folder`` the checkpoint folder add-language extends. Returns facts (`fit`'s and the recipe's)."""
    if isinstance(params, ColbertXMRecipe):
        return train_colbert_xm(load_model, data, params, out)
    if isinstance(params, MTDRecipe):
        return train_mtd(load_model, data, params, out)
    if isinstance(params, AddLanguageRecipe):
        return train_add_language(folder, data, params, out)
    raise TypeError(f"not a late-interaction recipe: {type(params).__name__}")


def train_colbert_xm(load_model: ModelLoader, data: TrainingData, settings: ColbertXMRecipe,
                     out: Path) -> dict[str, Any]:
    """The ColBERT-XM recipe (module docstring) on the model ``load_model`` gives."""
    import torch

    where = device(settings.device)
    model = load_model(where)
    torch.manual_seed(settings.seed)
    lang = settings.language
    examples = data.examples(lang, settings.negatives, settings.seed)
    usable = [e for e in examples if len(e.negatives) >= settings.negatives]
    if not usable:
        raise DataError(f"no {lang!r} training query has {settings.negatives} negatives")
    frozen = freeze(model, settings.freeze)
    nway = settings.negatives + 1

    def loss(batch: list[Example]) -> torch.Tensor:
        queries = [e.query.text for e in batch]
        docs = [d for e in batch for d in e.docs[:nway]]
        Q, Qm = model.encode_queries(queries, [lang] * len(queries))
        D, Dm = model.encode_docs([d.contents for d in docs], [lang] * len(docs))
        return colbert_xm_loss(model.scores(Q, Qm, D, Dm).float(), nway, settings.in_batch,
                               settings.in_batch_own_negatives)

    batches = data.batches(usable, settings.batch_size, settings.steps, settings.seed)
    facts = fit(model, batches, loss, optimiser(settings), where)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return {"recipe": "colbert-xm", **facts, "language": lang, "examples": len(usable),
            "skipped_examples": len(examples) - len(usable), "nway": nway, "in_batch": settings.in_batch,
            "in_batch_own_negatives": settings.in_batch_own_negatives,
            "frozen_parameters": frozen, "frozen_groups": list(settings.freeze)}


def train_mtd(load_model: ModelLoader, data: TrainingData, settings: MTDRecipe, out: Path) -> dict[str, Any]:
    """The MTD recipe (module docstring) on the model ``load_model`` gives."""
    import torch

    languages = list(settings.languages or data.languages)
    unknown = [lang for lang in languages if lang not in data.languages]
    if unknown:
        raise DataError(f"no training split in {', '.join(unknown)}; have {', '.join(data.languages)}")
    if settings.language_consistency_loss and len(languages) < 2:
        raise ValueError("language_consistency_loss needs at least two languages")
    pool, skipped = mtd_pool(data, settings, languages)
    where = device(settings.device)
    model = load_model(where)
    torch.manual_seed(settings.seed)
    docs = {lang: data.docs(lang) for lang in languages}
    frozen = freeze(model, settings.freeze)
    n, qlang = settings.passages_per_query, settings.query_language
    consistency: list[float] = []
    seen = {lang: 0 for lang in languages}

    def loss(entries: list[Entry]) -> torch.Tensor:
        passages = [(docs[lang][d], lang) for e in entries for d, lang in e.passages]
        for _, lang in passages:
            seen[lang] += 1
        Q, Qm = model.encode_queries([e.query.text for e in entries], [qlang] * len(entries))
        D, Dm = model.encode_docs([doc.contents for doc, _ in passages], [lang for _, lang in passages])
        scores = model.scores(Q, Qm, D, Dm)
        b = len(entries)
        rows = torch.arange(b, device=scores.device)
        student = scores.float().view(b, b, n)[rows, rows]  # each query against its own passages
        teacher = torch.tensor([e.scores for e in entries], dtype=torch.float32, device=student.device)
        value = kl_distillation_loss(student, teacher, settings.teacher_alpha)
        if settings.language_consistency_loss:
            extra = language_consistency(torch.nn.functional.log_softmax(student, dim=-1), len(languages))
            consistency.append(float(extra.detach()))
            value = value + extra
        return value

    facts = fit(model, mtd_steps(pool, settings, languages), loss, optimiser(settings), where)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    per_step = settings.queries_per_batch * (len(languages) if settings.mixing == "round-robin" else 1)
    facts = {"recipe": "mtd", "mixing": settings.mixing, **facts, "languages": languages, "query_language": qlang,
             "entries": len(pool), "skipped_entries": skipped, "passages_by_language": seen,
             "queries_per_step": per_step, "teacher": "run" if data.teacher_path is not None else "relevance grades",
             "frozen_parameters": frozen, "frozen_groups": list(settings.freeze)}
    if settings.language_consistency_loss:
        facts["consistency_losses"] = consistency
    return facts


def train_add_language(folder: Callable[[], Path], data: TrainingData, settings: AddLanguageRecipe,
                       out: Path) -> dict[str, Any]:
    """New adapters for ``settings.language`` by MLM on its training text (`systems.common.xmod`), written
    as a copy of the checkpoint folder ``folder()`` (found once the data is known to have the language)."""
    from systems.common.xmod import add_language_to_checkpoint

    if settings.language not in data.languages:
        raise DataError(f"no training split in {settings.language!r} to learn its adapters from; have "
                        f"{', '.join(data.languages)}")
    source = folder()
    texts = data.texts(settings.language)
    started = time.perf_counter()
    facts = add_language_to_checkpoint(source, out, texts, AddLanguageParams(**settings.model_dump(exclude={"recipe"})))
    return {"recipe": "add-language", **facts, "seconds": round(time.perf_counter() - started, 3)}
