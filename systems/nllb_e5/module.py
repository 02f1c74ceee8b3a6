"""NLLB-E5's input module: a frozen NLLB encoder feeding E5 (with LoRA) through a projection.

The sentence-transformers module of seed 002's model, its config, building, saving and loading.

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
  included), as E5's own mean pooling over ``"query: …"``.
- NLLB stays in eval mode (no dropout) even when the module trains: it is a frozen feature extractor.
- A plain ``encode`` without a task is encoded as a query (E5's advice for non-retrieval use).

Checkpoint layout (what training and `systems.nllb_e5.tiny` write)
------------------------------------------------------------------
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
its own package), which the system's params default to. modules.json names the module class
``systems.nllb_e5.NllbE5Module`` (`CLASS_HOME`): the package exposes it without importing torch.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.checkpoints import resolve_model
from harness.languages import nllb_code
from harness.training.loop import set_trainable

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
DOCUMENT_TASKS = frozenset({"document", "passage", "corpus"})
CLASS_HOME = "systems.nllb_e5"
"""The module of `NllbE5Module` as checkpoints' modules.json name it (``systems.nllb_e5.NllbE5Module``)."""


def trained_parameter(name: str) -> bool:
    """Whether a module parameter trains: the projection's and E5's LoRA, never NLLB's or E5's base weights."""
    return name.startswith("projection.") or (name.startswith("e5.") and "lora_" in name)


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
        set_trainable(self, trained_parameter)
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

    return type("NllbE5Module", (NllbE5, InputModule), {"__module__": CLASS_HOME, "__doc__": __doc__.split("\n")[0]})


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


def build(nllb: str, nllb_revision: str | None, e5: str, e5_revision: str | None, seed: int,
          device: str | None = None) -> SentenceTransformer:
    """A new untrained NLLB-E5 over two base models (not cached)."""
    config = NllbE5Config(nllb=nllb, nllb_revision=nllb_revision, e5=e5, e5_revision=e5_revision)
    return sentence_transformer(module_class().build(config, seed), device)
