"""Test-only: where ``HARNESS_IMPORT_TRACE`` names a file, each ``python -m harness STEP`` process
appends a JSON line with its arguments and which heavy libraries it imported. The session's demo run
puts this folder on ``PYTHONPATH`` so a test can hold jobs to their imports (issue 13)."""

import atexit
import json
import os
import sys

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "jnius")


def _record() -> None:
    argv = sys.orig_argv
    if "-m" not in argv or argv[argv.index("-m") + 1 : argv.index("-m") + 2] != ["harness"]:
        return
    with open(os.environ["HARNESS_IMPORT_TRACE"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"argv": argv[argv.index("-m") + 2 :], "imported": [m for m in HEAVY if m in sys.modules]}) + "\n")


if os.environ.get("HARNESS_IMPORT_TRACE"):
    atexit.register(_record)
