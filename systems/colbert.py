"""Late interaction: ColBERT-XM and MTD ColBERT-X over a PLAID index.

**Checkpoints.** Both are ``HF_ColBERT`` folders (colbert-ai's, and hltcoe PLAID-X's fork of it):
``config.json`` of the backbone (``architectures: ["HF_ColBERT"]``), weights holding the backbone
under its ``base_model_prefix`` (``roberta.``) plus ``linear.weight`` (hidden → dim, no bias), the
tokenizer, and ``artifact.metadata``, the JSON ColBERT config. `ColbertModel.load` reads every
ColBERT setting from that file (`ColbertSettings`: maxlens, dim, marker tokens, punctuation
masking, mask attention, similarity, nbits); none is a constant here, and a key the file lacks is
an error. ColBERT-XM (``antoinelouis/colbert-xm``) is XMOD with per-language adapters in
``model.safetensors``; MTD (``hltcoe/plaidx-large-*``) is XLM-R large in ``pytorch_model.bin``
with ``[unused0]``/``[unused1]`` added to the tokenizer (ids 250002/250003). `ColbertModel.save`
writes the layout it loaded, so a trained model loads back.

**Input schemes** (``marker_scheme``). Both checkpoints were trained with the one colbert-ai had
until PR #362 (Aug 2024) and PLAID-X still has (hltcoe/ColBERT-X ``query_tokenization.py``,
``doc_tokenization.py``): the text is prefixed with ``". "``, tokenised, and position 1 is
overwritten with the marker id. ``dot-placeholder`` reproduces it token for token, whatever the
checkpoint's tokenizer makes of the placeholder. XLM-R's cuts ``". "`` into ``▁`` and ``.``
(REFERENCE.md; PR #362: the placeholder is "not robust to tokenizers (e.g. xlm-roberta) that may
not tokenize that as 1 token"), so only the ``▁`` is overwritten and a stray ``.`` follows the
marker — kept, because the models saw it in training. The marker id is ``tokenizer.convert_tokens_to_ids(query_token_id)``, as both codebases:
ColBERT-XM's XLM-R tokenizer has no ``[unused0]``/``[unused1]`` and colbert-ai adds none, so [Q] and
[D] are both ``<unk>``; MTD's tokenizer carries them as added tokens, so its markers are distinct.
``insert`` is colbert-ai's scheme since PR #362: tokenise with ``max_length - 1``, then insert the
marker after ``<s>`` (no stray ``.``). The default is the checkpoint's: an ``artifact.metadata`` key
``marker_scheme`` (which `save` writes), else ``dot-placeholder`` (every colbert-ai release before
PR #362 and every PLAID-X). Queries are padded to ``query_maxlen`` and the pads replaced by
``<mask>`` (attended when ``attend_to_mask_tokens``); documents are truncated to ``doc_maxlen``.

**Encoding** (colbert-ai's ``ColBERT.query``/``doc``). Token states → linear → L2 normalisation;
queries keep every position (pads become masks); documents drop padding and, with
``mask_punctuation``, the tokens colbert-ai skips: the *first* token id of each ``string.punctuation``
symbol tokenised alone (with XLM-R-style tokenizers often ``▁``, as in colbert-ai itself). Scores
are MaxSim (sum over query tokens of the best document token), cosine or colbert-ai's ``l2``.
XMOD: each text goes through the adapter of its own language (`harness.languages.xmod_code`;
``XmodModel.forward(lang_ids=…)`` per example); an unknown language or one without an adapter in
the checkpoint is an error, never the backbone's silent English default. XLM-R ignores languages.

A batch runs only the XMOD adapters its texts use (the layer otherwise visits all 81 of
ColBERT-XM's); outputs are the same. On CUDA, encoding runs under fp16 autocast (colbert-ai's amp).

**Indexing.** A shard encodes its documents in batches of equal token length (no padding, so on
CPU a document's vectors do not depend on its batch-mates; GPU kernels may round differently per
batch size), keeps each document's unmasked token vectors (float16) and writes them as
`systems.plaid.TokenShard` blocks. Shards are *contiguous* ranges of the collection (not
`shard_docs`' round robin; a sharded job reads the collection once more to count it), so the shards
concatenated in order are the collection in order and the PLAID index built from S shards is the
one built from one: same k-means sample, centroids, inverted lists and runs (tested on CPU). Search is PLAID's (`PlaidIndex.search`) with
colbert-ai's settings by depth — k ≤ 10: ncells 1, threshold 0.5, ndocs 256; k ≤ 100: 2, 0.45,
1024; otherwise 4, 0.4, max(4k, 4096) — unless the params set them; ``exhaustive`` scores every
document by exact MaxSim on its decompressed vectors (no candidate pruning). Runs break ties by doc id.

**Long documents (MTD).** PLAID-X indexes passages and aggregates with MaxP; in a suite that is
``passages: {length: 180, stride: 90, aggregate: maxp}`` on the system entry (`harness.passages`:
words, or characters in scripts without spaces), not a param here.

**Systems.** ``colbert-xm`` (``antoinelouis/colbert-xm``) and ``mtd-colbertx``, whose checkpoint is
``hltcoe/plaidx-large-{collection}-mtd-{mixing}-mt5xxl-engeng`` (``collection``: neuclir | clef;
``mixing``: mix-passages | mix-entries | round-robin → ``round-robin-entries``) unless ``model`` names
one. Plain ``mtd-colbertx`` is Mix Passages, the first strategy of the paper's Table 2 (the paper
finds the three statistically equivalent); the presets ``mtd-colbertx-mix-passages``,
``-mix-entries`` and ``-round-robin`` name each, with the same mixing in their training recipe.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, create_model
from torch import nn

from harness.checkpoints import checkpoint_identity, resolve_model
from harness.data.base import Dataset, Doc, Query
from harness.languages import xmod_code
from harness.runs import Run, make_run
from harness.system import Params, System, register_system
from harness.training import TrainingData
from systems import colbert_train

if TYPE_CHECKING:
    from collections.abc import Iterator

    from systems.plaid import PlaidIndex

MarkerScheme = Literal["dot-placeholder", "insert"]
MARKER_SCHEMES: tuple[str, ...] = ("dot-placeholder", "insert")
DEFAULT_SCHEME: MarkerScheme = "dot-placeholder"
"""The scheme of colbert-ai before PR #362 and of PLAID-X, for checkpoints that do not name theirs."""

METADATA = "artifact.metadata"
CONFIG = "config.json"
SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN = "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN)
LINEAR = "linear.weight"
CHECKPOINT_FILES = ["*.json", METADATA, "*.safetensors", "*.bin", "*.model", "*.txt"]
"""Files fetched from the hub for a checkpoint (configs, tokenizer, weights, ColBERT metadata)."""
D_PADDING = -9999.0
"""Score given to padded document positions before the max (colbert-ai's ``colbert_score_reduce``)."""

ENCODE_BLOCK = 20_000
"""Documents read, encoded and written as one `TokenShard` block."""
TOKENIZE_BLOCK = 5_000
"""Texts tokenised at once to find their lengths."""


# ---------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------


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
        raise ValueError(f"{path}: expected a JSON object")
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
    except Exception as e:  # offline without a cache, unknown repo, bad revision
        raise ValueError(f"{name}: not a local folder, and the hub checkpoint could not be fetched ({e})") from None


def checkpoint_metadata(name: str, revision: str | None = None) -> dict[str, Any]:
    """A checkpoint's ``artifact.metadata`` alone (from the hub without its weights)."""
    path = Path(resolve_model(name))
    if path.is_dir() or path.exists() or str(path).startswith(("/", ".", "~")) or str(name).count("/") != 1:
        return read_metadata(checkpoint_folder(name, revision))
    from huggingface_hub import hf_hub_download

    try:
        return read_metadata(Path(hf_hub_download(resolve_model(name), METADATA, revision=revision)).parent)
    except Exception as e:  # offline without a cache, unknown repo, no such file
        raise ValueError(f"{name}: could not read its {METADATA} from the hub ({e})") from None


def weights_file(folder: Path) -> str:
    """The weights file of a checkpoint folder (safetensors first, as transformers)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return name
    raise ValueError(f"{folder} is not a ColBERT checkpoint: no {', '.join(WEIGHT_FILES)}")


def read_weights(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if name == SAFETENSORS:
        return load_file(folder / name)
    if name == SAFETENSORS_INDEX:
        index = json.loads((folder / name).read_text(encoding="utf-8"))
        tensors: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(folder / shard))
        return tensors
    return torch.load(folder / name, map_location="cpu", weights_only=True)


def backbone_class(config) -> type[nn.Module]:
    """The transformers base model class for ``config`` (XmodModel, XLMRobertaModel, …)."""
    from transformers import MODEL_MAPPING

    try:
        return MODEL_MAPPING[type(config)]
    except KeyError:
        raise ValueError(f"no transformers base model for model_type {config.model_type!r}") from None


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------


class ColbertModel(nn.Module):
    """An ``HF_ColBERT`` checkpoint: backbone + linear projection, its tokenizer and `ColbertSettings`.

    The torch-level API the trainer uses: `query_inputs` / `doc_inputs` (token tensors per the
    scheme), `encode_queries` / `encode_docs` (differentiable, normalised, masks), `scores`
    (all pairs) and `pairwise_scores`, `parameter_groups` (for freezing), `save`.
    """

    def __init__(self, backbone: nn.Module, linear: nn.Linear, tokenizer: Any, settings: ColbertSettings,
                 metadata: dict[str, Any], weights_format: str, extra: dict[str, torch.Tensor] | None = None,
                 name: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.linear = linear
        self.tokenizer = tokenizer
        self.settings = settings
        self.metadata = metadata
        self.weights_format = weights_format
        self.extra = dict(extra or {})
        self.name = name
        self.prefix = type(backbone).base_model_prefix
        self._adapters = tuple(backbone.encoder.layer[0].output.adapter_modules.keys()) if self.is_xmod else ()
        if linear.in_features != backbone.config.hidden_size or linear.out_features != settings.dim:
            raise ValueError(f"{name}: {LINEAR} is {linear.out_features}×{linear.in_features}, but the backbone's "
                             f"hidden size is {backbone.config.hidden_size} and {METADATA} says dim {settings.dim}")
        tok = tokenizer
        self.query_marker_id = tok.convert_tokens_to_ids(settings.query_token_id)
        self.doc_marker_id = tok.convert_tokens_to_ids(settings.doc_token_id)
        self.pad_id, self.mask_id = tok.pad_token_id, tok.mask_token_id
        if self.pad_id is None or self.mask_id is None:
            raise ValueError(f"{name}: the tokenizer needs a pad and a mask token (query augmentation)")
        vocab = backbone.get_input_embeddings().num_embeddings
        if max(self.query_marker_id, self.doc_marker_id) >= vocab:
            raise ValueError(f"{name}: marker ids {self.query_marker_id}/{self.doc_marker_id} exceed the "
                             f"{vocab}-row embedding matrix")
        skip = sorted({tok.encode(symbol, add_special_tokens=False)[0] for symbol in string.punctuation}
                      if settings.mask_punctuation else set())
        self.register_buffer("skiplist", torch.tensor(skip, dtype=torch.long), persistent=False)
        self.eval()

    # -- loading and saving ---------------------------------------------------------------------

    @classmethod
    def load(cls, name_or_folder: str | Path, revision: str | None = None, marker_scheme: str | None = None,
             device: str = "cpu") -> ColbertModel:
        """Load an ``HF_ColBERT`` checkpoint (hub id, folder or ``pkg:<module>``) in eval mode on ``device``."""
        from transformers import AutoConfig, AutoTokenizer

        folder = checkpoint_folder(str(name_or_folder), revision)
        if not (folder / CONFIG).is_file():
            raise ValueError(f"{folder} is not a ColBERT checkpoint: no {CONFIG}")
        metadata = read_metadata(folder)
        settings = ColbertSettings.from_metadata(unwrap(metadata), str(folder), marker_scheme)
        fmt = weights_file(folder)
        config = AutoConfig.from_pretrained(str(folder))
        model_cls = backbone_class(config)
        tensors = read_weights(folder, fmt)
        if LINEAR not in tensors:
            raise ValueError(f"{folder}: the weights have no {LINEAR!r}: not an HF_ColBERT checkpoint (colbert-ai "
                             f"and PLAID-X save the projection there)")
        prefix = f"{model_cls.base_model_prefix}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not own:
            raise ValueError(f"{folder}: no backbone weights under {prefix!r} (HF_ColBERT keeps the "
                             f"{config.model_type} model under its base_model_prefix)")
        backbone = model_cls(config, add_pooling_layer=False)
        expected = set(backbone.state_dict())
        missing = sorted(expected - set(own))
        if missing:
            raise ValueError(f"{folder}: the backbone weights lack {', '.join(missing[:5])}"
                             f"{' …' if len(missing) > 5 else ''}")
        backbone.load_state_dict({k: own[k].float() for k in expected})
        weight = tensors[LINEAR].float()
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        linear.weight.data.copy_(weight)
        extra = {k: v for k, v in tensors.items() if k != LINEAR and not (k.startswith(prefix) and k[len(prefix):]
                                                                          in expected)}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as e:
            raise ValueError(f"{folder}: no loadable tokenizer ({e})") from None
        model = cls(backbone.float(), linear, tokenizer, settings, metadata, fmt, extra, name=str(name_or_folder))
        return model.to(device).eval()

    @classmethod
    def create(cls, config, tokenizer, metadata: dict[str, Any], weights_format: str = SAFETENSORS,
               seed: int = 0) -> ColbertModel:
        """A randomly initialised model (tiny checkpoints): the backbone of ``config``, a pooler kept
        aside as HF_ColBERT has one, the projection to the metadata's ``dim``."""
        torch.manual_seed(seed)
        config.architectures = ["HF_ColBERT"]
        backbone = backbone_class(config)(config, add_pooling_layer=False)
        settings = ColbertSettings.from_metadata(unwrap(metadata), "new checkpoint")
        linear = nn.Linear(config.hidden_size, settings.dim, bias=False)
        nn.init.normal_(linear.weight, std=config.initializer_range)
        prefix = type(backbone).base_model_prefix
        h = config.hidden_size
        pooler = {f"{prefix}.pooler.dense.weight": torch.randn(h, h) * config.initializer_range,
                  f"{prefix}.pooler.dense.bias": torch.zeros(h)}
        return cls(backbone, linear, tokenizer, settings, metadata, weights_format, pooler, name="new")

    def save(self, folder: str | Path) -> Path:
        """Write the checkpoint in the layout it was loaded from (config, weights file, tokenizer,
        ``artifact.metadata`` with the current settings and ``marker_scheme``)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.backbone.config)
        config.architectures = ["HF_ColBERT"]
        config.save_pretrained(str(folder))
        state = {f"{self.prefix}.{k}": v for k, v in self.backbone.state_dict().items()}
        state[LINEAR] = self.linear.weight
        state.update(self.extra)
        state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        for name in WEIGHT_FILES:
            (folder / name).unlink(missing_ok=True)
        if self.weights_format == PYTORCH_BIN:
            torch.save(state, folder / PYTORCH_BIN)
        else:
            save_file(state, str(folder / SAFETENSORS), metadata={"format": "pt"})
        self.tokenizer.save_pretrained(str(folder))
        metadata = copy.deepcopy(self.metadata)
        target = unwrap(metadata)
        target.update(self.settings.model_dump(exclude={"marker_scheme_source"}))
        (folder / METADATA).write_text(json.dumps(metadata, indent=4) + "\n", encoding="utf-8")
        return folder

    # -- properties -----------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.linear.weight.device

    @property
    def is_xmod(self) -> bool:
        return self.backbone.config.model_type == "xmod"

    @property
    def adapters(self) -> list[str]:
        """The XMOD adapter codes in ``lang_ids`` order (empty for other backbones)."""
        return list(self._adapters)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by group, for freezing: ``embeddings``, ``adapters`` (XMOD adapter modules and
        their layer norms), ``linear``, and ``backbone`` (everything else)."""
        groups: dict[str, list[nn.Parameter]] = {"embeddings": [], "adapters": [], "linear": [], "backbone": []}
        for name, p in self.named_parameters():
            if name.startswith("linear."):
                groups["linear"].append(p)
            elif name.startswith("backbone.embeddings."):
                groups["embeddings"].append(p)
            elif ".adapter_modules." in name or ".adapter_layer_norm." in name:
                groups["adapters"].append(p)
            else:
                groups["backbone"].append(p)
        return groups

    # -- tokenisation -----------------------------------------------------------------------------

    def query_inputs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` [B, query_maxlen] per the marker scheme: ``<s> [Q] …
        </s>`` then ``<mask>`` to ``query_maxlen`` (attended when ``attend_to_mask_tokens``)."""
        s, texts = self.settings, list(texts)
        if s.marker_scheme == "dot-placeholder":
            out = self.tokenizer([". " + t for t in texts], padding="max_length", truncation=True,
                                 max_length=s.query_maxlen, return_tensors="pt")
            ids, mask = out["input_ids"], out["attention_mask"]
            ids[:, 1] = self.query_marker_id
        else:
            out = self.tokenizer(texts, padding="max_length", truncation=True, max_length=s.query_maxlen - 1,
                                 return_tensors="pt")
            ids, mask = _insert_column(out["input_ids"], self.query_marker_id), _insert_column(out["attention_mask"], 1)
        ids[ids == self.pad_id] = self.mask_id
        if s.attend_to_mask_tokens:
            mask[ids == self.mask_id] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def doc_inputs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` [B, longest] per the marker scheme: ``<s> [D] … </s>``,
        truncated to ``doc_maxlen``, padded to the longest."""
        s, texts = self.settings, list(texts)
        if s.marker_scheme == "dot-placeholder":
            out = self.tokenizer([". " + t for t in texts], padding="longest", truncation="longest_first",
                                 max_length=s.doc_maxlen, return_tensors="pt")
            ids, mask = out["input_ids"], out["attention_mask"]
            ids[:, 1] = self.doc_marker_id
            return {"input_ids": ids, "attention_mask": mask}
        out = self.tokenizer(texts, padding="longest", truncation="longest_first", max_length=s.doc_maxlen - 1,
                             return_tensors="pt")
        return {"input_ids": _insert_column(out["input_ids"], self.doc_marker_id),
                "attention_mask": _insert_column(out["attention_mask"], 1)}

    def doc_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each document's input (before punctuation masking), without building tensors."""
        s = self.settings
        if s.marker_scheme == "dot-placeholder":
            ids = self.tokenizer([". " + t for t in texts], truncation=True, max_length=s.doc_maxlen)["input_ids"]
            return [len(x) for x in ids]
        ids = self.tokenizer(list(texts), truncation=True, max_length=s.doc_maxlen - 1)["input_ids"]
        return [len(x) + 1 for x in ids]

    # -- encoding -------------------------------------------------------------------------------

    def lang_ids(self, languages: Sequence[str] | None, n: int) -> torch.Tensor | None:
        """Per-text XMOD adapter positions (None for other backbones). Every language is checked: one
        outside the language table raises `UnsupportedLanguage`, one the checkpoint has no adapter
        for a ValueError naming its adapters — never the default adapter."""
        if not self.is_xmod:
            return None
        if languages is None:
            raise ValueError(f"{self.name} is an XMOD model: encoding needs each text's language "
                             f"(no silent {self.backbone.config.default_language!r} default)")
        languages = list(languages)
        if len(languages) != n:
            raise ValueError(f"{len(languages)} languages for {n} texts")
        adapters = self.adapters
        positions = {}
        for lang in dict.fromkeys(languages):
            code = xmod_code(lang)
            if code not in adapters:
                raise ValueError(f"language {lang!r} (XMOD adapter {code!r}) has no adapter in {self.name}; its "
                                 f"languages: {', '.join(adapters)}")
            positions[lang] = adapters.index(code)
        return torch.tensor([positions[lang] for lang in languages], dtype=torch.long, device=self.device)

    def _states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                lang_ids: torch.Tensor | None) -> torch.Tensor:
        if self.is_xmod and lang_ids is None:
            raise ValueError(f"{self.name} is an XMOD model: pass lang_ids (see ColbertModel.lang_ids)")
        ids, mask = input_ids.to(self.device), attention_mask.to(self.device)
        if not self.is_xmod:
            return self.linear(self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state)
        with self._only_adapters(lang_ids) as local_ids:
            return self.linear(self.backbone(input_ids=ids, attention_mask=mask, lang_ids=local_ids).last_hidden_state)

    @contextmanager
    def _only_adapters(self, lang_ids: torch.Tensor) -> Iterator[torch.Tensor]:
        """While encoding, give every XMOD layer only the adapters ``lang_ids`` uses (renumbered):
        ``XmodOutput.lang_adapter`` visits every adapter of the layer (81 in ColBERT-XM) with a
        boolean-mask gather each, whatever the batch holds. Same outputs and gradients (the adapters
        are the same modules); the full set is restored afterwards."""
        used = torch.unique(lang_ids).tolist()
        if len(used) == len(self.adapters):
            yield lang_ids
            return
        codes = [self.adapters[i] for i in used]
        outputs = [layer.output for layer in self.backbone.encoder.layer]
        saved = [output.adapter_modules for output in outputs]
        remap = torch.full((len(self.adapters),), -1, dtype=torch.long, device=lang_ids.device)
        remap[used] = torch.arange(len(used), device=lang_ids.device)
        try:
            for output, full in zip(outputs, saved):
                output.adapter_modules = nn.ModuleDict({code: full[code] for code in codes})
            yield remap[lang_ids]
        finally:
            for output, full in zip(outputs, saved):
                output.adapter_modules = full

    def query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              lang_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Query token vectors (normalised; pad positions zero) and their mask [B, Lq] (not padding)."""
        keep = input_ids.to(self.device) != self.pad_id
        Q = self._states(input_ids, attention_mask, lang_ids) * keep.unsqueeze(-1)
        return nn.functional.normalize(Q, p=2, dim=-1), keep

    def doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            lang_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Document token vectors (normalised; zero where masked) and the mask [B, Ld] of the kept
        tokens (not padding, not punctuation when ``mask_punctuation``)."""
        ids = input_ids.to(self.device)
        keep = (ids != self.pad_id) & ~torch.isin(ids, self.skiplist)
        D = self._states(input_ids, attention_mask, lang_ids) * keep.unsqueeze(-1)
        return nn.functional.normalize(D, p=2, dim=-1), keep

    def encode_queries(self, texts: Sequence[str], languages: Sequence[str] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Q [B, query_maxlen, dim], Qmask [B, query_maxlen] bool)``; differentiable."""
        texts = list(texts)
        lang = self.lang_ids(languages, len(texts))
        inputs = self.query_inputs(texts)
        return self.query(inputs["input_ids"], inputs["attention_mask"], lang)

    def encode_docs(self, texts: Sequence[str], languages: Sequence[str] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D [B, Ld, dim], Dmask [B, Ld] bool)``; differentiable."""
        texts = list(texts)
        lang = self.lang_ids(languages, len(texts))
        inputs = self.doc_inputs(texts)
        return self.doc(inputs["input_ids"], inputs["attention_mask"], lang)

    # -- scoring --------------------------------------------------------------------------------

    def _similarity(self, Q: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """Token similarities ``[..., Lq, Ld]`` for broadcastable Q [..., Lq, dim] and D [..., Ld, dim]."""
        if self.settings.similarity == "cosine":
            return Q @ D.transpose(-1, -2).to(Q.dtype)
        return -((Q.unsqueeze(-2) - D.unsqueeze(-3).to(Q.dtype)) ** 2).sum(-1)

    def scores(self, Q: torch.Tensor, Qmask: torch.Tensor, D: torch.Tensor, Dmask: torch.Tensor) -> torch.Tensor:
        """All-pairs MaxSim ``[Bq, Bd]``: for each query and document, the sum over the query's kept
        tokens of the best similarity over the document's kept tokens."""
        sim = self._similarity(Q[:, None], D[None])                           # [Bq, Bd, Lq, Ld]
        sim = sim.masked_fill(~Dmask[None, :, None, :].to(sim.device), D_PADDING)
        return (sim.max(-1).values * Qmask[:, None, :].to(sim.dtype)).sum(-1)

    def pairwise_scores(self, Q: torch.Tensor, Qmask: torch.Tensor, D: torch.Tensor,
                        Dmask: torch.Tensor) -> torch.Tensor:
        """MaxSim of aligned pairs ``[B]``: query i against document i."""
        sim = self._similarity(Q, D).masked_fill(~Dmask[:, None, :].to(Q.device), D_PADDING)
        return (sim.max(-1).values * Qmask.to(sim.dtype)).sum(-1)


def _insert_column(tensor: torch.Tensor, value: int) -> torch.Tensor:
    """``tensor`` [B, L] with a column of ``value`` inserted at position 1 (after ``<s>``)."""
    column = torch.full((tensor.shape[0], 1), value, dtype=tensor.dtype)
    return torch.cat([tensor[:, :1], column, tensor[:, 1:]], dim=1)


@lru_cache(maxsize=2)
def _cached_model(model: str, revision: str | None, marker_scheme: str | None, device: str,
                  identity: str) -> ColbertModel:
    return ColbertModel.load(model, revision=revision, marker_scheme=marker_scheme, device=device)


def cached_model(model: str, revision: str | None, marker_scheme: str | None, device: str) -> ColbertModel:
    """`ColbertModel.load` shared by systems with the same settings (searching never modifies it);
    keyed by the checkpoint's identity too, so a folder whose files changed is loaded again."""
    return _cached_model(model, revision, marker_scheme, device, checkpoint_identity(model, revision))


# ---------------------------------------------------------------------------------------------------
# The systems
# ---------------------------------------------------------------------------------------------------


def search_settings(k: int) -> tuple[int, float, int]:
    """colbert-ai's (and PLAID-X's) ncells, centroid score threshold and ndocs for depth ``k``."""
    if k <= 10:
        return 1, 0.5, 256
    if k <= 100:
        return 2, 0.45, 1024
    return 4, 0.4, max(k * 4, 4096)


def contiguous_docs(dataset: Dataset, shard: int, shards: int) -> Iterator[Doc]:
    """The documents of one shard as a contiguous range of the collection (shard i of S: positions
    ⌊i·n/S⌋ … ⌊(i+1)·n/S⌋ - 1), so the shards in order are the collection in order."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    if shards == 1:
        yield from dataset.docs()
        return
    n = sum(1 for _ in dataset.docs())
    start, end = shard * n // shards, (shard + 1) * n // shards
    yield from islice(dataset.docs(), start, end)


class ColbertParams(Params):
    model: str = Field("antoinelouis/colbert-xm", description="HF_ColBERT checkpoint: hub id, local folder or "
                       "pkg:<module>")
    revision: str | None = Field(None, description="hub revision (commit, tag or branch) to load; recorded")
    marker_scheme: MarkerScheme | None = Field(None, description="how [Q]/[D] enter the input: 'dot-placeholder' "
                                               "(colbert-ai < PR #362, PLAID-X: '. ' prefix, position 1 overwritten) "
                                               "or 'insert' (marker inserted after <s>); None: the checkpoint's")
    nbits: Literal[1, 2, 4] | None = Field(None, description="residual bits per dimension; None: the checkpoint's")
    n_centroids: int | None = Field(None, ge=1, description="PLAID centroids; None: colbert-ai's 2^⌊log2(16√tokens)⌋")
    kmeans_iters: int = Field(4, ge=1, description="k-means iterations (colbert-ai's and PLAID-X's kmeans_niters: 4)")
    nprobe: int | None = Field(None, ge=1, description="centroids probed per query token (colbert-ai ncells); None: "
                               "by depth (k≤10: 1, k≤100: 2, else 4)")
    centroid_score_threshold: float | None = Field(None, description="centroid pruning threshold; None: by depth "
                                                   "(0.5, 0.45, 0.4)")
    ndocs: int | None = Field(None, ge=1, description="candidates kept after centroid scoring; None: by depth "
                              "(256, 1024, max(4k, 4096))")
    exhaustive: bool = Field(False, description="exact MaxSim over every document's decompressed vectors instead "
                             "of PLAID's candidate generation (retrieval only)")
    batch_size: int = Field(64, ge=1, exclude=True, description="texts per encoder batch (does not change results)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", exclude=True, description="auto: cuda when available")


@dataclass
class Searcher:
    """An open index: the PLAID index and the doc id of each of its documents."""

    index: PlaidIndex
    ids: list[str]


class ColbertSystem(System):
    """A ColBERT checkpoint over a PLAID index (module docstring)."""

    description = "late interaction (HF_ColBERT checkpoint) over a PLAID index"
    Params = ColbertParams
    retrieve_params = frozenset({"nprobe", "centroid_score_threshold", "ndocs", "exhaustive"})
    shard_folder = "tokens"
    TrainParams = colbert_train.ColbertTrainParams
    params: ColbertParams

    # -- the checkpoint -----------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        """The checkpoint the system loads."""
        return self.params.model

    @property
    def device_name(self) -> str:
        if self.params.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.params.device

    @property
    def model(self) -> ColbertModel:
        """The model in eval mode, loaded on first use (shared by systems with the same settings)."""
        return cached_model(self.model_id, self.params.revision, self.params.marker_scheme, self.device_name)

    def load_model(self, device: str) -> ColbertModel:
        """A fresh model on ``device`` for training (never the shared inference one)."""
        return ColbertModel.load(self.model_id, revision=self.params.revision,
                                 marker_scheme=self.params.marker_scheme, device=device)

    def settings(self) -> ColbertSettings:
        """The checkpoint's settings (with the params' marker scheme), read without loading weights."""
        return ColbertSettings.from_metadata(unwrap(checkpoint_metadata(self.model_id, self.params.revision)),
                                             self.model_id, self.params.marker_scheme)

    def searchable_settings(self) -> ColbertSettings:
        """`settings`, checked to be searchable in a PLAID index (which scores by inner product)."""
        settings = self.settings()
        if settings.similarity != "cosine":
            raise ValueError(f"{self.model_id}: similarity {settings.similarity!r}; a PLAID index scores by inner "
                             f"product, which needs 'cosine'")
        return settings

    @property
    def nbits(self) -> int:
        return self.params.nbits or self.settings().nbits

    def identity_params(self) -> dict[str, Any]:
        params = super().identity_params()
        if params.get(self.checkpoint_param) is None:
            params[self.checkpoint_param] = self.model_id
        return params

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        return {"model": self.identity_params()["model"], "revision": self.params.revision,
                "checkpoint": checkpoint_identity(self.model_id, self.params.revision)}

    def train(self, data: TrainingData, params: Any, out: Path) -> dict[str, Any]:
        """The family's recipes (`systems.colbert_train`)."""
        return colbert_train.train(self, data, params, out)

    def tiny(self, data: TrainingData, out: Path) -> ColbertSystem:
        """A tiny random ColBERT-XM checkpoint in its real layout: XMOD with adapters for the training
        languages and en_XX, ``model.safetensors``, ``artifact.metadata`` with ColBERT-XM's values (dim 32)."""
        from transformers import XmodConfig

        from systems.tiny import CORPUS, TINY, TINY_SIZES, VOCAB, xlmr_tokenizer

        tokenizer = xlmr_tokenizer(data.texts(limit=CORPUS), vocab_size=VOCAB)
        config = XmodConfig(vocab_size=len(tokenizer), **{**TINY, **TINY_SIZES}, adapter_reduction_factor=2,
                            languages=sorted({xmod_code(lang) for lang in data.languages} | {"en_XX"}),
                            default_language="en_XX")
        metadata = {**TINY_COLBERT_XM_METADATA, "checkpoint": "tiny", "model_name": "facebook/xmod-base"}
        folder = out
        ColbertModel.create(config, tokenizer, metadata, SAFETENSORS).save(folder)
        return self.with_checkpoint(folder, "tiny")

    # -- indexing -------------------------------------------------------------------------------

    def encode_docs(self, docs: list[Doc]) -> tuple[np.ndarray, np.ndarray]:
        """Every document's kept token vectors (float16, documents contiguous, in order) and doclens,
        encoded in batches of equal token length (no padding)."""
        from systems.dense import length_batches

        model = self.model
        texts = [doc.contents for doc in docs]
        languages = [doc.language for doc in docs]
        model.lang_ids(languages, len(docs))  # every language checked before anything is encoded
        lengths: list[int] = []
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            lengths += model.doc_lengths(texts[start : start + TOKENIZE_BLOCK])
        per_doc: list[np.ndarray | None] = [None] * len(texts)
        with torch.inference_mode(), _amp(model.device):
            for batch in length_batches(lengths, self.params.batch_size):
                D, keep = model.encode_docs([texts[i] for i in batch], [languages[i] for i in batch])
                D, keep = D.float().cpu(), keep.cpu()
                for row, i in enumerate(batch):
                    per_doc[i] = D[row][keep[row]].numpy().astype(np.float16)
        doclens = np.array([len(v) for v in per_doc], dtype=np.int64)
        return np.concatenate(per_doc), doclens

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Encode a contiguous range of documents into ``out/tokens``: `TokenShard` blocks
        ``NNNNN/``, ``ids.json`` and ``shard.json``."""
        from systems.plaid import write_shard

        self.searchable_settings()
        folder = out / self.shard_folder
        folder.mkdir(parents=True)
        docs = contiguous_docs(dataset, shard, shards)
        ids: list[str] = []
        blocks = tokens = 0
        while block := list(islice(docs, ENCODE_BLOCK)):
            vectors, doclens = self.encode_docs(block)
            write_shard(folder / f"{blocks:05d}", vectors, doclens)
            ids += [doc.doc_id for doc in block]
            blocks += 1
            tokens += len(vectors)
        if not ids:
            raise ValueError(f"shard {shard} of {shards} of {dataset.dataset_id} has no documents")
        (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        (folder / "shard.json").write_text(json.dumps({"shard": shard, "shards": shards, "blocks": blocks}),
                                           encoding="utf-8")
        return {"documents": len(ids), "tokens": tokens, "dim": self.model.settings.dim, "blocks": blocks}

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """Build the PLAID index ``out/plaid`` from the shards' blocks in collection order; ``ids.json``."""
        from systems.plaid import TokenShard, build_index

        folders = [Path(d) / self.shard_folder for d in shard_dirs]
        numbers = [json.loads((f / "shard.json").read_text(encoding="utf-8")) for f in folders]
        shards = len(folders)
        if sorted(n["shard"] for n in numbers) != list(range(shards)) or {n["shards"] for n in numbers} != {shards}:
            raise ValueError(f"{dataset.dataset_id}: shard folders {[str(d) for d in shard_dirs]} are not shards "
                             f"0..{shards - 1} of one split (found {numbers})")
        order = sorted(range(shards), key=lambda i: numbers[i]["shard"])
        token_shards, ids = [], []
        for i in order:
            for b in range(numbers[i]["blocks"]):
                block = folders[i] / f"{b:05d}"
                token_shards.append(TokenShard(block / "embeddings.npy", block / "doclens.npy"))
            ids += json.loads((folders[i] / "ids.json").read_text(encoding="utf-8"))
        settings = self.searchable_settings()
        out.mkdir(parents=True, exist_ok=True)
        info = build_index(token_shards, out / "plaid", nbits=self.nbits, n_centroids=self.params.n_centroids,
                           kmeans_iters=self.params.kmeans_iters, seed=0, device=self.params.device)
        if info["documents"] != len(ids):
            raise ValueError(f"{dataset.dataset_id}: {info['documents']} encoded documents but {len(ids)} ids")
        (out / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        used = {"model": self.identity_params()["model"], "settings": settings.model_dump(), "nbits": self.nbits}
        (out / "colbert.json").write_text(json.dumps(used, indent=1), encoding="utf-8")
        return {**info, "shards": shards, "marker_scheme": settings.marker_scheme,
                "marker_scheme_source": settings.marker_scheme_source}

    # -- retrieval ------------------------------------------------------------------------------

    def open(self, index: Path) -> Searcher:
        from systems.plaid import PlaidIndex

        ids = json.loads((index / "ids.json").read_text(encoding="utf-8"))
        return Searcher(PlaidIndex.open(index / "plaid", self.params.device), ids)

    def encode_queries(self, queries: list[Query]) -> list[np.ndarray]:
        """Each query's token vectors, float32 [query_maxlen, dim] (every position; pads are masks)."""
        if not queries:
            return []
        model = self.model
        out: list[np.ndarray] = []
        model.lang_ids([q.language for q in queries], len(queries))
        with torch.inference_mode(), _amp(model.device):
            for start in range(0, len(queries), self.params.batch_size):
                batch = queries[start : start + self.params.batch_size]
                Q, keep = model.encode_queries([q.text for q in batch], [q.language for q in batch])
                Q, keep = Q.float().cpu(), keep.cpu()
                out += [Q[row][keep[row]].numpy() for row in range(len(batch))]
        return out

    def search(self, searcher: Searcher, queries: list[Query], encoded: list[np.ndarray], k: int) -> Run:
        if not queries:
            return {}
        if self.params.exhaustive:
            results = searcher.index.exhaustive(encoded, k)
        else:
            nprobe, threshold, ndocs = search_settings(k)
            p = self.params
            if p.centroid_score_threshold is not None:
                threshold = p.centroid_score_threshold
            results = searcher.index.search(encoded, k, nprobe=p.nprobe or nprobe, centroid_score_threshold=threshold,
                                            ndocs=p.ndocs or ndocs)
        return make_run({q.query_id: [(searcher.ids[int(d)], float(s)) for d, s in zip(positions, scores)]
                         for q, (positions, scores) in zip(queries, results, strict=True)}, depth=k)


def _amp(device: torch.device):
    """fp16 autocast on CUDA for inference (colbert-ai's amp), a no-op on CPU."""
    import contextlib

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


TINY_QUERY_MAXLEN = 8
"""Query length of tiny checkpoints (real ones: 32). Synthetic queries are 2-5 words; padded to 32,
the ``<mask>`` vectors of an untrained model outweigh them in MaxSim and training learns the
training topics instead of matching (held-out nDCG@10 fell 0.09 → 0.03; at 8 it rises 0.14 → 0.24)."""
TINY_COLBERT_XM_METADATA = {
    "query_maxlen": TINY_QUERY_MAXLEN, "doc_maxlen": 256, "dim": 32, "query_token_id": "[unused0]",
    "doc_token_id": "[unused1]", "query_token": "[Q]", "doc_token": "[D]", "mask_punctuation": True,
    "attend_to_mask_tokens": True, "similarity": "cosine", "nbits": 2, "interaction": "colbert"}
"""ColBERT-XM's ``artifact.metadata`` values (REFERENCE.md), dim and query length shrunk for tiny checkpoints."""
TINY_PLAIDX_METADATA = {
    "query_maxlen": TINY_QUERY_MAXLEN, "doc_maxlen": 180, "dim": 32, "query_token_id": "[unused0]",
    "doc_token_id": "[unused1]", "query_token": "[Q]", "doc_token": "[D]", "mask_punctuation": True,
    "attend_to_mask_tokens": False, "similarity": "cosine", "nbits": 1, "interaction": "colbert",
    "force_resize_embeddings": True}
"""PLAID-X ``ColBERTConfig`` values for tiny MTD checkpoints (nbits 1; PLAID-X's default attend_to_mask_tokens)."""

register_system("colbert-xm")(type("ColbertXM", (ColbertSystem,), {
    "__module__": __name__, "__doc__": "ColBERT-XM (seed 000): XMOD, each text through its language's adapter.",
    "description": "ColBERT-XM: XMOD late interaction, per-language adapters, PLAID index (nbits 2)"}))


# -- MTD ColBERT-X -----------------------------------------------------------------------------------

MTDMixing = Literal["mix-passages", "mix-entries", "round-robin"]
MTD_CHECKPOINT = "hltcoe/plaidx-large-{collection}-mtd-{mixing}-mt5xxl-engeng"
MTD_MIXING_NAME = {"mix-passages": "mix-passages", "mix-entries": "mix-entries", "round-robin": "round-robin-entries"}


class MTDParams(ColbertParams):
    model: str | None = Field(None, description="HF_ColBERT checkpoint; None: the hltcoe MTD checkpoint of "
                              "collection and mixing")
    collection: Literal["neuclir", "clef"] = Field("neuclir", description="which MTD release (its training languages)")
    mixing: MTDMixing = Field("mix-passages", description="language mixing of the release (and of the mtd recipe)")


class MTDSystem(ColbertSystem):
    """MTD ColBERT-X (seed 001): XLM-R large, distinct [Q]/[D] tokens, no language routing, nbits 1."""

    description = "MTD ColBERT-X: XLM-R large late interaction (PLAID-X checkpoint), PLAID index (nbits 1)"
    Params = MTDParams
    params: MTDParams
    TrainParams = colbert_train.ColbertTrainParams.preset("mtd", mixing="mix-passages")

    @property
    def model_id(self) -> str:
        p = self.params
        return p.model or MTD_CHECKPOINT.format(collection=p.collection, mixing=MTD_MIXING_NAME[p.mixing])

    def tiny(self, data: TrainingData, out: Path) -> MTDSystem:
        """A tiny random MTD checkpoint in PLAID-X's layout: XLM-R with ``[unused0]``/``[unused1]``
        added to the tokenizer (after its vocabulary, as 250002/250003), ``pytorch_model.bin``."""
        from transformers import XLMRobertaConfig

        from systems.tiny import CORPUS, TINY, TINY_SIZES, VOCAB, xlmr_tokenizer

        tokenizer = xlmr_tokenizer(data.texts(limit=CORPUS), vocab_size=VOCAB)
        tokenizer.add_tokens([TINY_PLAIDX_METADATA["query_token_id"]])  # PLAID-X's order: query marker first
        tokenizer.add_tokens([TINY_PLAIDX_METADATA["doc_token_id"]])
        config = XLMRobertaConfig(vocab_size=len(tokenizer), **{**TINY, **TINY_SIZES})
        metadata = {**TINY_PLAIDX_METADATA, "checkpoint": "tiny", "model_name": "xlm-roberta-large"}
        ColbertModel.create(config, tokenizer, metadata, PYTORCH_BIN).save(out)
        return self.with_checkpoint(out, "tiny")


def mtd_preset(name: str, mixing: str) -> type[MTDSystem]:
    """Register ``name`` as `MTDSystem` with ``mixing`` as its default release and training mixing."""
    field = copy.copy(MTDParams.model_fields["mixing"])
    field.default = mixing
    title = "".join(part.title() for part in name.replace("-", " ").split())
    params = create_model(f"{title}Params", __base__=MTDParams, __module__=__name__, mixing=(field.annotation, field))
    system = type(title, (MTDSystem,), {
        "__module__": __name__, "__doc__": f"MTD ColBERT-X, {mixing} release.",
        "description": f"MTD ColBERT-X ({mixing}): XLM-R large late interaction, PLAID index (nbits 1)",
        "Params": params, "TrainParams": colbert_train.ColbertTrainParams.preset("mtd", mixing=mixing)})
    return register_system(name)(system)


register_system("mtd-colbertx")(MTDSystem)
for _mixing in ("mix-passages", "mix-entries", "round-robin"):
    mtd_preset(f"mtd-colbertx-{_mixing}", _mixing)
