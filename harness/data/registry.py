"""Loaders registered by id pattern: ``scheme:path?key=value&...`` → a `Dataset`.

A loader module registers its scheme with `@loader("scheme", help, check=...)`; `load_dataset` parses
the id once and dispatches on the scheme, so adding a collection never touches an if-chain. The
``check`` validates an id without reading any data (options, values, languages, local folders), so
`check_dataset_id` finds a bad id when a suite is loaded, before any job runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from harness.data.base import QRELS_WITHOUT_QUERIES, DataError, Dataset
from harness.languages import UnsupportedLanguage

LoaderFn = Callable[[str, str, dict[str, str]], Dataset]
CheckFn = Callable[[str, str, dict[str, str]], object]
"""``check(dataset_id, path, options)``: raise `DataError` (or `UnsupportedLanguage`) for an id the
loader would reject, reading no data; what it returns is ignored."""
_LOADERS: dict[str, tuple[LoaderFn, str, CheckFn]] = {}



def loader(scheme: str, help: str, *, check: CheckFn) -> Callable[[LoaderFn], LoaderFn]:
    """Register ``fn(dataset_id, path, options)`` for ids ``scheme:path?options``, with its ``check``."""

    def register(fn: LoaderFn) -> LoaderFn:
        if scheme in _LOADERS:
            raise ValueError(f"dataset scheme {scheme!r} registered twice")
        _LOADERS[scheme] = (fn, help, check)
        return fn

    return register


def parse_dataset_id(dataset_id: str) -> tuple[str, str, dict[str, str]]:
    """Split ``scheme:path?k=v&k2=v2`` into its parts."""
    scheme, sep, rest = dataset_id.partition(":")
    if not sep or not rest:
        raise DataError(f"dataset id {dataset_id!r} must look like 'scheme:path[?key=value&...]'")
    path, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise DataError(f"dataset id {dataset_id!r}: options must look like '?key=value&key2=value2'") from None
    return scheme, path, options


def check_qrels_option(dataset_id: str, options: dict[str, str]) -> None:
    """The shared ``qrels_without_queries`` option, where a loader takes it, has its one value."""
    if options.get(QRELS_WITHOUT_QUERIES, "drop") != "drop":
        raise DataError(f"{dataset_id}: {QRELS_WITHOUT_QUERIES} takes one value, drop; got {options[QRELS_WITHOUT_QUERIES]!r}")


def check_options(dataset_id: str, options: dict[str, str], known: Iterable[str]) -> None:
    """Every option of the id is one of ``known`` (and the shared ``qrels_without_queries`` has its value)."""
    known = tuple(known)
    unknown = set(options) - set(known)
    if unknown:
        raise DataError(f"{dataset_id}: unknown options {sorted(unknown)}; expected {', '.join(known)}")
    check_qrels_option(dataset_id, options)


def _parsed(dataset_id: str) -> tuple[str, str, dict[str, str]]:
    """`parse_dataset_id`, with the scheme known."""
    scheme, path, options = parse_dataset_id(dataset_id)
    if scheme not in _LOADERS:
        raise DataError(f"unknown dataset scheme {scheme!r} in {dataset_id!r}; known: {', '.join(sorted(_LOADERS))}")
    return scheme, path, options


def load_dataset(dataset_id: str) -> Dataset:
    """The dataset named by ``dataset_id`` (see `schemes` for what is registered)."""
    scheme, path, options = _parsed(dataset_id)
    return _LOADERS[scheme][0](dataset_id, path, options)


def check_dataset_id(dataset_id: str) -> None:
    """Raise a one-line `DataError` naming the id for an id its loader would reject, without reading
    the data: its scheme, option keys and values, languages and, for local data, the folders and
    files it names (see each scheme's check)."""
    scheme, path, options = _parsed(dataset_id)
    try:
        _LOADERS[scheme][2](dataset_id, path, options)
    except UnsupportedLanguage as e:
        raise DataError(f"{dataset_id}: {e}") from None


def schemes() -> dict[str, str]:
    """Registered schemes with their one-line help."""
    return {scheme: help for scheme, (_, help, _) in sorted(_LOADERS.items())}
