"""NLLB-E5 family: the input module (`module`), the system (`system`), distillation (`train`) and
tiny checkpoints (`tiny`).

Checkpoints name their module class ``systems.nllb_e5.NllbE5Module`` in modules.json; it is built
on first access, so importing the package imports neither torch nor sentence-transformers.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "NllbE5Module":
        from systems.nllb_e5.module import module_class

        return module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
