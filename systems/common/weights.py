"""Checkpoint weights on disk: which file layout a folder uses, and reading every tensor of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN)
"""Weight layouts in the order transformers looks for them: safetensors first."""


def weights_layout(folder: Path) -> str:
    """The weights file of a checkpoint folder (one of `WEIGHT_FILES`, safetensors first)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return name
    raise ValueError(f"{folder} has no weights: none of {', '.join(WEIGHT_FILES)}")


def read_weights(folder: Path, layout: str | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint in ``folder`` (``layout``: one of `WEIGHT_FILES`, found if None)."""
    import torch
    from safetensors.torch import load_file

    layout = layout or weights_layout(folder)
    if layout == SAFETENSORS:
        return load_file(folder / layout)
    if layout == SAFETENSORS_INDEX:
        index = json.loads((folder / layout).read_text(encoding="utf-8"))
        tensors: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(folder / shard))
        return tensors
    return torch.load(folder / layout, map_location="cpu", weights_only=True)
