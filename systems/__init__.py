"""System families, one module each; `harness.system.catalog` names the module of every system."""
