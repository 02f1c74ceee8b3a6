"""`harness.training.loop`: the one loop every recipe runs, checked against the same steps written out in torch."""

from __future__ import annotations

import pytest
import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from harness.training.loop import (
    Optimiser,
    autocast,
    device,
    fit,
    freeze,
    losses_summary,
    parameter_groups,
    set_trainable,
)


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = torch.nn.Embedding(10, 4)
        self.adapter_modules = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.adapter_modules(self.embeddings(ids)))).squeeze(-1)


def batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randint(0, 10, (8,), generator=g), torch.randn(8, generator=g)) for _ in range(steps)]


def mse(model: Tiny):
    return lambda batch: torch.nn.functional.mse_loss(model(batch[0]), batch[1])


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_fit_takes_the_same_steps_as_adamw_with_its_schedule_written_out(schedule: str) -> None:
    settings = Optimiser(lr=0.05, steps=12, warmup_steps=3, weight_decay=0.01, eps=1e-6, schedule=schedule,
                         max_grad_norm=0.5)
    data = batches(settings.steps)
    ours = Tiny()
    facts = fit(ours, data, mse(ours), settings, "cpu")

    theirs = Tiny()
    opt = torch.optim.AdamW(theirs.parameters(), lr=0.05, eps=1e-6, weight_decay=0.01)
    lr = (get_linear_schedule_with_warmup(opt, 3, 12) if schedule == "linear"
          else get_constant_schedule_with_warmup(opt, 3))
    losses = []
    theirs.train()
    for ids, target in data:
        loss = torch.nn.functional.mse_loss(theirs(ids), target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(theirs.parameters()), 0.5)
        opt.step()
        lr.step()
        losses.append(float(loss.detach()))
    assert facts["losses"] == losses
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    assert facts["steps"] == 12 and facts["warmup_steps"] == 3 and facts["device"] == "cpu"
    assert facts["precision"] == "fp32" and facts["trainable_parameters"] == sum(p.numel() for p in ours.parameters())
    assert facts["loss_first"] == sum(losses[:3]) / 3 and facts["loss_last"] == sum(losses[-3:]) / 3


def test_fit_trains_only_what_is_left_trainable_and_restores_the_mode() -> None:
    model = Tiny()
    model.eval()
    frozen = freeze(model, ["embeddings", "adapters"])
    assert frozen == {"embeddings": 40, "adapters": 20}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    facts = fit(model, batches(5), mse(model), Optimiser(lr=0.1, steps=5), "cpu")
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"head.weight", "head.bias"} and facts["trainable_parameters"] == 5
    assert not model.training


def test_fit_stops_at_a_non_finite_loss_and_refuses_a_frozen_model() -> None:
    model = Tiny()
    with pytest.raises(FloatingPointError, match="at step 0"):
        fit(model, batches(2), lambda batch: mse(model)(batch) * float("nan"), Optimiser(lr=0.1, steps=2), "cpu")
    set_trainable(model, lambda name: False)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        fit(model, batches(2), mse(model), Optimiser(lr=0.1, steps=2), "cpu")


def test_groups_freezing_and_devices() -> None:
    model = Tiny()
    assert parameter_groups(model) == {"embeddings": ["embeddings.weight"],
                                       "adapters": ["adapter_modules.weight", "adapter_modules.bias"]}
    assert parameter_groups(torch.nn.Sequential(model))["embeddings"] == ["0.embeddings.weight"]
    with pytest.raises(ValueError, match="unknown parameter groups"):
        freeze(model, ["heads"])
    assert set_trainable(model, lambda name: name.startswith("head")) == {"trainable": 5, "frozen": 60}
    assert device("cpu") == "cpu" and device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with autocast("cpu", "fp16"):
        assert not torch.is_autocast_enabled()
    assert losses_summary([4.0, 3.0, 2.0, 1.0]) == {"loss_first": 4.0, "loss_last": 1.0}
