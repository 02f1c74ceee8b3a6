"""System families; importing this package registers each with `harness.system`."""

from systems import bm25, dense  # noqa: F401
