"""The System protocol (train / index / retrieve) and the registry of systems.

A system family is a class with a pydantic ``Params`` model, registered under a name with
`register_system`. Suites configure systems from YAML (``system: bm25``, ``params: {...}``); unknown
or ill-typed params are errors. A system's identity is its name, every param (defaults filled in)
and its code version, so any setting that changes output changes every downstream record id.
Params named in ``retrieve_params`` change only retrieval, so indexes are shared across them.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness import __version__
from harness.data.base import Dataset, Doc, Query
from harness.runs import Run
from harness.training import TrainingData


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
    resources: ClassVar[dict[str, int]] = {"mem_mb": 4000}
    """Snakemake resources of the index and shard jobs (``gpu: 1`` for systems that want one)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    code_modules: ClassVar[tuple[str, ...]] = ()
    """Modules besides the system's own whose code shapes its output (hashed into its identity)."""

    @classmethod
    def code_version(cls) -> str:
        """Harness version plus a hash of the system's module, its ``code_modules`` and the run rules."""
        return code_version(cls.__module__, *cls.code_modules, "harness.runs")

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
    """Register a system family under ``name``; with ``prefix``, names ``name:<model>`` build it with
    ``params.model = <model>`` (e.g. ``st:<model id or path>``)."""

    def register(cls: type[System]) -> type[System]:
        table = _PREFIXES if prefix else _SYSTEMS
        if name in table:
            raise ValueError(f"system {name!r} registered twice")
        cls.name = name
        table[name] = cls
        return cls

    return register


def _load_families() -> None:
    import systems  # noqa: F401  (importing the package registers every family)


def registered_systems() -> dict[str, type[System]]:
    """Every system family: plain names, and prefixes shown as ``prefix:<model>``."""
    _load_families()
    return dict(sorted({**_SYSTEMS, **{f"{p}:<model>": cls for p, cls in _PREFIXES.items()}}.items()))


def system_class(name: str) -> type[System]:
    """The class a system name builds: a registered name, or ``prefix:<model>``."""
    _load_families()
    if name in _SYSTEMS:
        return _SYSTEMS[name]
    prefix, sep, model = name.partition(":")
    if sep and model and prefix in _PREFIXES:
        return _PREFIXES[prefix]
    raise SystemConfigError(f"unknown system {name!r}; registered: {', '.join(registered_systems())}")


def build_system(name: str, params: dict[str, Any] | None = None) -> System:
    """Instantiate the system ``name`` with ``params`` validated against its model."""
    cls = system_class(name)
    params = dict(params or {})
    if name not in _SYSTEMS:
        params["model"] = name.partition(":")[2]
    try:
        return cls(cls.Params(**params))
    except ValidationError as e:
        raise SystemConfigError(f"bad params for system {name!r}: {e}") from None


def code_version(*modules: str) -> str:
    """Harness version plus a hash of the named modules' source."""
    h = hashlib.sha256()
    for name in modules:
        h.update(inspect.getsource(importlib.import_module(name)).encode())
    return f"{__version__}+{h.hexdigest()[:12]}"
