"""System families; importing this package registers each with `harness.system`."""

from systems import bm25  # noqa: F401
