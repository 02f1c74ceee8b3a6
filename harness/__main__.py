"""`python -m harness`: the `harness` command (every Snakemake job runs one step through it)."""

import sys

from harness.cli import main

sys.exit(main())
