"""Suites are data: one YAML per suite in ``suites/``, validated by these pydantic models.

A suite names datasets (an id template with ``{lang}`` and the languages to expand it over),
systems (a table label → registered system name and params), measures and retrieval depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.data import DataError, check_dataset_id
from harness.evaluate import parse_measures
from harness.languages import language
from harness.paths import suite_dirs
from harness.system import SystemConfigError, system_params, train_params
from harness.validation import one_line

LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"


def _known_languages(codes: list[str]) -> list[str]:
    for code in codes:
        language(code)
    return codes


Languages = Annotated[list[str], AfterValidator(_known_languages)]
"""ISO codes, each one the languages table knows."""


class SuiteError(ValueError):
    """A suite file that is missing or does not validate."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(Strict):
    name: str = Field(pattern=LABEL, description="label used in paths and tables")
    id: str = Field(description="dataset id; '{lang}' is replaced by each language")
    languages: Languages = Field(default_factory=list, description="languages to expand '{lang}' over")
    overrides: dict[str, str] = Field(default_factory=dict, description="language → full dataset id, where the "
                                      "template does not fit (mMARCO's English and Dutch)")
    shards: int = Field(1, ge=1, description="index in this many shard jobs, merged at the end")
    ignore_identical_ids: bool = Field(False, description="evaluate without a retrieved doc whose id is the "
                                       "query's own (BEIR's evaluator and MTEB's ArguAna and FiQA tasks do)")

    def expand(self) -> list[Unit]:
        if not self.languages:
            if "{lang}" in self.id:
                raise SuiteError(f"dataset {self.name!r}: id has '{{lang}}' but no languages are listed")
            return [Unit(self.name, "all", self.id, self.shards, self.ignore_identical_ids)]
        if "{lang}" not in self.id and len(self.languages) > 1:
            raise SuiteError(f"dataset {self.name!r}: several languages but no '{{lang}}' in the id")
        unknown = set(self.overrides) - set(self.languages)
        if unknown:
            raise SuiteError(f"dataset {self.name!r}: overrides for languages not listed: {sorted(unknown)}")
        return [Unit(self.name, code, self.overrides.get(code, self.id.replace("{lang}", code)), self.shards,
                     self.ignore_identical_ids) for code in self.languages]


PASSAGE_TOKENIZER = "FacebookAI/xlm-roberta-large"
"""PLAID-X's passage tokenizer (``collection_utils.py create_passage_collection``: ``xlm-roberta-large``)."""
PASSAGE_SEARCH_DEPTH = 2500
"""PLAID-X's passages per query (``scripts/search.py --search_depth``), MaxP'd to the top 1,000 documents."""


class PassageSpec(Strict):
    """Passage splitting for long documents. The defaults are PLAID-X's, as MTD ran it: 180 tokens of
    xlm-roberta-large every 90 tokens, MaxP over the top 2,500 passages per query."""

    unit: Literal["tokens", "words"] = Field("tokens", description="tokens of `tokenizer`; or words (characters "
                                             "in scripts written without spaces)")
    tokenizer: str | None = Field(PASSAGE_TOKENIZER, description="tokenizer (hub id or folder) counting tokens; "
                                  "only with unit: tokens")
    length: int = Field(180, gt=0, description="units per passage")
    stride: int = Field(90, gt=0, description="units from one passage's start to the next's")
    aggregate: Literal["maxp", "firstp"] = "maxp"
    search_depth: int | None = Field(PASSAGE_SEARCH_DEPTH, ge=1, description="passages retrieved per query "
                                     "(PLAID-X: 2,500); null: search_factor × the run depth")
    search_factor: int = Field(5, ge=1, description="passages retrieved per document of the run depth, where "
                               "search_depth is null (giving search_factor alone makes it null)")

    @model_validator(mode="before")
    @classmethod
    def _implied(cls, data: Any) -> Any:
        """``unit: words`` has no tokenizer; ``search_factor`` alone replaces the passage depth."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("unit") == "words":
            if data.get("tokenizer") is not None:
                raise ValueError(f"passages: tokenizer {data['tokenizer']!r} needs unit: tokens, not words")
            data["tokenizer"] = None
        if "search_factor" in data and "search_depth" not in data:
            data["search_depth"] = None
        elif "search_factor" in data and data["search_depth"] is not None:
            raise ValueError("passages: give search_depth or search_factor, not both")
        return data

    @model_validator(mode="after")
    def _tokenizer_given(self) -> PassageSpec:
        if self.unit == "tokens" and not self.tokenizer:
            raise ValueError("passages: unit tokens needs a tokenizer")
        return self

    def passages_searched(self, k: int) -> int:
        """Passages to retrieve for a run of depth ``k``."""
        n = self.search_depth if self.search_depth is not None else k * self.search_factor
        if n < k:
            raise ValueError(f"passages: search_depth {n} is below the run depth {k}")
        return n


class TrainSpec(Strict):
    """Train the system before indexing: its recipe on the training splits of ``data``."""

    data: str = Field(description="dataset id ('{lang}' expanded over languages) whose training split is used")
    split: Literal["training", "dataset"] = Field("training", description="training: the collection's training "
                                                  "split (synthetic); dataset: the id names training data itself "
                                                  "(e.g. irds:mmarco/v2/{lang}/train)")
    languages: Languages = Field(min_length=1, description="languages of the (parallel) training splits")
    teacher: str | None = Field(None, description="TREC run over the training queries: hard negatives and "
                                "teacher scores; none = random negatives, relevance grades as scores")
    init: Literal["checkpoint", "tiny"] = Field("checkpoint", description="start from the system's checkpoint, "
                                                "or from a tiny random one in its real layout (offline demos)")
    params: dict[str, Any] = Field(default_factory=dict, description="the recipe's settings (its TrainParams)")

    def dataset_ids(self) -> dict[str, str]:
        """Language → dataset id of each training collection."""
        if "{lang}" not in self.data and len(self.languages) > 1:
            raise SuiteError(f"train data {self.data!r}: several languages but no '{{lang}}' in the id")
        return {code: self.data.replace("{lang}", code) for code in self.languages}


class SystemSpec(Strict):
    system: str = Field(description="registered system name (see `harness systems`)")
    params: dict[str, Any] = Field(default_factory=dict)
    passages: PassageSpec | None = Field(None, description="index passages and aggregate them to documents")
    train: TrainSpec | None = Field(None, description="train the system first; index and search with the result")


class CostSpec(Strict):
    """Energy (codecarbon, offline) and latency settings; absent means cost is not measured."""

    country: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3 code for carbon intensity")
    region: str | None = Field(None, description="region within the country, where codecarbon knows it")
    latency_queries: int = Field(100, gt=0, description="queries timed one by one")
    warmup: int = Field(10, ge=0)
    batch_size: int = Field(32, gt=0, description="batch size for the throughput figure")
    tdp_watts: float | None = Field(None, gt=0, description="device TDP for the papers' TDP x hours estimate")


class StatsSpec(Strict):
    """Significance and equivalence tests over a family the suite declares."""

    baseline: str | None = Field(None, description="system label compared against; none = all pairs")
    tests: list[Literal["t-test", "wilcoxon", "randomisation", "tost"]] = ["t-test", "tost"]
    alternative: Literal["two-sided", "greater", "less"] = "two-sided"
    correction: Literal["none", "bonferroni", "holm", "fdr_bh"] = "bonferroni"
    family: Literal["all", "per-measure", "per-collection"] = "all"
    alpha: float = Field(0.05, gt=0, lt=1)
    margin: float = Field(0.05, gt=0, description="TOST equivalence margin, absolute on the measure's scale")


class Suite(Strict):
    name: str = Field(pattern=LABEL)
    description: str = ""
    depth: int = Field(1000, gt=0, description="results kept per query")
    measures: list[str] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    systems: dict[str, SystemSpec] = Field(min_length=1)
    statistics: StatsSpec = StatsSpec()
    cost: CostSpec | None = None

    @field_validator("measures")
    @classmethod
    def _parsable(cls, names: list[str]) -> list[str]:
        parse_measures(names)
        return names

    @field_validator("systems")
    @classmethod
    def _labels(cls, systems: dict[str, SystemSpec]) -> dict[str, SystemSpec]:
        import re

        for label in systems:
            if not re.match(LABEL, label):
                raise ValueError(f"system label {label!r} must match {LABEL}")
        return systems

    @model_validator(mode="after")
    def _baseline_known(self) -> Suite:
        if self.statistics.baseline is not None and self.statistics.baseline not in self.systems:
            raise ValueError(f"statistics baseline {self.statistics.baseline!r} is not one of the systems")
        for label, spec in self.systems.items():
            if spec.passages is not None and (spec.passages.search_depth or self.depth) < self.depth:
                raise ValueError(f"system {label!r}: passages search_depth {spec.passages.search_depth} is below "
                                 f"the suite depth {self.depth}")
        return self

    def units(self) -> list[Unit]:
        """Every (dataset, language) the suite evaluates, in declaration order."""
        units = [u for d in self.datasets for u in d.expand()]
        keys = [(u.dataset, u.lang) for u in units]
        if len(set(keys)) != len(keys):
            raise SuiteError(f"suite {self.name!r}: a dataset name/language pair is listed twice")
        return units

    def unit(self, dataset: str, lang: str) -> Unit:
        for u in self.units():
            if (u.dataset, u.lang) == (dataset, lang):
                return u
        raise SuiteError(f"suite {self.name!r} has no dataset {dataset!r} in language {lang!r}")

    def system(self, label: str) -> SystemSpec:
        if label not in self.systems:
            raise SuiteError(f"suite {self.name!r} has no system {label!r}; it has {', '.join(self.systems)}")
        return self.systems[label]


@dataclass(frozen=True)
class Unit:
    """One evaluated collection: dataset label, language key (``all`` if not split), dataset id and
    the number of shards its index is built in, and whether evaluation drops a doc whose id is the
    query's."""

    dataset: str
    lang: str
    dataset_id: str
    shards: int = 1
    ignore_identical_ids: bool = False


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        return path
    candidates = [folder / f"{name_or_path}.yaml" for folder in suite_dirs()]
    return next((c for c in candidates if c.is_file()), candidates[-1])


class DuplicateKey(yaml.YAMLError):
    """A mapping key given twice (PyYAML would silently keep the last)."""

    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r}")
        self.key, self.line = key, line


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key repeated in one mapping (`DuplicateKey`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # unhashable: SafeLoader reports it
                pass
        return super().construct_mapping(node, deep=deep)


def check_suite(suite: Suite, path: Path) -> None:
    """Find, before any job runs, what a job would reject; each as a one-line `SuiteError` naming
    ``path``: every dataset id and training data id (`check_dataset_id`: scheme, options and their
    values, languages, local folders), every system's name and params, and its training recipe's.

    Local data is looked for only where its location is given: an id whose path holds an unset
    ``$VARIABLE`` (the shipped suites' ``$CLEF_ROOT``) is checked for everything but
    its folder, so a suite plans on a machine without the data; ir_datasets ids are looked up in its
    registry, and nothing is downloaded. Checking params imports the system's module."""

    @contextmanager
    def about(what: str) -> Iterator[None]:
        try:
            yield
        except (DataError, SystemConfigError, SuiteError) as e:
            raise SuiteError(f"{path}: {what}{e}") from None

    with about(""):
        units = suite.units()
    for unit in units:
        with about(f"dataset {unit.dataset!r} ({unit.lang}): "):
            check_dataset_id(unit.dataset_id)
    for label, spec in suite.systems.items():
        with about(f"system {label!r}: "):
            system_params(spec.system, spec.params)
            if spec.train is None:
                continue
            train_params(spec.system, spec.train.params)
            train_ids = spec.train.dataset_ids()
        for lang, dataset_id in train_ids.items():
            with about(f"system {label!r}: train data ({lang}): "):
                check_dataset_id(dataset_id)


def load_suite(name_or_path: str, check: bool = True) -> Suite:
    """The suite ``suites/<name>.yaml`` (or a YAML path), validated, and checked (`check_suite`)
    unless ``check`` is false: jobs and reports, which run after planning checked the suite, skip
    it (checking params imports every system's module)."""
    path = suite_path(name_or_path)
    if not path.is_file():
        known = sorted({p.stem for folder in suite_dirs() for p in folder.glob("*.yaml")})
        raise SuiteError(f"no suite file {path}; known suites: {', '.join(known)}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
        suite = Suite(**raw)
    except DuplicateKey as e:
        raise SuiteError(f"{path}:{e.line}: duplicate key {e.key!r}") from None
    except yaml.MarkedYAMLError as e:
        line = f":{e.problem_mark.line + 1}" if e.problem_mark else ""
        raise SuiteError(f"{path}{line}: not valid YAML ({e.problem})") from None
    except (yaml.YAMLError, TypeError) as e:
        raise SuiteError(f"{path}: not a suite mapping ({e})") from None
    except ValidationError as e:
        raise SuiteError(f"{path}: {one_line(e)}") from None
    if suite.name != path.stem:
        raise SuiteError(f"{path}: name {suite.name!r} must match the file name {path.stem!r}")
    if check:
        check_suite(suite, path)
    return suite
