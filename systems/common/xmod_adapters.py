"""Language adapters added post hoc to an XMOD model (ColBERT-XM §3.2 and Fig. 1d; X-MOD, Pfeiffer et al. 2022).

A language the model has no adapter for gets one new adapter in every transformer layer, named by the
languages table (`harness.languages.xmod_code`, e.g. ``ru`` → ``ru_RU``). Only those new adapters are
trained, by masked-language modelling on raw text in that language (a batch stream and an MLM loss
handed to `harness.training.loop.fit`); the embeddings, every shared transformer weight, every
existing adapter and the MLM head stay frozen, which `add_language` checks tensor by tensor after
training. The language is then routed like any other: its code is appended to ``config.languages``,
so ``set_default_language(code)`` selects the new adapter, and the other languages' encodings are
bit-identical to before (each text only passes through its own language's adapter).
`systems.common.xmod` does this for a checkpoint folder.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.languages import xmod_code
from harness.training.loop import Optimiser, fit, set_trainable

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import XmodModel


class AddLanguageParams(BaseModel):
    """Settings of one post-hoc language addition.

    ``init_from=None`` (the default) starts the new adapters from a fresh random initialisation, as every
    X-MOD adapter starts in pre-training: weights drawn from N(0, ``config.initializer_range``), biases zero
    (fairseq's ``init_bert_params`` for X-MOD; transformers' ``XmodPreTrainedModel._init_weights``). What
    the sources say about post-hoc addition: X-MOD (Pfeiffer et al., 2022, abstract and introduction) adds
    the modular components during pre-training "thereby preparing the model to be extended to new languages
    post-hoc", with "no measurable drop in performance"; ColBERT-XM (§3.2, Fig. 1d) adds a language by
    "learning additional language-specific modular components only through lightweight MLM training on the
    new language", everything else frozen. Neither passage names an initialisation other than the model's
    own, so the fresh one is the default; the X-MOD paper's experimental section (its exact recipe for the
    post-hoc languages) could not be read here, so this choice is **unverified** against it. ``init_from``
    copies an existing adapter instead (ISO or XMOD code, e.g. a related language's): an option, not the
    default.

    ``lm_head`` is where the MLM head comes from: ``None`` uses the checkpoint's own (an
    ``XmodForMaskedLM`` folder has one; DPR-XM and ColBERT-XM do not, and then this is an error); otherwise
    a hub id or folder of an ``XmodForMaskedLM`` (e.g. ``facebook/xmod-base``, the model DPR-XM and
    ColBERT-XM were fine-tuned from with frozen embeddings) whose head is used, frozen, with its decoder tied
    to the checkpoint's own (frozen) word embeddings.

    The optimisation settings are this harness's defaults, not published values: AdamW with linear warm-up
    and linear decay to zero (the schedule ColBERT-XM and DPR-XM report for their own training).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = Field(description="ISO 639-1 code of the language to add (its adapter is named by the table)")
    steps: int = Field(1000, ge=1, description="optimizer steps")
    batch_size: int = Field(32, ge=1, description="texts per step")
    lr: float = Field(1e-4, gt=0, description="peak learning rate (AdamW)")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="share of steps with linear warm-up")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping; None: none")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of tokens masked (BERT's 80/10/10 recipe)")
    max_length: int = Field(256, ge=3, description="tokens per text (capped by the model's positions)")
    seed: int = Field(0, description="seeds adapter init, shuffling, masking and dropout")
    init_from: str | None = Field(None, description="existing adapter (ISO or XMOD code) to copy; None: fresh init")
    lm_head: str | None = Field(None, description="XmodForMaskedLM id/folder giving the MLM head; None: the "
                                                  "checkpoint's own")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available "
                                                   "(add_language_to_checkpoint only)")


def find_xmod(model: Any) -> XmodModel:
    """The ``XmodModel`` inside ``model``: the model itself, a transformers model with a head, a
    sentence-transformers model (``model[0].auto_model``) or any module or object holding one."""
    from torch import nn
    from transformers import XmodModel

    if isinstance(model, XmodModel):
        return model
    seen: set[int] = set()
    found: list[XmodModel] = []

    def visit(obj: Any, depth: int) -> None:
        if id(obj) in seen or depth > 3:
            return
        seen.add(id(obj))
        if isinstance(obj, nn.Module):
            for module in obj.modules():
                if isinstance(module, XmodModel) and all(module is not other for other in found):
                    found.append(module)
            return
        for value in getattr(obj, "__dict__", {}).values():
            if isinstance(value, nn.Module) or hasattr(value, "__dict__") and not isinstance(value, type):
                visit(value, depth + 1)

    visit(model, 0)
    if not found:
        raise ValueError(f"no XMOD model (transformers XmodModel) in {type(model).__name__}")
    if len(found) > 1:
        raise ValueError(f"{type(model).__name__} holds {len(found)} XMOD models; pass the one to extend")
    return found[0]


def resolve_adapter(backbone: XmodModel, code: str) -> str:
    """The adapter name of ``code`` (an XMOD code the model has, or an ISO code), checked to exist."""
    languages = list(backbone.config.languages)
    name = code if code in languages else xmod_code(code)
    if name not in languages:
        raise ValueError(f"{code!r} (adapter {name!r}) is not an adapter of this model; its languages: "
                         f"{', '.join(languages)}")
    return name


def load_lm_head(source: str, backbone: XmodModel) -> nn.Module:
    """The MLM head of the ``XmodForMaskedLM`` at ``source`` (hub id or folder), checked to fit ``backbone``,
    its decoder tied to ``backbone``'s word embeddings when the source ties them."""
    from transformers import XmodForMaskedLM

    try:
        donor = XmodForMaskedLM.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ValueError(f"lm_head {source!r} is not a loadable XmodForMaskedLM: {error}") from error
    head = donor.lm_head
    embeddings = backbone.get_input_embeddings().weight
    if head.decoder.weight.shape != embeddings.shape:
        raise ValueError(f"lm_head {source!r} predicts {head.decoder.weight.shape[0]} tokens of width "
                         f"{head.decoder.weight.shape[1]}; the backbone has {embeddings.shape[0]} of width "
                         f"{embeddings.shape[1]}")
    if getattr(donor.config, "tie_word_embeddings", True):
        head.decoder.weight = embeddings
    return head.to(embeddings.device)


def add_language(backbone: XmodModel, tokenizer: Any, texts: list[str], params: AddLanguageParams,
                 lm_head: nn.Module | None) -> dict[str, Any]:
    """Add ``params.language``'s adapter to every layer of ``backbone`` (in place), train it by MLM on
    ``texts`` with everything else frozen, and route the language to it (``config.languages``).

    ``lm_head`` maps the backbone's last hidden states to vocabulary logits (an ``XmodLMHead``); it is
    required (see `load_lm_head`). Training runs on the backbone's device, under bf16 autocast on CUDA.
    On failure the model is left as it was. Returns `fit`'s facts and the adapter's: its code and
    index, parameter counts, data and masked tokens."""
    import torch
    from torch import nn

    code = xmod_code(params.language)
    config = backbone.config
    layers = list(backbone.encoder.layer)
    existing = [name for name in config.languages]
    if code in existing or any(code in layer.output.adapter_modules for layer in layers):
        raise ValueError(f"the model already has an adapter {code!r} for {params.language!r}; its languages: "
                         f"{', '.join(existing)}")
    if [list(layer.output.adapter_modules) for layer in layers] != [existing] * len(layers):
        raise ValueError(f"config.languages {existing} does not match the adapters of every layer")
    source = resolve_adapter(backbone, params.init_from) if params.init_from is not None else None
    if lm_head is None:
        raise ValueError("add_language needs an MLM head (lm_head); see load_lm_head")
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no mask or pad token")

    device = backbone.get_input_embeddings().weight.device
    limit = params.max_length
    if config.pad_token_id is not None:  # RoBERTa-style positions start after the padding index
        limit = min(limit, config.max_position_embeddings - config.pad_token_id - 1)
    sequences = encode_texts(tokenizer, texts, limit)

    modes = {module: module.training for module in (backbone, lm_head)}
    flags = {p: p.requires_grad for p in list(backbone.parameters()) + list(lm_head.parameters())}
    both = nn.ModuleDict({"backbone": backbone, "lm_head": lm_head})
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(params.seed)
        adapters = new_adapters(backbone, source)
        for layer, adapter in zip(layers, adapters, strict=True):
            layer.output.adapter_modules[code] = adapter
        config.languages = [*existing, code]
        index = len(existing)
        new_ids = {id(p) for adapter in adapters for p in adapter.parameters()}
        before = {key: value.detach().to("cpu", copy=True) for key, value in _state(backbone, lm_head).items()
                  if id(value) not in new_ids}
        new_names = {name for name, p in both.named_parameters() if id(p) in new_ids}
        set_trainable(both, new_names.__contains__)
        trainable = [p for adapter in adapters for p in adapter.parameters()]
        vocab = min(len(tokenizer), config.vocab_size)
        special = set(tokenizer.all_special_ids)
        masked: list[int] = []

        def mlm_loss(batch: list[int]) -> torch.Tensor:
            ids, attention, labels = mask_batch([sequences[i] for i in batch], tokenizer.pad_token_id,
                                                tokenizer.mask_token_id, special, vocab, params.mlm_probability)
            ids, attention, labels = ids.to(device), attention.to(device), labels.to(device)
            lang_ids = torch.full((ids.shape[0],), index, dtype=torch.long, device=device)
            hidden = backbone(input_ids=ids, attention_mask=attention, lang_ids=lang_ids).last_hidden_state
            selected = labels != -100
            masked.append(int(selected.sum()))
            return nn.functional.cross_entropy(lm_head(hidden[selected]).float(), labels[selected])

        optimiser = Optimiser(lr=params.lr, steps=params.steps, warmup_steps=round(params.warmup_ratio * params.steps),
                              weight_decay=params.weight_decay, max_grad_norm=params.max_grad_norm)
        try:
            facts = fit(both, batches(len(sequences), params.batch_size, params.steps), mlm_loss, optimiser,
                        str(device))
        except BaseException:
            for layer in layers:  # leave the model as it was
                del layer.output.adapter_modules[code]
            config.languages = existing
            raise
        finally:
            for module, mode in modes.items():
                module.train(mode)
            for p, flag in flags.items():
                p.requires_grad_(flag)
    like = next(layers[0].output.adapter_modules[existing[0]].parameters()).requires_grad if existing else False
    for p in trainable:  # the new adapters end up as trainable as the existing ones were
        p.requires_grad_(like)

    after = _state(backbone, lm_head)
    changed = sorted(key for key, value in before.items() if not torch.equal(value, after[key].detach().cpu()))
    if changed:
        raise RuntimeError(f"frozen tensors changed while training the {code} adapters: {changed[:5]}")
    if not all(torch.isfinite(p).all() for p in trainable):
        raise RuntimeError(f"the {code} adapters hold non-finite values after training")
    return {
        "language": params.language, "adapter": code, "adapter_index": index, "languages": list(config.languages),
        "init_from": source or "fresh (normal(0, initializer_range), zero bias)",
        "layers": len(layers), "adapter_parameters_per_layer": sum(p.numel() for p in adapters[0].parameters()),
        **facts,
        "frozen_parameters": sum(p.numel() for p in _unique_params(backbone, lm_head) if id(p) not in new_ids),
        "verified_unchanged_tensors": len(before),
        "texts": len(texts), "sequences": len(sequences), "tokens": sum(len(s) for s in sequences),
        "masked_tokens": sum(masked), "max_length": limit,
    }


def _unique_params(*modules: nn.Module) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def _state(backbone: nn.Module, lm_head: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of backbone and head, by name (``backbone.`` / ``lm_head.``)."""
    state = {f"backbone.{k}": v for k, v in backbone.state_dict(keep_vars=True).items()}
    state.update({f"lm_head.{k}": v for k, v in lm_head.state_dict(keep_vars=True).items()})
    return state


def new_adapters(backbone: XmodModel, source: str | None) -> list[nn.Module]:
    """One new adapter per layer: a copy of ``source``'s, or freshly initialised as X-MOD initialises
    its modules (weights N(0, initializer_range), biases zero), on the backbone's device and dtype."""
    import torch
    from transformers.models.xmod.modeling_xmod import XmodAdapter

    weight = backbone.get_input_embeddings().weight
    adapters = []
    for layer in backbone.encoder.layer:
        if source is not None:
            adapter = copy.deepcopy(layer.output.adapter_modules[source])
        else:
            adapter = XmodAdapter(backbone.config)
            with torch.no_grad():
                for linear in (adapter.dense1, adapter.dense2):
                    linear.weight.normal_(0.0, backbone.config.initializer_range)
                    linear.bias.zero_()
        adapters.append(adapter.to(device=weight.device, dtype=weight.dtype))
    return adapters


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (with the tokenizer's special tokens), truncated; texts with no ordinary
    token (empty ones) are dropped. An error when none is left."""
    if not texts:
        raise ValueError("no texts to learn the new language from")
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    special = set(tokenizer.all_special_ids)
    sequences = [ids for ids in encoded if any(i not in special for i in ids)]
    if not sequences:
        raise ValueError(f"none of the {len(texts)} texts has a token to mask")
    return sequences


def batches(n: int, batch_size: int, steps: int) -> Iterator[list[int]]:
    """``steps`` batches of positions in ``range(n)``: shuffled epochs (torch's seeded RNG), the last
    batch of an epoch possibly shorter; a batch never exceeds the data."""
    import torch

    done = 0
    while done < steps:
        order = torch.randperm(n).tolist()
        for start in range(0, n, batch_size):
            if done == steps:
                return
            yield order[start : start + batch_size]
            done += 1


def mask_batch(sequences: list[list[int]], pad: int, mask: int, special: set[int], vocab: int,
               probability: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ids, attention mask and MLM labels (-100 where not predicted): each ordinary token is
    selected with ``probability`` (at least one per batch), and a selected token is replaced by
    ``<mask>`` 80% of the time, by a random token 10%, kept 10% (BERT / RoBERTa)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        attention[row, : len(sequence)] = 1
    candidates = attention.bool() & ~torch.isin(ids, torch.tensor(sorted(special), dtype=torch.long))
    selected = candidates & (torch.rand(ids.shape) < probability)
    if not selected.any():
        positions = candidates.nonzero()
        row, col = positions[torch.randint(len(positions), (1,))][0]
        selected[row, col] = True
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape)
    ids = torch.where(selected & (draw < 0.8), torch.full_like(ids, mask), ids)
    randomised = selected & (draw >= 0.8) & (draw < 0.9)
    ids = torch.where(randomised, torch.randint(vocab, ids.shape), ids)
    return ids, attention, labels
