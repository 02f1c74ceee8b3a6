"""``HF_ColBERT`` checkpoints on disk: where a checkpoint's folder is, its ``artifact.metadata``, and
the ColBERT settings read from it.

Both families' checkpoints are ``HF_ColBERT`` folders (colbert-ai's, and hltcoe PLAID-X's fork of
it): ``config.json`` of the backbone (``architectures: ["HF_ColBERT"]``), weights holding the
backbone under its ``base_model_prefix`` (``roberta.``) plus ``linear.weight`` (hidden → dim, no
bias), the tokenizer, and ``artifact.metadata``, the JSON ColBERT config. Every ColBERT setting
comes from that file (`ColbertSettings`: maxlens, dim, marker tokens, punctuation masking, mask
attention, similarity, nbits); none is a constant here, and a key the file lacks is an error.
ColBERT-XM (``antoinelouis/colbert-xm``) is XMOD with per-language adapters in
``model.safetensors``; MTD (``hltcoe/plaidx-large-*``) is XLM-R large in ``pytorch_model.bin``
with ``[unused0]``/``[unused1]`` added to the tokenizer (ids 250002/250003).

The input scheme (``marker_scheme``, see `systems.colbert.model`) is the checkpoint's: an
``artifact.metadata`` key ``marker_scheme`` (which `ColbertModel.save` writes), else
``dot-placeholder`` (every colbert-ai release before PR #362 and every PLAID-X).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.checkpoints import resolve_model

MarkerScheme = Literal["dot-placeholder", "insert"]
MARKER_SCHEMES: tuple[str, ...] = ("dot-placeholder", "insert")
DEFAULT_SCHEME: MarkerScheme = "dot-placeholder"
"""The scheme of colbert-ai before PR #362 and of PLAID-X, for checkpoints that do not name theirs."""

METADATA = "artifact.metadata"
CONFIG = "config.json"
LINEAR = "linear.weight"
CHECKPOINT_FILES = ["*.json", METADATA, "*.safetensors", "*.bin", "*.model", "*.txt"]
"""Files fetched from the hub for a checkpoint (configs, tokenizer, weights, ColBERT metadata)."""


class ColbertSettings(BaseModel):
    """The ColBERT settings of a checkpoint, from its ``artifact.metadata`` (colbert-ai's names)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_maxlen: int = Field(ge=3)
    doc_maxlen: int = Field(ge=3)
    dim: int = Field(ge=1)
    query_token_id: str
    doc_token_id: str
    query_token: str = "[Q]"
    doc_token: str = "[D]"
    mask_punctuation: bool
    attend_to_mask_tokens: bool
    similarity: Literal["cosine", "l2"]
    nbits: int = Field(ge=1)
    marker_scheme: MarkerScheme
    marker_scheme_source: Literal["param", "metadata", "default"] = Field(
        description="where marker_scheme came from: the caller, the checkpoint's metadata, or the default")

    REQUIRED: ClassVar[tuple[str, ...]] = ("query_maxlen", "doc_maxlen", "dim", "query_token_id", "doc_token_id",
                                           "mask_punctuation", "attend_to_mask_tokens", "similarity", "nbits")

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], where: str, marker_scheme: str | None = None) -> ColbertSettings:
        """Settings from the (unwrapped) metadata dict; ``marker_scheme`` overrides the checkpoint's."""
        missing = [key for key in cls.REQUIRED if key not in metadata]
        if missing:
            raise ValueError(f"{where}: {METADATA} lacks {', '.join(missing)} (colbert-ai writes every ColBERT "
                             f"setting there; nothing is assumed)")
        if metadata.get("interaction", "colbert") != "colbert":
            raise ValueError(f"{where}: interaction {metadata['interaction']!r} is not supported (only 'colbert')")
        if marker_scheme is not None:
            scheme, source = marker_scheme, "param"
        elif "marker_scheme" in metadata:
            scheme, source = metadata["marker_scheme"], "metadata"
        else:
            scheme, source = DEFAULT_SCHEME, "default"
        if scheme not in MARKER_SCHEMES:
            raise ValueError(f"{where}: marker_scheme {scheme!r} is not one of {', '.join(MARKER_SCHEMES)}")
        fields = {key: metadata[key] for key in (*cls.REQUIRED, "query_token", "doc_token") if key in metadata}
        return cls(**fields, marker_scheme=scheme, marker_scheme_source=source)


def unwrap(metadata: dict[str, Any]) -> dict[str, Any]:
    """The config part of an ``artifact.metadata`` (colbert-ai accepts it at the top or under ``config``)."""
    return metadata["config"] if isinstance(metadata.get("config"), dict) else metadata


def read_metadata(folder: Path) -> dict[str, Any]:
    """The JSON of ``folder/artifact.metadata`` (an error naming the folder when absent or malformed)."""
    path = folder / METADATA
    if not path.is_file():
        raise ValueError(f"{folder} is not a ColBERT checkpoint: no {METADATA} (colbert-ai and PLAID-X keep the "
                         f"ColBERT settings there; a sentence-transformers or plain Hugging Face folder has none)")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: expected a JSON object")  # noqa: TRY004 (a malformed file, as the other errors)
    return metadata


def checkpoint_folder(name: str, revision: str | None = None) -> Path:
    """The local folder of a checkpoint: a folder, ``pkg:<module>``, or a hub id (fetched, or from the cache)."""
    resolved = resolve_model(name)
    path = Path(resolved)
    if path.is_dir():
        return path
    if path.exists() or resolved.startswith(("/", ".", "~")) or resolved.count("/") != 1:
        raise ValueError(f"{name}: no such checkpoint folder (and not a hub id 'owner/name')")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(resolved, revision=revision, allow_patterns=CHECKPOINT_FILES))
    except Exception as e:  # noqa: BLE001 (offline without a cache, unknown repo, bad revision: all one error)
        raise ValueError(f"{name}: not a local folder, and the hub checkpoint could not be fetched ({e})") from None


def checkpoint_metadata(name: str, revision: str | None = None) -> dict[str, Any]:
    """A checkpoint's ``artifact.metadata`` alone (from the hub without its weights)."""
    resolved = resolve_model(name)
    path = Path(resolved)
    if path.is_dir() or path.exists() or str(path).startswith(("/", ".", "~")) or str(name).count("/") != 1:
        return read_metadata(checkpoint_folder(name, revision))
    from huggingface_hub import hf_hub_download

    try:
        return read_metadata(Path(hf_hub_download(resolved, METADATA, revision=revision)).parent)
    except Exception as e:  # noqa: BLE001 (offline without a cache, unknown repo, no such file: all one error)
        raise ValueError(f"{name}: could not read its {METADATA} from the hub ({e})") from None


def checkpoint_settings(name: str, revision: str | None = None, marker_scheme: str | None = None) -> ColbertSettings:
    """A checkpoint's settings (with ``marker_scheme`` when given), read without loading its weights."""
    return ColbertSettings.from_metadata(unwrap(checkpoint_metadata(name, revision)), name, marker_scheme)
