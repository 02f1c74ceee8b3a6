"""Which device torch runs on and which faiss build is installed.

faiss comes as one of two builds, the ``cpu`` or the ``gpu`` extra (both install the ``faiss``
module); systems import it through `require_faiss`, so a missing build is a one-line error naming
the extras where a system needs faiss, never at import of the core. `used` describes what
the current process has imported (the registry's record of what ran); `probe` imports torch and
faiss to describe what a step would use (``harness systems --device``).
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import Any

INSTALL_FAISS = "pip install -e '.[cpu]', or '.[gpu]' on a CUDA server"
FAISS_MISSING = f"faiss is not installed: {INSTALL_FAISS}"


class MissingExtra(ModuleNotFoundError):
    """An optional dependency that the installed extras lack."""


def require_faiss() -> ModuleType:
    """The ``faiss`` module; a `MissingExtra` naming the extras when no build is installed."""
    try:
        import faiss
    except ModuleNotFoundError as e:
        if e.name != "faiss":
            raise
        raise MissingExtra(FAISS_MISSING, name="faiss") from None
    return faiss


FAISS_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11")
"""The PyPI distributions of the ``faiss`` module, looked up by name first (a millisecond; mapping
every installed distribution's files to find the others takes half a second)."""


@cache
def faiss_package() -> str:
    """The distribution that installed the ``faiss`` module (``faiss-cpu``, ``faiss-gpu``, ...)."""
    names = []
    for name in FAISS_DISTRIBUTIONS:
        try:
            names.append(metadata.distribution(name).name)
        except metadata.PackageNotFoundError:
            pass
    names = names or metadata.packages_distributions().get("faiss", [])
    return "+".join(sorted(set(names))) or "unknown"


def faiss_build(faiss: ModuleType) -> dict[str, Any]:
    """Package, version, whether GPU support is compiled in and how many GPUs faiss sees."""
    gpu_support = hasattr(faiss, "StandardGpuResources")
    return {"package": faiss_package(), "version": faiss.__version__, "gpu_support": gpu_support,
            "gpus": faiss.get_num_gpus() if gpu_support else 0}


def torch_device(torch: ModuleType, initialised_only: bool) -> dict[str, Any]:
    """torch's version, the CUDA it was built for and its device: ``cuda`` with the GPUs' names when
    CUDA is available (``initialised_only``: when this process has used CUDA), else ``cpu``."""
    cuda = torch.cuda.is_initialized() if initialised_only else torch.cuda.is_available()
    info: dict[str, Any] = {"device": "cuda" if cuda else "cpu", "torch": torch.__version__,
                            "torch_cuda": torch.version.cuda}
    if cuda:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def used() -> dict[str, Any]:
    """The device and faiss build of what this process imported (nothing for a module it did not)."""
    info: dict[str, Any] = {}
    if (torch := sys.modules.get("torch")) is not None:
        info.update(torch_device(torch, initialised_only=True))
    if (faiss := sys.modules.get("faiss")) is not None:
        info["faiss"] = faiss_build(faiss)
    return info


def probe() -> dict[str, Any]:
    """What a step would use here: imports torch and faiss (``faiss`` is None when not installed)."""
    import torch

    try:
        faiss: dict[str, Any] | None = faiss_build(require_faiss())
    except MissingExtra:
        faiss = None
    return {**torch_device(torch, initialised_only=False), "faiss": faiss}


def describe(info: dict[str, Any]) -> list[str]:
    """Two lines for people: the torch device, the faiss build."""
    gpus = info.get("gpus", [])
    where = f"cuda ({', '.join(gpus)})" if info["device"] == "cuda" else "cpu (no CUDA device visible)"
    lines = [f"device: {where}, torch {info['torch']}, built for CUDA {info['torch_cuda'] or 'none (CPU build)'}"]
    faiss = info.get("faiss")
    if faiss is None:
        lines.append(f"faiss:  not installed ({INSTALL_FAISS})")
    else:
        support = f"GPU support compiled in, {faiss['gpus']} GPU(s) visible" if faiss["gpu_support"] else "CPU only"
        lines.append(f"faiss:  {faiss['package']} {faiss['version']}, {support}")
    return lines
