"""Training recipes of the late-interaction systems: ColBERT-XM, MTD ColBERT-X, post-hoc languages.

Three recipes, chosen by ``recipe`` in a suite's ``train.params`` (`ColbertTrainParams`):

``colbert-xm`` (seed 000 §3.4 and "Implementation"; ant-louis/xm-retrievers)
    Triples (query, positive, hard negatives) of one language (English: ``language: en``, routed
    through the ``en_XX`` adapter) from `TrainingData.examples`: the teacher run's top non-relevant
    passages as hard negatives (the paper mines them with 12 retrievers), random ones without a
    run; the model scores every query against every passage of the batch
    and the loss is the pairwise softmax cross-entropy over each query's own positive and hard
    negatives (ColBERTv1, eq. 7) plus the in-batch softmax cross-entropy over every passage of the
    batch (ColBERTv2, eq. 8 — the denominator holds the query's own hard negative too, as the
    paper's formula; colbert-ai's ``compute_ib_loss`` leaves a query's own hard negatives out of it).
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
    ``queries_per_batch`` entries and samples ``passages_per_query`` passages of each uniformly without replacement from its first ``sample_from`` candidates
    (PLAID-X's ``shuffle_passages``: shuffle, keep the first ``nway``). The passages' languages come
    from the mixing strategy (`mix`); a passage in language L is the document with the same id in
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
    log_target=True)`` over the whole column (`language_consistency`). It needs ``round-robin``.

``add-language`` (seed 000 Fig. 1d)
    New adapters for one language, learned by MLM on that language's training text with everything
    else frozen: `systems.xmod.add_language_to_checkpoint` on the system's checkpoint folder (see
    there). The result is the same checkpoint layout with one more language.

`train` dispatches on the recipe and writes a checkpoint with ``ColbertModel.save`` that the system
loads back through ``with_checkpoint``. `systems.colbert` is imported inside functions only: it
imports this module.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from harness.data.base import DataError, Doc, Query
from harness.system import Params
from harness.training import epochs
from systems.xmod import AddLanguageParams

if TYPE_CHECKING:
    import torch

    from harness.training import Example, TrainingData

Mixing = Literal["mix-passages", "mix-entries", "round-robin"]
MIXINGS: tuple[str, ...] = ("mix-passages", "mix-entries", "round-robin")
FREEZABLE = ("embeddings", "adapters")


# ---------------------------------------------------------------------------------------------------
# Params
# ---------------------------------------------------------------------------------------------------


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
    """Post-hoc language addition (new adapters by MLM, all else frozen): `systems.xmod`'s settings."""

    recipe: Literal["add-language"] = "add-language"


Recipe = Annotated[Union[ColbertXMRecipe, MTDRecipe, AddLanguageRecipe], Field(discriminator="recipe")]
_RECIPE: TypeAdapter = TypeAdapter(Recipe)


class ColbertTrainParams:
    """The late-interaction systems' ``TrainParams``: ``TrainParams(**params)`` validates ``params``
    against the recipe it names (``recipe``, default `default_recipe`) and returns that recipe's
    model (`ColbertXMRecipe`, `MTDRecipe` or `AddLanguageRecipe`): flat keys in a suite's
    ``train.params``, no nesting. `preset` gives a variant with other defaults, e.g. an MTD system's
    mixing: ``TrainParams = ColbertTrainParams.preset("mtd", mixing="round-robin")`` (explicit params
    still win). This is a factory, not a pydantic model: instances are the recipe models."""

    default_recipe: ClassVar[str] = "colbert-xm"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __new__(cls, **params: Any) -> ColbertXMRecipe | MTDRecipe | AddLanguageRecipe:  # type: ignore[misc]
        recipe = params.get("recipe", cls.default_recipe)
        return _RECIPE.validate_python({**cls.defaults.get(recipe, {}), **params, "recipe": recipe})

    @classmethod
    def preset(cls, recipe: str, **defaults: Any) -> type[ColbertTrainParams]:
        """A `ColbertTrainParams` whose default recipe is ``recipe``, with ``defaults`` for it (checked now)."""
        _RECIPE.validate_python({**defaults, "recipe": recipe} if recipe != "add-language"
                                else {"language": "en", **defaults, "recipe": recipe})
        name = f"ColbertTrainParams[{recipe}{''.join(f',{k}={v}' for k, v in sorted(defaults.items()))}]"
        return type(name, (cls,), {"default_recipe": recipe, "defaults": {**cls.defaults, recipe: dict(defaults)}})

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the recipe union (for documentation)."""
        return _RECIPE.json_schema()


TrainParams = ColbertTrainParams


# ---------------------------------------------------------------------------------------------------
# Losses (pure functions on score tensors)
# ---------------------------------------------------------------------------------------------------


def pairwise_loss(scores: torch.Tensor, nway: int) -> torch.Tensor:
    """ColBERTv1's pairwise softmax cross-entropy: ``scores`` [B, B·nway] of every query against every
    passage of the batch, passages query-major (query i's are columns i·nway … i·nway+nway-1, its
    positive first); each query's softmax runs over its own nway passages, the positive is the label."""
    import torch

    b = scores.shape[0]
    rows = torch.arange(b, device=scores.device)
    own = scores.view(b, b, nway)[rows, rows]  # [B, nway]
    return torch.nn.functional.cross_entropy(own, torch.zeros(b, dtype=torch.long, device=scores.device))


def in_batch_loss(scores: torch.Tensor, nway: int) -> torch.Tensor:
    """ColBERTv2's in-batch softmax cross-entropy (seed 000 eq. 8): each query's softmax runs over every
    passage of the batch (its own positive and hard negatives, and every other query's), its positive
    (column i·nway) is the label."""
    import torch

    b = scores.shape[0]
    labels = torch.arange(b, device=scores.device) * nway
    return torch.nn.functional.cross_entropy(scores, labels)


def colbert_xm_loss(scores: torch.Tensor, nway: int, in_batch: bool = True) -> torch.Tensor:
    """L_PAIR (+ L_IB): the ColBERT-XM objective on all-pairs ``scores`` [B, B·nway]."""
    loss = pairwise_loss(scores, nway)
    return loss + in_batch_loss(scores, nway) if in_batch else loss


def kl_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """KL(teacher ‖ student) over each row's passages: ``KLDivLoss(batchmean, log_target=True)`` of
    log_softmax(student) against log_softmax(alpha·teacher) (PLAID-X / ColBERTv2 distillation)."""
    import torch

    log_student = torch.nn.functional.log_softmax(student.float(), dim=-1)
    log_teacher = torch.nn.functional.log_softmax(teacher.float() * alpha, dim=-1)
    return torch.nn.functional.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)


def symmetric_divergence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """½·KLDivLoss(a, b) + ½·KLDivLoss(b, a), batchmean, log targets (PLAID-X's ``symmetric_divergence``)."""
    import torch

    kl = torch.nn.functional.kl_div
    return 0.5 * kl(a, b, reduction="batchmean", log_target=True) + 0.5 * kl(b, a, reduction="batchmean",
                                                                            log_target=True)


def language_consistency(log_scores: torch.Tensor, languages: int) -> torch.Tensor:
    """PLAID-X's language-consistency regulariser on round-robin log-softmax scores [B·L, n] (each entry's
    L language copies consecutive): columns = languages, rows = every (entry, passage); the mean over
    pairs i ≤ j (i = j included) of `symmetric_divergence` between the two columns."""
    import torch

    rows, n = log_scores.shape
    if rows % languages:
        raise ValueError(f"{rows} score rows are not a whole number of entries × {languages} languages")
    columns = log_scores.view(rows // languages, languages, n).permute(0, 2, 1).reshape(-1, languages)
    terms = [symmetric_divergence(columns[:, i], columns[:, j]) for i in range(languages) for j in range(i, languages)]
    return torch.stack(terms).mean()


# ---------------------------------------------------------------------------------------------------
# MTD sampling and language mixing (pure functions)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """One training entry before mixing: a query and its teacher-ranked candidate passages (ids) with scores."""

    query: Query
    doc_ids: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class Entry:
    """One query of a step: its passages as (doc id, language) and the teacher's score of each."""

    query: Query
    passages: tuple[tuple[str, str], ...]
    scores: tuple[float, ...]


def candidates(example: Example, sample_from: int) -> Candidates:
    """An example's first ``sample_from`` passages (positive, then negatives in teacher order) and scores."""
    docs = example.docs[:sample_from]
    return Candidates(example.query, tuple(d.doc_id for d in docs), tuple(example.scores[: len(docs)]))


def sample_passages(entry: Candidates, k: int, rng: random.Random) -> Candidates:
    """``k`` of the entry's candidates drawn uniformly without replacement (PLAID-X: shuffle, keep ``nway``)."""
    if k > len(entry.doc_ids):
        raise ValueError(f"query {entry.query.query_id}: {len(entry.doc_ids)} candidates, {k} asked for")
    picked = rng.sample(range(len(entry.doc_ids)), k)
    return Candidates(entry.query, tuple(entry.doc_ids[i] for i in picked), tuple(entry.scores[i] for i in picked))


def mix(entries: list[Candidates], languages: list[str], mixing: str, rng: random.Random) -> list[Entry]:
    """Give the passages of each entry their languages:

    - ``mix-passages``: each passage's language drawn independently (uniformly) from ``languages``;
    - ``mix-entries``: one language drawn per entry, shared by all its passages;
    - ``round-robin``: each entry repeated once per language, in ``languages`` order, consecutively.
    """
    if not languages:
        raise ValueError("no languages to mix")
    out = []
    for e in entries:
        if mixing == "mix-passages":
            out.append(Entry(e.query, tuple((d, rng.choice(languages)) for d in e.doc_ids), e.scores))
        elif mixing == "mix-entries":
            lang = rng.choice(languages)
            out.append(Entry(e.query, tuple((d, lang) for d in e.doc_ids), e.scores))
        elif mixing == "round-robin":
            out.extend(Entry(e.query, tuple((d, lang) for d in e.doc_ids), e.scores) for lang in languages)
        else:
            raise ValueError(f"unknown mixing {mixing!r}; one of {', '.join(MIXINGS)}")
    return out


def mtd_steps(pool: list[Candidates], settings: MTDRecipe, languages: list[str]):
    """The entries of each step: ``queries_per_batch`` entries (reshuffled each epoch, no repeats within a
    step), ``passages_per_query`` passages sampled for each, languages assigned by ``settings.mixing``."""
    rng = random.Random(settings.seed)
    for batch in epochs(pool, settings.queries_per_batch, settings.steps, settings.seed):
        sampled = [sample_passages(e, settings.passages_per_query, rng) for e in batch]
        yield mix(sampled, languages, settings.mixing, rng)


# ---------------------------------------------------------------------------------------------------
# Model plumbing
# ---------------------------------------------------------------------------------------------------


def parameter_groups(model: Any) -> dict[str, list[str]]:
    """Parameter names by freezable group: the model's own ``parameter_groups()`` when it has one, else
    by name (``embeddings``: ``.embeddings.``; ``adapters``: XMOD ``adapter_modules`` and ``adapter_layer_norm``)."""
    own = getattr(model, "parameter_groups", None)
    if callable(own):
        groups = own()
        return {g: sorted(_names(model, groups.get(g, []))) for g in FREEZABLE}
    names = [n for n, _ in model.named_parameters()]
    return {"embeddings": [n for n in names if ".embeddings." in f".{n}"],
            "adapters": [n for n in names if ".adapter_modules." in f".{n}" or ".adapter_layer_norm." in f".{n}"]}


def _names(model: Any, members: Any) -> list[str]:
    """Names of ``members`` (names, or parameter tensors) among ``model``'s parameters."""
    members = list(members)
    if all(isinstance(m, str) for m in members):
        return members
    ids = {id(m) for m in members}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def freeze(model: Any, groups: tuple[str, ...]) -> dict[str, int]:
    """Freeze ``groups`` (train everything else); returns parameters frozen per group."""
    found = parameter_groups(model)
    frozen = {name for g in groups for name in found[g]}
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    sizes = dict(model.named_parameters())
    return {g: sum(sizes[n].numel() for n in found[g]) for g in groups}


def load_model(system: Any, where: str) -> Any:
    """A fresh trainable copy of the system's ColBERT model on ``where`` (never a cached inference one)."""
    loader = getattr(system, "load_model", None)
    if callable(loader):
        return loader(where)
    from harness.checkpoints import resolve_model
    from systems.colbert import ColbertModel

    p = system.params
    kwargs = {"revision": getattr(p, "revision", None), "device": where}
    if hasattr(p, "marker_scheme"):
        kwargs["marker_scheme"] = p.marker_scheme
    return ColbertModel.load(resolve_model(p.model), **kwargs)


def _optimiser(model: Any, settings: ColbertXMRecipe | MTDRecipe):
    import torch
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    opt = torch.optim.AdamW(trainable, lr=settings.lr, eps=settings.adam_eps, weight_decay=settings.weight_decay)
    warmup = int(settings.warmup * settings.steps)
    if settings.schedule == "linear":
        return opt, get_linear_schedule_with_warmup(opt, warmup, settings.steps), trainable, warmup
    return opt, get_constant_schedule_with_warmup(opt, warmup), trainable, warmup


def _step(loss: torch.Tensor, opt, schedule, trainable, max_grad_norm: float | None) -> None:
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    opt.step()
    schedule.step()


def _check_finite(loss: torch.Tensor, step: int) -> None:
    import torch

    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss is {float(loss)} at step {step}")


def _summary(losses: list[float]) -> dict[str, float]:
    k = min(10, max(1, len(losses) // 4))
    return {"loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k}


# ---------------------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------------------


def train(system: Any, data: TrainingData, params: Any, out: Path) -> dict[str, Any]:
    """Run ``params``' recipe from ``system``'s checkpoint on ``data`` and save the result in ``out``
    (a folder the system's loader reads: `System.with_checkpoint`). Returns facts: per-step losses,
    trainable and frozen parameter counts, steps, seconds."""
    if isinstance(params, dict):
        params = ColbertTrainParams(**params)
    if isinstance(params, ColbertXMRecipe):
        return train_colbert_xm(system, data, params, out)
    if isinstance(params, MTDRecipe):
        return train_mtd(system, data, params, out)
    if isinstance(params, AddLanguageRecipe):
        return train_add_language(system, data, params, out)
    raise TypeError(f"not a late-interaction recipe: {type(params).__name__}")


def train_colbert_xm(system: Any, data: TrainingData, settings: ColbertXMRecipe, out: Path,
                     model: Any = None) -> dict[str, Any]:
    """The ColBERT-XM recipe (module docstring). ``model``: train this one instead of loading the system's."""
    import torch

    from harness.training import autocast, device

    where = device(settings.device)
    if model is None:
        model = load_model(system, where)
    torch.manual_seed(settings.seed)
    lang = settings.language
    examples = data.examples(lang, settings.negatives, settings.seed)
    usable = [e for e in examples if len(e.negatives) >= settings.negatives]
    if not usable:
        raise DataError(f"no {lang!r} training query has {settings.negatives} negatives")
    frozen = freeze(model, settings.freeze)
    opt, schedule, trainable, warmup = _optimiser(model, settings)
    nway = settings.negatives + 1
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    try:
        for step, batch in enumerate(data.batches(usable, settings.batch_size, settings.steps, settings.seed)):
            queries = [e.query.text for e in batch]
            docs = [d for e in batch for d in e.docs[:nway]]
            with autocast(where):
                Q, Qm = model.encode_queries(queries, [lang] * len(queries))
                D, Dm = model.encode_docs([d.contents for d in docs], [lang] * len(docs))
                scores = model.scores(Q, Qm, D, Dm)
            loss = colbert_xm_loss(scores.float(), nway, settings.in_batch)
            _check_finite(loss, step)
            _step(loss, opt, schedule, trainable, settings.max_grad_norm)
            losses.append(float(loss.detach()))
    finally:
        model.eval()
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return {"recipe": "colbert-xm", "steps": settings.steps, "warmup_steps": warmup, "losses": losses,
            **_summary(losses), "language": lang, "examples": len(usable),
            "skipped_examples": len(examples) - len(usable),
            "nway": nway, "in_batch": settings.in_batch,
            "trainable_parameters": sum(p.numel() for p in trainable), "frozen_parameters": frozen,
            "frozen_groups": list(settings.freeze), "seconds": round(seconds, 3), "device": where}


def teacher_candidates(query: Query, ranking: list[tuple[str, float]], docs: dict[str, Doc],
                       sample_from: int) -> Candidates:
    """The teacher's top ``sample_from`` passages for ``query`` (those in the split), with its scores:
    what a PLAID-X distillation triple lists (relevant or not; the teacher's scores are the labels)."""
    top = [(d, s) for d, s in ranking if d in docs][:sample_from]
    return Candidates(query, tuple(d for d, _ in top), tuple(float(s) for _, s in top))


def mtd_pool(data: TrainingData, settings: MTDRecipe, languages: list[str]) -> tuple[list[Candidates], int]:
    """The entries MTD samples from, one per training query of the query language: with a teacher run,
    its top ``sample_from`` passages and scores (`teacher_candidates`, as PLAID-X's triples); without
    one, `TrainingData.examples` with ``sample_from - 1`` random negatives, relevance grades as scores.
    Entries with fewer than ``passages_per_query`` candidates are dropped (returned count). Every
    passage must exist in every mixed language (parallel collections)."""
    lang = settings.query_language
    if lang not in data.languages:
        raise DataError(f"no training split in the query language {lang!r}; have "
                        f"{', '.join(data.languages)} (set query_language)")
    teacher = data.teacher
    if teacher is not None:
        docs = data.docs(lang)
        queries = [q for q in data.queries(lang) if q.query_id in teacher]
        entries = [teacher_candidates(q, teacher[q.query_id], docs, settings.sample_from) for q in queries]
    else:
        entries = [candidates(e, settings.sample_from)
                   for e in data.examples(lang, settings.sample_from - 1, settings.seed)]
    pool = [c for c in entries if len(c.doc_ids) >= settings.passages_per_query]
    if not pool:
        raise DataError(f"no training query has {settings.passages_per_query} candidate passages"
                        f"{' in the teacher run' if teacher is not None else ''}")
    for other in languages:
        docs = data.docs(other)
        missing = sorted({d for c in pool for d in c.doc_ids if d not in docs})
        if missing:
            raise DataError(f"the {other!r} training split lacks {len(missing)} candidate passages (e.g. "
                            f"{', '.join(missing[:3])}); MTD needs parallel collections with shared ids")
    return pool, len(entries) - len(pool)


def train_mtd(system: Any, data: TrainingData, settings: MTDRecipe, out: Path, model: Any = None) -> dict[str, Any]:
    """The MTD recipe (module docstring). ``model``: train this one instead of loading the system's."""
    import torch

    from harness.training import autocast, device

    languages = list(settings.languages or data.languages)
    unknown = [lang for lang in languages if lang not in data.languages]
    if unknown:
        raise DataError(f"no training split in {', '.join(unknown)}; have {', '.join(data.languages)}")
    if settings.language_consistency_loss and len(languages) < 2:
        raise ValueError("language_consistency_loss needs at least two languages")
    pool, skipped = mtd_pool(data, settings, languages)
    where = device(settings.device)
    if model is None:
        model = load_model(system, where)
    torch.manual_seed(settings.seed)
    docs = {lang: data.docs(lang) for lang in languages}
    frozen = freeze(model, settings.freeze)
    opt, schedule, trainable, warmup = _optimiser(model, settings)
    n = settings.passages_per_query
    losses: list[float] = []
    consistency: list[float] = []
    seen = {lang: 0 for lang in languages}
    started = time.perf_counter()
    model.train()
    try:
        for step, entries in enumerate(mtd_steps(pool, settings, languages)):
            passages = [(docs[lang][d], lang) for e in entries for d, lang in e.passages]
            for _, lang in passages:
                seen[lang] += 1
            qlang = settings.query_language
            with autocast(where):
                Q, Qm = model.encode_queries([e.query.text for e in entries], [qlang] * len(entries))
                D, Dm = model.encode_docs([doc.contents for doc, _ in passages], [lang for _, lang in passages])
                scores = model.scores(Q, Qm, D, Dm)
            b = len(entries)
            rows = torch.arange(b, device=scores.device)
            student = scores.float().view(b, b, n)[rows, rows]  # each query against its own passages
            teacher = torch.tensor([e.scores for e in entries], dtype=torch.float32, device=student.device)
            loss = kl_distillation_loss(student, teacher, settings.teacher_alpha)
            if settings.language_consistency_loss:
                extra = language_consistency(torch.nn.functional.log_softmax(student, dim=-1), len(languages))
                consistency.append(float(extra.detach()))
                loss = loss + extra
            _check_finite(loss, step)
            _step(loss, opt, schedule, trainable, settings.max_grad_norm)
            losses.append(float(loss.detach()))
    finally:
        model.eval()
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    facts = {"recipe": "mtd", "mixing": settings.mixing, "steps": settings.steps, "warmup_steps": warmup,
             "losses": losses, **_summary(losses), "languages": languages, "query_language": settings.query_language,
             "entries": len(pool), "skipped_entries": skipped, "passages_by_language": seen,
             "queries_per_step": settings.queries_per_batch * (len(languages) if settings.mixing == "round-robin"
                                                               else 1),
             "teacher": "run" if data.teacher_path is not None else "relevance grades",
             "trainable_parameters": sum(p.numel() for p in trainable), "frozen_parameters": frozen,
             "frozen_groups": list(settings.freeze), "seconds": round(seconds, 3), "device": where}
    if settings.language_consistency_loss:
        facts["consistency_losses"] = consistency
    return facts


def train_add_language(system: Any, data: TrainingData, settings: AddLanguageRecipe, out: Path) -> dict[str, Any]:
    """New adapters for ``settings.language`` by MLM on its training text (`systems.xmod`), written as a
    copy of the system's checkpoint folder."""
    from systems.colbert import checkpoint_folder
    from systems.xmod import add_language_to_checkpoint

    if settings.language not in data.languages:
        raise DataError(f"no training split in {settings.language!r} to learn its adapters from; have "
                        f"{', '.join(data.languages)}")
    name = getattr(system, "model_id", None) or system.params.model
    folder = checkpoint_folder(name, getattr(system.params, "revision", None))
    texts = data.texts(settings.language)
    started = time.perf_counter()
    facts = add_language_to_checkpoint(folder, out, texts, AddLanguageParams(**settings.model_dump(exclude={"recipe"})))
    return {"recipe": "add-language", **facts, "seconds": round(time.perf_counter() - started, 3)}
