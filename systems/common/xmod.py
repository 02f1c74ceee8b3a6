"""Post-hoc language addition for XMOD checkpoint folders (ColBERT-XM §3.2 and Fig. 1d).

`add_language_to_checkpoint` adds a language to the XMOD model of a checkpoint folder (a new adapter in
every layer, trained by MLM with everything else frozen: `systems.common.xmod_adapters.add_language`)
and writes a copy in the same layout: a sentence-transformers folder over XMOD (DPR-XM), a Hugging Face
``XmodModel`` / ``XmodForMaskedLM`` folder, or any folder whose ``config.json`` is an XMOD config and
whose weights hold the XMOD backbone under some prefix (colbert-ai's ``HF_ColBERT`` stores it under
``roberta.``, the base-model prefix of XMOD, next to ``linear.weight``). The copy differs from the
original only by the new adapter tensors in the weights file and the longer ``languages`` list in
``config.json``; every other file and tensor is carried over unchanged, so the copy loads through the
same loaders as the original, and routes the new language like any other (``set_default_language``,
`systems.dense.system.DenseSystem`'s routing).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.languages import xmod_code
from harness.training.loop import device
from systems.common.weights import PYTORCH_BIN, SAFETENSORS, SAFETENSORS_INDEX, read_weights, weights_layout
from systems.common.xmod_adapters import AddLanguageParams, add_language, load_lm_head

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import XmodConfig, XmodModel

ADAPTERS = "encoder.layer.0.output.adapter_modules."
"""Key infix (after the backbone prefix) of the first layer's adapters: how a backbone is found in weights."""


def xmod_folder(folder: Path) -> Path:
    """The folder holding the XMOD ``config.json`` and weights: ``folder`` itself (Hugging Face layout,
    colbert-ai's ``HF_ColBERT``) or, in a sentence-transformers folder, its Transformer module's."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    candidates = [folder]
    if (folder / "modules.json").is_file():
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        candidates = [folder / m.get("path", "") for m in modules if m.get("type", "").endswith(".Transformer")]
    for candidate in candidates:
        config = candidate / "config.json"
        if config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "xmod":
            return candidate
    raise ValueError(f"{folder} holds no XMOD model (no config.json with model_type 'xmod'"
                     f"{' in its Transformer module' if len(candidates) != 1 or candidates[0] != folder else ''})")


def backbone_prefix(keys: list[str], folder: Path) -> str:
    """The prefix of the XMOD backbone's keys in a state dict ("" for XmodModel, ``roberta.`` for
    XmodForMaskedLM and colbert-ai's HF_ColBERT, any other wrapper's attribute path)."""
    prefixes = {key[: key.index(ADAPTERS)] for key in keys if ADAPTERS in key}
    if len(prefixes) != 1:
        found = f"{len(prefixes)} ({', '.join(sorted(prefixes))})" if prefixes else "none"
        raise ValueError(f"{folder}: expected the adapters of one XMOD backbone in the weights, found {found}")
    return prefixes.pop()


def load_backbone(config: XmodConfig, tensors: dict[str, torch.Tensor], prefix: str, folder: Path) -> XmodModel:
    """An ``XmodModel`` with exactly the backbone tensors found under ``prefix`` (float32)."""
    from transformers import XmodModel

    own = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
    backbone = XmodModel(config, add_pooling_layer=any(key.startswith("pooler.") for key in own))
    expected = set(backbone.state_dict())
    missing = sorted(expected - set(own))
    if missing:
        raise ValueError(f"{folder}: the XMOD backbone under {prefix!r} lacks {missing[:5]}")
    backbone.load_state_dict({key: own[key] for key in expected})
    return backbone.float().eval()


def checkpoint_head(config: XmodConfig, tensors: dict[str, torch.Tensor], backbone: XmodModel) -> nn.Module | None:
    """The checkpoint's own MLM head (``lm_head.*`` as XmodForMaskedLM saves it), or None."""
    from transformers.models.xmod.modeling_xmod import XmodLMHead

    keys = [key for key in tensors if key.endswith("lm_head.dense.weight")]
    if len(keys) != 1:
        return None
    prefix = keys[0][: -len("dense.weight")]
    head = XmodLMHead(config)
    own = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
    head.dense.load_state_dict({"weight": own["dense.weight"], "bias": own["dense.bias"]})
    head.layer_norm.load_state_dict({"weight": own["layer_norm.weight"], "bias": own["layer_norm.bias"]})
    head.bias.data.copy_(own["bias"])
    head.decoder.bias = head.bias
    if "decoder.weight" in own:
        head.decoder.weight.data.copy_(own["decoder.weight"])
    elif getattr(config, "tie_word_embeddings", True):
        head.decoder.weight = backbone.get_input_embeddings().weight
    else:
        raise ValueError("the checkpoint's lm_head has no decoder weight and does not tie it to the embeddings")
    return head.float().eval()


def write_weights(source: Path, target: Path, tensors: dict[str, torch.Tensor], layout: str,
                  added: dict[str, torch.Tensor], code: str) -> None:
    """Write ``tensors`` plus ``added`` in ``layout`` to ``target`` (a copy of ``source``): one file
    rewritten, or for sharded safetensors one new shard and the index."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    if layout == SAFETENSORS:
        with safe_open(source / SAFETENSORS, "pt") as handle:
            metadata = handle.metadata() or {"format": "pt"}
        save_file({**tensors, **added}, target / SAFETENSORS, metadata=metadata)
    elif layout == PYTORCH_BIN:
        torch.save({**tensors, **added}, target / PYTORCH_BIN)
    else:
        index = json.loads((source / SAFETENSORS_INDEX).read_text(encoding="utf-8"))
        shard = f"model-xmod-{code}.safetensors"
        save_file(added, target / shard, metadata={"format": "pt"})
        index["weight_map"].update(dict.fromkeys(added, shard))
        if "total_size" in index.get("metadata", {}):
            index["metadata"]["total_size"] += sum(t.numel() * t.element_size() for t in added.values())
        (target / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")


def add_language_to_checkpoint(folder: Path, out: Path, texts: list[str], params: AddLanguageParams) -> dict[str, Any]:
    """Add ``params.language`` to the XMOD checkpoint in ``folder`` (see `add_language`) and write the
    result to ``out`` (which must not exist) in the same layout. Returns `add_language`'s facts plus
    where the model and head came from and what was written."""
    from transformers import AutoTokenizer, XmodConfig

    folder, out = Path(folder), Path(out)
    code = xmod_code(params.language)  # an unknown language fails before anything is loaded
    if out.exists():
        raise FileExistsError(f"{out} exists; add_language_to_checkpoint writes a new folder")
    model_dir = xmod_folder(folder)
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config = XmodConfig.from_dict(raw)
    languages = list(config.languages)  # the config's default when config.json has none
    if code in languages:
        raise ValueError(f"{folder} already has an adapter {code!r} for {params.language!r}; its languages: "
                         f"{', '.join(languages)}")
    layout = weights_layout(model_dir)
    tensors = read_weights(model_dir, layout)
    prefix = backbone_prefix(list(tensors), model_dir)
    backbone = load_backbone(config, tensors, prefix, model_dir)
    if params.lm_head is not None:
        head, head_source = load_lm_head(params.lm_head, backbone), params.lm_head
    else:
        head, head_source = checkpoint_head(config, tensors, backbone), "checkpoint"
        if head is None:
            raise ValueError(f"{folder} has no MLM head (lm_head.*); set lm_head to an XmodForMaskedLM id or "
                             f"folder, e.g. 'facebook/xmod-base'")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as error:
        raise ValueError(f"{model_dir} has no loadable tokenizer: {error}") from error
    where = device(params.device)
    backbone.to(where)
    head.to(where)

    facts = add_language(backbone, tokenizer, texts, params, head)

    dtype = next(value.dtype for key, value in tensors.items() if ADAPTERS in key)
    added = {f"{prefix}{key}": value.detach().to("cpu", dtype).contiguous()
             for key, value in backbone.state_dict().items() if f".adapter_modules.{code}." in f".{key}"}
    raw["languages"] = [*languages, code]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = staging / "model"
        skip = {model_dir / layout, model_dir / "config.json"}  # rewritten below
        shutil.copytree(folder, target, ignore=lambda d, names: [n for n in names if Path(d) / n in skip])
        model_target = target / model_dir.relative_to(folder)
        write_weights(model_dir, model_target, tensors, layout, added, code)
        (model_target / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        target.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    facts.update({"checkpoint": str(folder), "out": str(out), "layout": "sentence-transformers" if
                  (folder / "modules.json").is_file() else "huggingface", "weights": layout,
                  "backbone_prefix": prefix, "lm_head": head_source, "added_tensors": sorted(added)})
    return facts

