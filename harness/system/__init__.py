"""Systems: the interface every family implements, the catalogue of names, and the wrappers
(passages, sharding) that work on any system. Imports no model code: `system_class` imports the
one module a catalogue row names."""

from harness.system.base import (
    Params,
    Shardable,
    System,
    SystemConfigError,
    Trainable,
    build_system,
    catalog_entry,
    system_class,
    system_params,
    train_params,
    trainable,
)
from harness.system.sharding import index_in_one_shard, shard_docs

__all__ = ["Params", "Shardable", "System", "SystemConfigError", "Trainable", "build_system", "catalog_entry",
           "index_in_one_shard", "shard_docs", "system_class", "system_params", "train_params",
           "trainable"]
