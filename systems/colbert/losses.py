"""The late-interaction recipes' losses: pure functions on score tensors (`systems.colbert.train`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pairwise_loss(scores: torch.Tensor, nway: int) -> torch.Tensor:
    """ColBERTv1's pairwise softmax cross-entropy: ``scores`` [B, B·nway] of every query against every
    passage of the batch, passages query-major (query i's are columns i·nway … i·nway+nway-1, its
    positive first); each query's softmax runs over its own nway passages, the positive is the label."""
    import torch

    b = scores.shape[0]
    rows = torch.arange(b, device=scores.device)
    own = scores.view(b, b, nway)[rows, rows]  # [B, nway]
    return torch.nn.functional.cross_entropy(own, torch.zeros(b, dtype=torch.long, device=scores.device))


def in_batch_loss(scores: torch.Tensor, nway: int, own_negatives: bool = False) -> torch.Tensor:
    """ColBERTv2's in-batch softmax cross-entropy: each query's softmax runs over every passage of the
    batch, its positive (column i·nway) the label. ``own_negatives`` False (colbert-ai's
    ``compute_ib_loss``): the query's own hard negatives are left out of its softmax; True: they are in
    it, as the formula of seed 000 (eq. 8) reads."""
    import torch

    b = scores.shape[0]
    labels = torch.arange(b, device=scores.device) * nway
    if not own_negatives and nway > 1:
        keep = torch.ones_like(scores, dtype=torch.bool)
        for i in range(b):
            keep[i, i * nway + 1 : (i + 1) * nway] = False
        scores = scores[keep].view(b, -1)  # the positive keeps its column i·nway
    return torch.nn.functional.cross_entropy(scores, labels)


def colbert_xm_loss(scores: torch.Tensor, nway: int, in_batch: bool = True,
                    own_negatives: bool = False) -> torch.Tensor:
    """L_PAIR (+ L_IB): the ColBERT-XM objective on all-pairs ``scores`` [B, B·nway]."""
    loss = pairwise_loss(scores, nway)
    return loss + in_batch_loss(scores, nway, own_negatives) if in_batch else loss


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
