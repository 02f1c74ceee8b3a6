"""The System interface (index / retrieve), its optional abilities, and building systems by name.

A system family is a class with a pydantic ``Params`` model; `harness.system.catalog` names it for
each system name, with the defaults of that name. Suites configure systems from YAML (``system:
bm25``, ``params: {...}``); unknown or ill-typed params are errors. A system's identity is its name,
every param (defaults filled in) and its code version, so any setting that changes output changes
every downstream record id. Params named in ``retrieve_params`` change only retrieval, so indexes
are shared across them. Training and sharded indexing are optional abilities: the protocols
`Trainable` and `Shardable`, which a family has or has not.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, get_args, get_origin, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.code import code_version
from harness.device import FAISS_MISSING
from harness.system import catalog
from harness.validation import one_line

if TYPE_CHECKING:
    from harness.data.base import Dataset, Query
    from harness.runs import Run
    from harness.training import TrainingData


class SystemConfigError(ValueError):
    """A system name or params that the catalogue cannot build."""


class Params(BaseModel):
    """Base for system params: immutable, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class System(ABC):
    """One retrieval system, named ``name`` in the catalogue. ``index`` writes into ``out``;
    ``retrieve`` reads what it wrote."""

    Params: ClassVar[type[Params]] = Params
    retrieve_params: ClassVar[frozenset[str]] = frozenset()
    checkpoint_param: ClassVar[str] = "model"
    """The param naming the checkpoint a trained system loads instead of its default."""

    def __init__(self, params: Params, name: str) -> None:
        self.params = params
        self.name = name
        self.origin: str | None = None
        """Where a trained checkpoint came from (``train:<record id>``); replaces its path in the identity."""

    @property
    def description(self) -> str:
        return catalog_entry(self.name).description

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

    def with_checkpoint(self, folder: Path, origin: str) -> System:
        """The same system loading the checkpoint in ``folder``; its identity names ``origin``, not the path."""
        params = self.params.model_copy(update={self.checkpoint_param: str(folder)})
        system = type(self)(params, self.name)
        system.origin = origin
        return system

    def identity_params(self) -> dict[str, Any]:
        """Params as they enter identities: a trained checkpoint is named by its origin, not its path."""
        params = self.params.model_dump(mode="json")
        if self.origin is not None:
            params[self.checkpoint_param] = self.origin
        return params

    @abstractmethod
    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        """Build the index into ``out``; return facts about it (sizes, counts)."""

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


@runtime_checkable
class Shardable(Protocol):
    """A system whose index is built in shards (one job each) and then merged (`harness.system.sharding`)."""

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Do the per-document part of indexing for shard ``shard`` of ``shards`` (see `shard_docs`)."""

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """Build the index in ``out`` from shard outputs; the result equals an unsharded `index`."""


@runtime_checkable
class Trainable(Protocol):
    """A system with a training recipe; its class also names the recipe's settings as ``TrainParams``
    (a pydantic model, or an ``Annotated`` union of them discriminated by a field)."""

    def train(self, data: TrainingData, params: Any, out: Path) -> dict[str, Any]:
        """Train from this system's checkpoint on ``data``; save into ``out`` a checkpoint that
        `System.with_checkpoint` loads. Returns facts (`harness.training.loop.fit`'s and the recipe's)."""

    def tiny(self, data: TrainingData, out: Path) -> System:
        """Write into ``out`` a tiny randomly initialised checkpoint in this system's real on-disk
        layout (tokenizer trained on ``data``'s text) and return the system loading it."""


def catalog_entry(name: str) -> catalog.Entry:
    """The catalogue row of ``name``; an unknown name is a `SystemConfigError` listing the known ones."""
    entry = catalog.entry(name)
    if entry is None:
        raise SystemConfigError(f"unknown system {name!r}; registered: {', '.join(catalog.names())}")
    return entry


def system_class(name: str) -> type[System]:
    """The class a system name builds, importing only the module its catalogue row names; a library
    it needs that the installed extras lack is a one-line `SystemConfigError` naming the extras."""
    row = catalog_entry(name)
    try:
        module = importlib.import_module(row.module)
    except ModuleNotFoundError as e:  # a faiss import guarded by `require_faiss` or not
        if e.name != "faiss":
            raise
        raise SystemConfigError(f"system {name!r}: {FAISS_MISSING}") from None
    cls = getattr(module, row.class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise SystemConfigError(f"catalogue row {name!r}: {row.target} is not a System class")
    return cls


def trainable(name: str) -> bool:
    """Whether the system ``name`` has a training recipe."""
    return issubclass(system_class(name), Trainable)


def _member(model: Any, values: dict[str, Any], what: str) -> type[BaseModel]:
    """The model ``values`` validate against: ``model`` itself, or for a discriminated union
    (``Annotated[A | B, Field(discriminator=...)]``) the member its discriminator value names."""
    if get_origin(model) is not Annotated:
        return model
    union, info = get_args(model)[:2]
    key = info.discriminator
    members = {m.model_fields[key].default: m for m in get_args(union)}
    tag = values.get(key)
    if tag not in members:
        raise SystemConfigError(f"bad {what}: {key} {tag!r} is not one of {', '.join(map(repr, members))}")
    return members[tag]


def _validated(model: Any, values: dict[str, Any], what: str) -> Any:
    member = _member(model, values, what)
    try:
        return member(**values)
    except ValidationError as e:
        raise SystemConfigError(f"bad {what}: {one_line(e, member, 'param')}") from None


def system_params(name: str, params: dict[str, Any] | None = None) -> Params:
    """``params`` over the catalogue row's defaults, validated against the system's ``Params`` (a
    ``prefix:<model>`` name fills in ``model``); a bad param is a one-line `SystemConfigError` naming it."""
    row, model = catalog_entry(name), system_class(name).Params
    values = {**row.defaults, **(params or {})}
    if name not in catalog.SYSTEMS:
        values["model"] = name.partition(":")[2]
    for key, field in model.model_fields.items():  # pin the hub commit of a checkpoint the row knows
        revision = "revision" if key == "model" else f"{key}_revision"
        hub_id = values.get(key, field.default)
        if revision in model.model_fields and revision not in values and hub_id in row.revisions:
            values[revision] = row.revisions[hub_id]
    return _validated(model, values, f"params for system {name!r}")


def train_params(name: str, params: dict[str, Any] | None = None) -> Any:
    """``params`` validated against the system's training settings (``TrainParams``), over the row's
    ``train`` defaults when ``params`` keep the row's recipe."""
    if not trainable(name):
        raise SystemConfigError(f"system {name!r} has no training recipe")
    row, values = catalog_entry(name), dict(params or {})
    if values.get("recipe", row.train.get("recipe")) == row.train.get("recipe"):
        values = {**row.train, **values}
    return _validated(system_class(name).TrainParams, values, f"train params for system {name!r}")


def build_system(name: str, params: dict[str, Any] | None = None) -> System:
    """Instantiate the system ``name`` with ``params`` validated against its model."""
    return system_class(name)(system_params(name, params), name)
