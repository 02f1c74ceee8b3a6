"""The one training loop every recipe runs: device, mixed precision, freezing, AdamW and its
schedule, gradient clipping, and one schema of facts.

A recipe is a batch stream and a loss: `fit` does the rest. The optimiser is AdamW over the
parameters left trainable (`freeze` / `set_trainable`), with linear warm-up for a fraction of the
steps followed by linear decay (or a constant rate). On CUDA the loss runs under autocast (bf16
by default, fp16 with a gradient scaler); on CPU everything is fp32.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import torch
    from torch import nn

Batch = TypeVar("Batch")

FREEZABLE = ("embeddings", "adapters")
"""Parameter groups a recipe can freeze by name (`parameter_groups`)."""


@dataclass(frozen=True)
class Optimiser:
    """AdamW and its learning-rate schedule: ``warmup_steps`` of linearly rising rate (each recipe
    says how it rounds its warm-up fraction), then linear decay to 0 over the rest of ``steps``
    (``linear``) or the peak rate (``constant``). ``precision``
    is the autocast dtype on CUDA (CPU always runs fp32); ``max_grad_norm`` None: no clipping."""

    lr: float
    steps: int
    warmup_steps: int = 0
    weight_decay: float = 0.01
    eps: float = 1e-8
    schedule: Literal["linear", "constant"] = "linear"
    max_grad_norm: float | None = None
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"


def device(requested: str = "auto") -> str:
    """``cuda`` when asked for or (``auto``) available, else ``cpu``."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def autocast(device_name: str, precision: str = "bf16") -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on CUDA (the papers' mixed precision); a no-op on CPU or for fp32."""
    import torch

    if not str(device_name).startswith("cuda") or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def set_trainable(model: nn.Module, trainable: Callable[[str], bool]) -> dict[str, int]:
    """Train the parameters whose name ``trainable`` accepts, freeze the rest; returns both counts."""
    counts = {"trainable": 0, "frozen": 0}
    for name, parameter in model.named_parameters():
        keep = trainable(name)
        parameter.requires_grad_(keep)
        counts["trainable" if keep else "frozen"] += parameter.numel()
    return counts


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """Parameter names by freezable group: the model's own ``parameter_groups()`` when it has one
    (names or tensors), else by name (``embeddings``: ``.embeddings.``; ``adapters``: XMOD's
    ``adapter_modules`` and ``adapter_layer_norm``)."""
    own = getattr(model, "parameter_groups", None)
    if callable(own):
        groups = own()
        return {g: sorted(_names(model, groups.get(g, []))) for g in FREEZABLE}
    names = [n for n, _ in model.named_parameters()]
    return {"embeddings": [n for n in names if ".embeddings." in f".{n}"],
            "adapters": [n for n in names if ".adapter_modules." in f".{n}" or ".adapter_layer_norm." in f".{n}"]}


def _names(model: nn.Module, members: Iterable[Any]) -> list[str]:
    members = list(members)
    if all(isinstance(m, str) for m in members):
        return members
    ids = {id(m) for m in members}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def freeze(model: nn.Module, groups: Iterable[str]) -> dict[str, int]:
    """Freeze the named `parameter_groups` and train everything else; returns parameters frozen per group."""
    groups = tuple(groups)
    unknown = [g for g in groups if g not in FREEZABLE]
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}; known: {', '.join(FREEZABLE)}")
    found = parameter_groups(model)
    frozen = {name for g in groups for name in found[g]}
    set_trainable(model, lambda name: name not in frozen)
    sizes = dict(model.named_parameters())
    return {g: sum(sizes[n].numel() for n in found[g]) for g in groups}


def losses_summary(losses: list[float]) -> dict[str, float]:
    """Mean loss over the first and the last ``min(10, steps/4)`` steps."""
    k = min(10, max(1, len(losses) // 4))
    return {"loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k}


def fit(model: nn.Module, batches: Iterable[Batch], loss: Callable[[Batch], torch.Tensor], settings: Optimiser,
        where: str) -> dict[str, Any]:
    """Train ``model``'s trainable parameters on ``loss`` of each batch, one optimiser step per batch.

    Leaves ``model`` in the mode it had. Raises `FloatingPointError` at the first non-finite loss.
    Returns the facts every recipe records: steps, warm-up steps, per-step losses with their
    first/last summary, trainable parameters, device, precision and seconds.
    """
    import torch
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    opt = torch.optim.AdamW(trainable, lr=settings.lr, eps=settings.eps, weight_decay=settings.weight_decay)
    if settings.schedule == "linear":
        schedule = get_linear_schedule_with_warmup(opt, settings.warmup_steps, settings.steps)
    else:
        schedule = get_constant_schedule_with_warmup(opt, settings.warmup_steps)
    cuda = str(where).startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and settings.precision == "fp16")
    losses: list[float] = []
    was_training = model.training
    started = time.perf_counter()
    model.train()
    try:
        for step, batch in enumerate(batches):
            with autocast(where, settings.precision):
                value = loss(batch)
            if not torch.isfinite(value):
                raise FloatingPointError(f"training loss is {float(value.detach())} at step {step}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(value).backward()
            if settings.max_grad_norm is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            schedule.step()
            losses.append(float(value.detach()))
    finally:
        model.train(was_training)
    return {"steps": len(losses), "warmup_steps": settings.warmup_steps, "losses": losses, **losses_summary(losses),
            "trainable_parameters": sum(p.numel() for p in trainable), "device": str(where),
            "precision": settings.precision if cuda else "fp32", "seconds": round(time.perf_counter() - started, 3)}
