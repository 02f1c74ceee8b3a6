"""Sharded indexing: which documents a shard holds, and the unsharded build as one shard merged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.data.base import Dataset, Doc
    from harness.system.base import Shardable


def check_shard(shard: int, shards: int) -> None:
    """A shard number must be one of ``0 … shards - 1``."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")


def shard_docs(dataset: Dataset, shard: int, shards: int) -> Iterator[Doc]:
    """The documents of one shard: every ``shards``-th document, starting at position ``shard``."""
    check_shard(shard, shards)
    for position, doc in enumerate(dataset.docs()):
        if position % shards == shard:
            yield doc


def index_in_one_shard(system: Shardable, dataset: Dataset, out: Path) -> dict[str, Any]:
    """Index ``dataset`` the way a sharded build does, as one shard holding every document merged
    into ``out``; the shard's working folder, the system's ``shard_folder``, is removed afterwards."""
    system.index_shard(dataset, 0, 1, out)
    info = system.merge_shards(dataset, [out], out)
    shutil.rmtree(out / system.shard_folder)
    return info
