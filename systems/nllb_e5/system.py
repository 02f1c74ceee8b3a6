"""NLLB-E5 (seed 002) as a dense system: a frozen NLLB encoder feeding E5 through a projection,
distilled from E5.

The model is a sentence-transformers model — ``NllbE5Module`` (`systems.nllb_e5.module`) →
``Pooling('mean')`` → ``Normalize`` — so `DenseSystem` indexes and searches with it unchanged
(faiss, shards, MRL, quantisation). Queries and passages are told apart by the ``task``
sentence-transformers gives ``encode_query`` / ``encode_document`` (``"query"`` / ``"document"``),
not by a text prompt. The module has ``language_key`` / ``set_language``, DenseSystem's routing
hook: every text is encoded with ``src_lang`` = the NLLB code of its own language
(`harness.languages.nllb_code`); a language outside the table raises `UnsupportedLanguage`, one
whose code the checkpoint's tokenizer lacks a ValueError — never NLLB's silent unknown-token
fallback.

No released checkpoint exists: with ``model`` unset the system builds NLLB-E5 *untrained* from
the ``nllb`` and ``e5`` hub ids (projection and LoRA initialised from ``init_seed``; LoRA starts
as the identity), and `train` (`systems.nllb_e5.train`) produces the checkpoint; `tiny`
(`systems.nllb_e5.tiny`) writes a random one in the same layout.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.checkpoints import checkpoint_identity
from harness.data.base import Dataset
from harness.training import TrainingData, loop
from systems.dense.system import DenseParams, DenseSystem, load_model
from systems.nllb_e5.module import E5_LARGE, NLLB_1_3B, NLLB_600M, build, load
from systems.nllb_e5.tiny import write_tiny
from systems.nllb_e5.train import NllbE5TrainParams, distill_and_save

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class NllbE5Params(DenseParams):
    model: str | None = Field(None, description="trained NLLB-E5 checkpoint folder (systems/nllb_e5/module.py "
                                                "layout); None: NLLB-E5 built untrained from nllb and e5")
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


class NllbE5System(DenseSystem):
    """NLLB-E5 as a dense system (see the module docstring)."""

    Params = NllbE5Params
    TrainParams = NllbE5TrainParams
    params: NllbE5Params

    def _device(self) -> str:
        return loop.device(self.params.device)

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
        return distill_and_save(self.fresh_encoder(), data, params, out)

    def tiny(self, data: TrainingData, out: Path) -> NllbE5System:
        write_tiny(Path(out), data, self.params.e5, self.params.init_seed)
        return self.with_checkpoint(Path(out), "tiny")
