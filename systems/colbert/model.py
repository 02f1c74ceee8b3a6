"""The torch model of an ``HF_ColBERT`` checkpoint: tokenisation by marker scheme, encoding, MaxSim.

**Input schemes** (``marker_scheme``). Both released checkpoints were trained with the one
colbert-ai had until PR #362 (Aug 2024) and PLAID-X still has (hltcoe/ColBERT-X
``query_tokenization.py``, ``doc_tokenization.py``): the text is prefixed with ``". "``, tokenised,
and position 1 is overwritten with the marker id. ``dot-placeholder`` reproduces it token for
token, whatever the checkpoint's tokenizer makes of the placeholder. XLM-R's cuts ``". "`` into
``▁`` and ``.`` (REFERENCE.md; PR #362: the placeholder is "not robust to tokenizers (e.g.
xlm-roberta) that may not tokenize that as 1 token"), so only the ``▁`` is overwritten and a stray
``.`` follows the marker — kept, because the models saw it in training. The marker id is
``tokenizer.convert_tokens_to_ids(query_token_id)``, as both codebases: ColBERT-XM's XLM-R
tokenizer has no ``[unused0]``/``[unused1]`` and colbert-ai adds none, so [Q] and [D] are both
``<unk>``; MTD's tokenizer carries them as added tokens, so its markers are distinct. ``insert``
is colbert-ai's scheme since PR #362: tokenise with ``max_length - 1``, then insert the marker
after ``<s>`` (no stray ``.``). Queries are padded to ``query_maxlen`` and the pads replaced by
``<mask>`` (attended when ``attend_to_mask_tokens``); documents are truncated to ``doc_maxlen``.

**Encoding** (colbert-ai's ``ColBERT.query``/``doc``). Token states → linear → L2 normalisation;
queries keep every position (pads become masks); documents drop padding and, with
``mask_punctuation``, the tokens colbert-ai skips: the *first* token id of each
``string.punctuation`` symbol tokenised alone (with XLM-R-style tokenizers often ``▁``, as in
colbert-ai itself). Scores are MaxSim (sum over query tokens of the best document token), cosine
or colbert-ai's ``l2``. XMOD: each text goes through the adapter of its own language
(`harness.languages.xmod_code`; ``XmodModel.forward(lang_ids=…)`` per example); an unknown
language or one without an adapter in the checkpoint is an error, never the backbone's silent
English default. XLM-R ignores languages. A batch runs only the XMOD adapters its texts use (the
layer otherwise visits all 81 of ColBERT-XM's); outputs are the same.

`ColbertModel.save` writes the layout it loaded, so a trained model loads back.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.languages import xmod_code
from systems.colbert.checkpoint import (
    CONFIG,
    LINEAR,
    METADATA,
    ColbertSettings,
    checkpoint_folder,
    read_metadata,
    unwrap,
)
from systems.common.weights import PYTORCH_BIN, SAFETENSORS, WEIGHT_FILES, read_weights, weights_layout

D_PADDING = -9999.0
"""Score given to padded document positions before the max (colbert-ai's ``colbert_score_reduce``)."""


def backbone_class(config) -> type[nn.Module]:
    """The transformers base model class for ``config`` (XmodModel, XLMRobertaModel, …)."""
    from transformers import MODEL_MAPPING

    try:
        return MODEL_MAPPING[type(config)]
    except KeyError:
        raise ValueError(f"no transformers base model for model_type {config.model_type!r}") from None


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
        fmt = weights_layout(folder)
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

