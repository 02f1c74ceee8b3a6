"""System families, one module each; `harness.catalog` names the module of every system."""
