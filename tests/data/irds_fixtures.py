"""Helpers of the ir_datasets loader's tests: files staged at ir_datasets' cache paths, checks in a
fresh interpreter.

ir_datasets fixes its home directory (``IR_DATASETS_HOME``) when its dataset modules are imported,
so every check runs in a fresh interpreter with the variable set. Sockets are disabled in that
interpreter, so a file that is not staged fails fast instead of retrying downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path


def downloads_config() -> dict:
    """ir_datasets' own ``etc/downloads.json`` (of the installed version)."""
    return json.loads(resources.files("ir_datasets").joinpath("etc/downloads.json").read_text(encoding="utf-8"))


def stage(home: Path, top: str, files: Mapping[str, str | bytes]) -> dict[str, Path]:
    """Write ``files`` (downloads.json key under ``top`` → text, written as UTF-8, or bytes) where
    ir_datasets looks for them.

    A dataset's files live under ``IR_DATASETS_HOME/<top>/<cache_path>``; the cache path comes
    from ir_datasets' own ``etc/downloads.json``, so the tests follow the installed version.
    """
    config = downloads_config()[top]
    written = {}
    for key, content in files.items():
        entry = config[key]
        assert "cache_path" in entry, f"{top}/{key} has no cache_path in downloads.json"
        path = home / top / entry["cache_path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        written[key] = path
    return written


def tsv(rows: Iterable[Iterable[str]]) -> str:
    """Rows as tab-separated lines."""
    return "".join("\t".join(row) + "\n" for row in rows)


PRELUDE = textwrap.dedent(
    """
    import json, socket, sys

    def _no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.create_connection = _no_network
    socket.getaddrinfo = _no_network

    from harness.data import DataError, load_dataset
    """
)
"""What every isolated check runs first: sockets disabled, the loader imported."""


def run_isolated(home: Path, body: str, timeout: float = 60, expect_download_attempt: bool = False) -> dict:
    """Run ``body`` in a fresh interpreter with ``IR_DATASETS_HOME=home``; it prints one JSON object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IR_DATASETS")}
    env.update(IR_DATASETS_HOME=str(home), IR_DATASETS_DL_TRIES="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        env=env, capture_output=True, text=True, timeout=timeout, encoding="utf-8", check=False,
    )
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    if not expect_download_attempt:
        assert "Download failed" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON output:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])
