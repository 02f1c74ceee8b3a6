"""An interrupted or killed Snakemake: the plain command finishes the suite (profiles/default)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, write_suite

SUITE = """\
name: killed
depth: 10
measures: [nDCG@10]
datasets:
  - {name: syn, id: "synthetic:en?docs=100&queries=5&train=5", languages: [en]}
systems:
  bm25:
    system: bm25
"""


def plain(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The README's command, `snakemake --cores 1 ...`, run in ``workdir``."""
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(workdir), "--cores", "1", *args], check=False, capture_output=True, text=True,
                          timeout=600)


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def gone(group: int) -> bool:
    """Whether every process of the process group has exited."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def test_plain_rerun_finishes_after_snakemake_is_killed(workdir: Path) -> None:
    """Snakemake is SIGKILLed while its first job builds; the job finishes on its own, so its output
    exists but stays marked incomplete, and the lock stays. The one documented `--unlock`, then the
    plain command reruns that job (the default workflow profile's rerun-incomplete) and finishes."""
    write_suite(workdir, "killed", SUITE)
    started = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                                str(workdir), "--cores", "1", "suites/killed"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        building = workdir / "results/registry/index"
        wait_for(lambda: any(building.glob(".*.tmp-*")), "the index job to start building")
        os.kill(started.pid, signal.SIGKILL)  # Snakemake only: its job keeps running, as on a cluster
        started.wait()
        wait_for(lambda: gone(started.pid), "the orphaned job to finish")
    finally:
        if not gone(started.pid):
            os.killpg(started.pid, signal.SIGKILL)
    pointer = workdir / "results/killed/index/bm25/syn/en.json"
    assert pointer.is_file() and any((workdir / ".snakemake/incomplete").iterdir())

    locked = plain(workdir, "suites/killed")
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr  # never cleared on a guess
    assert plain(workdir, "--unlock", "suites/killed").returncode == 0
    strict = plain(workdir, "--workflow-profile", "none", "-n", "suites/killed")  # what the profile spares us
    assert strict.returncode != 0 and "--rerun-incomplete" in strict.stdout + strict.stderr

    done = plain(workdir, "suites/killed")
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert f"workflow specific profile {REPO / 'profiles/default'}" in log
    record = json.loads(pointer.read_text())["record"]
    assert f"index {record} reused (built " in log  # the rerun job found the record its killed run made
    assert json.loads((workdir / "suites/killed").read_text())["suite"] == "killed"
    assert "Nothing to be done" in plain(workdir, "suites/killed").stderr


@pytest.mark.parametrize("profile", [None, "slurm", "gpu-server"])
def test_default_workflow_profile_adds_to_each_profile(profile: str | None, workdir: Path) -> None:
    """profiles/default applies on its own and on top of --profile, whose own settings survive."""
    from snakemake.cli import parse_args

    argv = ["-s", str(REPO / "Snakefile"), "suites/x"] + (["--profile", str(REPO / "profiles" / profile)]
                                                           if profile else [])
    _, args = parse_args(argv)
    assert args.rerun_incomplete
    if profile == "slurm":
        assert args.executor == "slurm" and args.jobs == 64 and "slurm_account" in args.default_resources
    if profile == "gpu-server":
        assert "gpu" in args.resources and args.printshellcmds
    _, without = parse_args([*argv, "--workflow-profile", "none"])
    assert not without.rerun_incomplete
