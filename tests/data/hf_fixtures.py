"""Helpers of the ``hf:`` loader's tests: repositories staged in the real Hugging Face hub cache.

The layout is huggingface_hub's own: ``<cache>/datasets--<org>--<name>/blobs/<content hash>``, each
snapshot ``snapshots/<commit>/<path>`` a relative link to its blob, and ``refs/<branch>`` holding the
commit a branch points to. Blobs are named as the Hub names them: LFS files (here the data files) by
their SHA-256, other files (the README) by their git blob id. With ``HF_HUB_OFFLINE=1`` (set by
``tests/conftest.py``) ``huggingface_hub`` and ``datasets`` read exactly these files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def commit_of(name: str) -> str:
    """A 40-hex commit id, made from ``name`` so tests can tell their commits apart."""
    return hashlib.sha1(name.encode()).hexdigest()


def repo_folder(cache: Path, repo: str) -> Path:
    return cache / f"datasets--{repo.replace('/', '--')}"


def stage(cache: Path, repo: str, files: Mapping[str, str | bytes], commit: str, ref: str | None = "main",
          link: bool = True) -> Path:
    """``files`` (path in the repository → content) as the snapshot ``commit`` of ``repo``; ``ref``
    (a branch) points at it. ``link=False`` writes copies instead of links to blobs (a cache made
    without symlinks). Returns the snapshot folder."""
    root = repo_folder(cache, repo)
    snapshot = root / "snapshots" / commit
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        lfs = not name.endswith(".md")
        blob_id = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = root / "blobs" / blob_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        path = snapshot / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        if link:
            path.symlink_to(os.path.relpath(blob, path.parent))
        else:
            path.write_bytes(data)
    if ref:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / ref).write_text(commit)
    return snapshot


def parquet(rows: Sequence[Mapping[str, object]]) -> bytes:
    """Rows as a parquet file (columns in the order of the first row)."""
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows)), out)
    return out.getvalue()


def jsonl(rows: Sequence[Mapping[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def readme(configs: Mapping[str, Mapping[str, str]]) -> str:
    """A dataset card whose ``configs:`` declare each subset's splits (split → path pattern), as
    ``push_to_hub`` writes them."""
    entries = [{"config_name": name, "data_files": [{"split": split, "path": path} for split, path in splits.items()]}
               for name, splits in configs.items()]
    return "---\n" + yaml.safe_dump({"configs": entries}, sort_keys=False) + "---\n# a test repository\n"


def mteb_files(subsets: Mapping[str, Mapping[str, Sequence[Mapping[str, object]]]], split: str) -> dict[str, str | bytes]:
    """An MTEB-style repository: per subset ``<s>-corpus``, ``<s>-queries`` and ``<s>-qrels``, each one
    parquet file of split ``split`` (``subsets``: subset → {"corpus"|"queries"|"qrels": rows})."""
    files: dict[str, str | bytes] = {}
    configs = {}
    for subset, roles in subsets.items():
        for role, rows in roles.items():
            name = f"{subset}-{role}"
            configs[name] = {split: f"{name}/{split}-*"}
            files[f"{name}/{split}-00000-of-00001.parquet"] = parquet(rows)
    files["README.md"] = readme(configs)
    return files


CORPUS = [{"id": "d1", "title": "Alpha", "text": "the first document"},
          {"id": "d2", "title": "", "text": "the second document"},
          {"id": "d3", "title": None, "text": "the third document"}]
QUERIES = [{"id": "q1", "text": "first?"}, {"id": "q2", "text": "second?"}, {"id": "q3", "text": "unjudged"}]
QRELS = [{"query-id": "q1", "corpus-id": "d1", "score": 1}, {"query-id": "q2", "corpus-id": "d2", "score": 2},
         {"query-id": "q2", "corpus-id": "d3", "score": 0}]
TOY = {"corpus": CORPUS, "queries": QUERIES, "qrels": QRELS}
"""One small collection; ``mteb_files({"en": TOY, ...}, "dev")`` makes a repository of it."""
