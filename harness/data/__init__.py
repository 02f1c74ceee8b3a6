"""Data layer: one `Dataset` abstraction, loaders registered by id scheme."""

from harness.data import beir, clef, hf, irds, synthetic, union, xquad  # noqa: F401  (registers the loaders)
from harness.data.base import DataError, Dataset, Doc, Qrels, Query
from harness.data.registry import check_dataset_id, load_dataset, parse_dataset_id, schemes

__all__ = ["DataError", "Dataset", "Doc", "Qrels", "Query", "check_dataset_id", "load_dataset", "parse_dataset_id",
           "schemes"]
