"""One-line messages for pydantic validation errors (suite files and system params are pydantic models)."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

SCALARS = (str, int, float, bool, type(None))


def one_line(error: ValidationError, model: type[BaseModel] | None = None, noun: str = "key") -> str:
    """Every error of ``error`` as ``noun 'dotted.key': message``, joined by ``; ``; an unknown
    top-level key lists ``model``'s fields."""
    parts = []
    for err in error.errors(include_url=False):
        key = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            known = f"; known: {', '.join(model.model_fields)}" if model is not None and len(err["loc"]) == 1 else ""
            parts.append(f"unknown {noun} {key!r}{known}")
        elif err["type"] == "missing":
            parts.append(f"{noun} {key!r} is required")
        else:
            got = f" (got {err['input']!r})" if isinstance(err["input"], SCALARS) and err["type"] != "value_error" else ""
            parts.append(f"{noun} {key!r}: {message}{got}" if key else message)
    return " ".join("; ".join(parts).splitlines())
