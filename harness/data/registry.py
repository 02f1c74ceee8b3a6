"""Loaders registered by id pattern: ``scheme:path?key=value&...`` → a `Dataset`.

A loader module registers its scheme with `@loader("scheme")`; `load_dataset` parses the id once
and dispatches on the scheme, so adding a collection never touches an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from harness.data.base import DataError, Dataset

LoaderFn = Callable[[str, str, dict[str, str]], Dataset]
_LOADERS: dict[str, tuple[LoaderFn, str]] = {}


def loader(scheme: str, help: str) -> Callable[[LoaderFn], LoaderFn]:
    """Register ``fn(dataset_id, path, options)`` for ids ``scheme:path?options``."""

    def register(fn: LoaderFn) -> LoaderFn:
        if scheme in _LOADERS:
            raise ValueError(f"dataset scheme {scheme!r} registered twice")
        _LOADERS[scheme] = (fn, help)
        return fn

    return register


def parse_dataset_id(dataset_id: str) -> tuple[str, str, dict[str, str]]:
    """Split ``scheme:path?k=v&k2=v2`` into its parts."""
    scheme, sep, rest = dataset_id.partition(":")
    if not sep or not rest:
        raise DataError(f"dataset id {dataset_id!r} must look like 'scheme:path[?key=value&...]'")
    path, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    return scheme, path, options


def load_dataset(dataset_id: str) -> Dataset:
    """The dataset named by ``dataset_id`` (see `schemes` for what is registered)."""
    scheme, path, options = parse_dataset_id(dataset_id)
    if scheme not in _LOADERS:
        raise DataError(f"unknown dataset scheme {scheme!r} in {dataset_id!r}; known: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[scheme][0](dataset_id, path, options)


def schemes() -> dict[str, str]:
    """Registered schemes with their one-line help."""
    return {scheme: help for scheme, (_, help) in sorted(_LOADERS.items())}
