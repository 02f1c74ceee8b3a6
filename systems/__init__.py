"""System families; importing this package registers each with `harness.system`."""

from systems import bm25, colbert, dense  # noqa: F401
