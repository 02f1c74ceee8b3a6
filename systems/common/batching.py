"""Batching texts for encoding: equal lengths together, so padding costs nothing and results do not
depend on what else is in a batch."""

from __future__ import annotations

from itertools import groupby


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Positions grouped into batches of equal length, longest first, at most ``batch_size`` each."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches = []
    for _, same in groupby(order, key=lengths.__getitem__):
        same = list(same)
        batches += [same[start : start + batch_size] for start in range(0, len(same), batch_size)]
    return batches
