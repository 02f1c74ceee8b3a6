"""System families; importing this package registers each with `harness.system`."""

from systems import bm25, colbert, dense, nllb_e5  # noqa: F401
