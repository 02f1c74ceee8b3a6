"""The System protocol (train / index / retrieve) and the registry of systems.

A system family is a class with a pydantic ``Params`` model, registered under a name with
`register_system`. Suites configure systems from YAML (``system: bm25``, ``params: {...}``); unknown
or ill-typed params are errors. A system's identity is its name, every param (defaults filled in)
and its code version, so any setting that changes output changes every downstream record id.
Params named in ``retrieve_params`` change only retrieval, so indexes are shared across them.
"""

from __future__ import annotations

import importlib
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness import catalog
from harness.code import code_version
from harness.data.base import Dataset, Doc, Query
from harness.runs import Run
from harness.training import TrainingData
from harness.validation import one_line


class SystemConfigError(ValueError):
    """A system name or params that the registry cannot build."""


class Params(BaseModel):
    """Base for system params: immutable, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class System(ABC):
    """One retrieval system. ``index`` writes into ``out``; ``retrieve`` reads what it wrote."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    retrieve_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Params) -> None:
        self.params = params

    @classmethod
    def code_version(cls) -> str:
        """Harness version plus a hash of every file the system's module reaches (`harness.code`)."""
        return code_version(cls.__module__)

    def identity(self) -> dict[str, Any]:
        return {"system": self.name, "params": self.identity_params(), "code": self.code_version()}

    def index_identity(self, dataset: Dataset) -> dict[str, Any]:
        """What determines the index: everything but the retrieve-only params, plus the data."""
        params = {k: v for k, v in self.identity_params().items() if k not in self.retrieve_params}
        return {"system": self.name, "params": params, "code": self.code_version(), "dataset": dataset.fingerprint,
                **self.extra_index_identity(dataset)}

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        """Settings outside params that shape the index (analyzers, checkpoint revisions)."""
        return {}

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Do the per-document part of indexing for shard ``shard`` of ``shards`` (see `shard_docs`)."""
        raise NotImplementedError(f"system {self.name!r} cannot index in shards")

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """Build the index in ``out`` from shard outputs; the result equals an unsharded `index`."""
        raise NotImplementedError(f"system {self.name!r} cannot index in shards")

    TrainParams: ClassVar[type[Params]] = Params
    """Settings of the system's training recipe (``train.params`` in a suite)."""
    checkpoint_param: ClassVar[str] = "model"
    """The param naming the checkpoint a trained system loads instead of its default."""
    origin: str | None = None
    """Where a trained checkpoint came from (``train:<record id>``); replaces its path in the identity."""

    def train(self, data: TrainingData, params: Params, out: Path) -> dict[str, Any]:
        """Train from this system's checkpoint on ``data``; save into ``out`` a checkpoint that
        `with_checkpoint` loads. Returns facts (per-step losses, trainable parameter counts)."""
        raise NotImplementedError(f"system {self.name!r} has no training recipe")

    @classmethod
    def trainable(cls) -> bool:
        """Whether the family has a training recipe."""
        return cls.train is not System.train

    def tiny(self, data: TrainingData, out: Path) -> System:
        """Write into ``out`` a tiny randomly initialised checkpoint in this system's real on-disk
        layout (tokenizer trained on ``data``'s text) and return the system loading it: offline
        demos and tests train from it."""
        raise NotImplementedError(f"system {self.name!r} cannot build a tiny checkpoint")

    def with_checkpoint(self, folder: Path, origin: str) -> System:
        """The same system loading the checkpoint in ``folder``; its identity names ``origin``, not the path."""
        params = self.params.model_copy(update={self.checkpoint_param: str(folder)})
        system = type(self)(params)
        system.origin = origin
        return system

    def identity_params(self) -> dict[str, Any]:
        """Params as they enter identities: a trained checkpoint is named by its origin, not its path."""
        params = self.params.model_dump(mode="json")
        if self.origin is not None:
            params[self.checkpoint_param] = self.origin
        return params

    shard_folder: ClassVar[str] = "shard"
    """Where `index_shard` writes inside its output folder; `index` removes it after merging."""

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        """Build the index into ``out``; return facts about it (sizes, counts).

        By default one shard holding every document, merged: the same path a sharded build takes.
        """
        self.index_shard(dataset, 0, 1, out)
        info = self.merge_shards(dataset, [out], out)
        shutil.rmtree(out / self.shard_folder)
        return info

    def open(self, index: Path) -> Any:
        """Load what searching needs from ``index`` (a searcher, vectors), once per session."""
        return index

    def close(self, searcher: Any) -> None:
        """Release what `open` acquired."""

    @abstractmethod
    def encode_queries(self, queries: list[Query]) -> list[Any]:
        """The system's representation of each query (analysed terms, vectors), in order."""

    @abstractmethod
    def search(self, searcher: Any, queries: list[Query], encoded: list[Any], k: int) -> Run:
        """Top-``k`` results per query for already encoded queries."""

    def retrieve(self, queries: list[Query], index: Path, k: int) -> Run:
        """Top-``k`` results per query from the index in ``index``: encode, then search."""
        searcher = self.open(index)
        try:
            return self.search(searcher, queries, self.encode_queries(queries), k)
        finally:
            self.close(searcher)


def shard_docs(dataset: Dataset, shard: int, shards: int) -> Iterator[Doc]:
    """The documents of one shard: every ``shards``-th document, starting at position ``shard``."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    for position, doc in enumerate(dataset.docs()):
        if position % shards == shard:
            yield doc


_SYSTEMS: dict[str, type[System]] = {}
_PREFIXES: dict[str, type[System]] = {}


def register_system(name: str, prefix: bool = False) -> Callable[[type[System]], type[System]]:
    """Register a system family under ``name`` (a row of `harness.catalog`); with ``prefix``, names
    ``name:<model>`` build it with ``params.model = <model>`` (e.g. ``st:<model id or path>``)."""

    def register(cls: type[System]) -> type[System]:
        table = _PREFIXES if prefix else _SYSTEMS
        if name in table:
            raise ValueError(f"system {name!r} registered twice")
        cls.name = name
        table[name] = cls
        return cls

    return register


def catalog_names() -> list[str]:
    """Every system name of the catalogue, prefixes shown as ``prefix:<model>``."""
    return sorted([*catalog.SYSTEMS, *(f"{p}:<model>" for p in catalog.PREFIXES)])


def catalog_entry(name: str) -> catalog.Entry:
    """The catalogue row of ``name``; an unknown name is a `SystemConfigError` listing the known ones."""
    entry = catalog.entry(name)
    if entry is None:
        raise SystemConfigError(f"unknown system {name!r}; registered: {', '.join(catalog_names())}")
    return entry


def registered_systems() -> dict[str, type[System]]:
    """Every system family (importing each module of the catalogue): plain names, and prefixes
    shown as ``prefix:<model>``."""
    return {name: system_class(name) for name in catalog_names()}


def system_class(name: str) -> type[System]:
    """The class a system name builds, importing only the module the catalogue names for it."""
    importlib.import_module(catalog_entry(name).module)
    prefix, _, _ = name.partition(":")
    cls = _SYSTEMS.get(name) or (_PREFIXES.get(prefix) if name not in catalog.SYSTEMS else None)
    if cls is None:
        raise SystemConfigError(f"module {catalog_entry(name).module} does not register system {name!r}")
    return cls


def _validated(model: type[Params], values: dict[str, Any], what: str) -> Params:
    try:
        return model(**values)
    except ValidationError as e:
        raise SystemConfigError(f"bad {what}: {one_line(e, model, 'param')}") from None


def system_params(name: str, params: dict[str, Any] | None = None) -> Params:
    """``params`` validated against the system's ``Params`` (a ``prefix:<model>`` name fills in
    ``model``); an unknown or ill-typed param is a one-line `SystemConfigError` naming it."""
    cls = system_class(name)
    values = dict(params or {})
    if name not in _SYSTEMS:
        values["model"] = name.partition(":")[2]
    return _validated(cls.Params, values, f"params for system {name!r}")


def train_params(name: str, params: dict[str, Any] | None = None) -> Params:
    """``params`` validated against the settings of the system's training recipe (``TrainParams``)."""
    cls = system_class(name)
    if not cls.trainable():
        raise SystemConfigError(f"system {name!r} has no training recipe")
    return _validated(cls.TrainParams, dict(params or {}), f"train params for system {name!r}")


def build_system(name: str, params: dict[str, Any] | None = None) -> System:
    """Instantiate the system ``name`` with ``params`` validated against its model."""
    return system_class(name)(system_params(name, params))
