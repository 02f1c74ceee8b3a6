"""The suite through a real SLURM cluster (`.ci/slurm-setup` starts one on the CI machine) with the
repository's `profiles/slurm`, overriding only what a user edits: account and partitions.

Marked ``slurm`` and left out of the default test run (pyproject's addopts); CI runs
``pytest -m slurm tests/pipeline/test_slurm.py`` after starting the cluster. Without one these tests fail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.system.catalog import entry
from tests.helpers import REPO, write_suite

pytestmark = pytest.mark.slurm

SUITE = """\
name: slurmci
depth: 20
measures: [nDCG@10]
datasets:
  - name: syn
    id: "synthetic:{lang}?docs=400&queries=10&train=20&seed=0"
    languages: [en]
    shards: 2
systems:
  bm25:
    system: bm25
  dpr-xm:
    system: dpr-xm
    train:
      data: "synthetic:{lang}?docs=400&queries=10&train=20&seed=0"
      languages: [en]
      init: tiny
      params: {steps: 4, batch_size: 8}
"""
SYSTEMS = ("bm25", "dpr-xm")
PARTITIONS = {"cpu": "ci-cpu", "gpu": "ci-gpu"}  # the profile's names → the CI cluster's (.ci/slurm-setup)
ACCOUNT = "ci"
DEFAULT_MEM_MB = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["default-resources"]["mem_mb"]
CLUSTER_JOBS = {"train": 1, "shard": 4, "index": 2, "retrieve": 2, "evaluate": 2}
"""The jobs of SUITE that go through sbatch; data, tables and suite are local rules."""


def ci_profile(folder: Path) -> Path:
    """profiles/slurm with the CI cluster's account and partitions, the status command that works
    without slurmdbd (squeue), and a short first status check (tiny jobs)."""
    config = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    config["default-resources"]["slurm_account"] = ACCOUNT
    for resources in [config["default-resources"], *config["set-resources"].values()]:
        if "slurm_partition" in resources:
            resources["slurm_partition"] = PARTITIONS[resources["slurm_partition"]]
    config.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 5})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def run(workdir: Path, *args: str) -> subprocess.Popen[str]:
    """Snakemake on the repository's workflow in ``workdir``, with its own cache; output to ``workdir/log``."""
    env = {**os.environ, "HARNESS_CACHE": str(workdir / "cache"), "PYTHONPATH": str(REPO)}
    log = (workdir / "log").open("w")
    return subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                             str(workdir), *args], stdout=log, stderr=subprocess.STDOUT, text=True, env=env)


def finished(workdir: Path, *args: str) -> float:
    """Run Snakemake to the end (it must succeed); its wall time in seconds."""
    t0 = time.monotonic()
    assert run(workdir, *args).wait(timeout=1500) == 0, (workdir / "log").read_text()[-4000:]
    return time.monotonic() - t0


def cluster_jobs(workdir: Path) -> list[tuple[str, str, str, str]]:
    """(job id, state, comment, partition) of every SLURM job submitted from ``workdir``, finished ones
    included (the CI cluster keeps them for MinJobAge)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%P|%Z"], check=True,
                         capture_output=True, text=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    return [(job, state, comment, part) for job, state, comment, part, where in rows if Path(where) == workdir]


def requested(job: str) -> dict[str, str]:
    """What ``job`` asked SLURM for, as ``scontrol show job`` reports it (``TresPerJob``: ``gres:gpu:1``
    for ``--gpus=1``; ``MinMemoryNode``: ``16000M``)."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner", job], check=True, capture_output=True,
                         text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def building_shard(workdir: Path, started: subprocess.Popen[str]) -> Path:
    """The private folder of a shard record being built (``.<id>.tmp-<pid>``), once a shard job makes one."""
    deadline = time.monotonic() + 900
    while not (building := list((workdir / "results/registry/shard").glob(".*.tmp-*"))):
        assert started.poll() is None and time.monotonic() < deadline, (workdir / "log").read_text()[-4000:]
        time.sleep(0.05)
    return building[0]


def slurm_job_of(pid: int) -> str:
    """The SLURM job a process of this node belongs to (``scontrol pidinfo``)."""
    out = subprocess.run(["scontrol", "pidinfo", str(pid)], check=True, capture_output=True, text=True).stdout
    found = re.search(r"JobId=(\d+)", out)
    assert found, out
    return found.group(1)


def state(job: str) -> str:
    return subprocess.run(["squeue", "--states=all", "--noheader", "--format=%T", "--jobs", job], check=True,
                          capture_output=True, text=True).stdout.strip()


def rule_of(comment: str) -> str:
    """The rule a job ran, from the comment the executor plugin gives it (``rule_<name>_wildcards_...``)."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def run_file(workdir: Path, system: str) -> bytes:
    pointer = yaml.safe_load((workdir / f"results/slurmci/runs/{system}/syn/en.json").read_text())
    return (workdir / pointer["outputs"]["run"]).read_bytes()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The suite run locally (README's command, two cores): the reference and the time to beat."""
    workdir = tmp_path_factory.mktemp("local")
    write_suite(workdir, "slurmci", SUITE)
    return workdir, finished(workdir, "--cores", "2", "suites/slurmci")


def test_suite_on_slurm_matches_local_run(local: tuple[Path, float], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Every non-local job goes through sbatch, to the partition the profile names for its rule, asking
    for the GPU and memory its system declares (the catalogue's ``gpu``, ``mem_mb``; the profile's
    default memory for evaluate), and completes; the runs are byte-identical to the local ones. Prints
    the measured overhead."""
    reference, local_s = local
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    write_suite(workdir, "slurmci", SUITE)
    cluster_s = finished(workdir, "--profile", str(ci_profile(tmp_path / "profile")), "suites/slurmci")

    jobs = cluster_jobs(workdir)
    counts: dict[str, int] = {}
    for job, state, comment, partition in jobs:
        assert state == "COMPLETED", jobs
        rule = rule_of(comment)
        counts[rule] = counts.get(rule, 0) + 1
        system_rule = rule in ("train", "shard", "index", "retrieve")  # the jobs that get the catalogue's resources
        assert partition == ("ci-gpu" if system_rule else "ci-cpu"), jobs
        wants = entry(next(label for label in SYSTEMS if f"_{label}" in comment)).resources if system_rule else {}
        asked = requested(job)
        assert (asked.get("TresPerJob") or None) == ("gres:gpu:1" if wants.get("gpu") else None), (comment, asked)
        assert asked["MinMemoryNode"] == f"{wants.get('mem_mb', DEFAULT_MEM_MB)}M", (comment, asked)
    assert counts == CLUSTER_JOBS
    log = (workdir / "log").read_text()
    assert log.count("has been submitted with SLURM jobid") == sum(CLUSTER_JOBS.values())
    for system in SYSTEMS:
        assert run_file(workdir, system) == run_file(reference, system), system
    with capsys.disabled():
        print(f"\nSLURM run {cluster_s:.0f} s, local run {local_s:.0f} s: overhead {cluster_s - local_s:+.0f} s "
              f"({cluster_s / local_s:.2f}x) for {sum(CLUSTER_JOBS.values())} cluster jobs")


def test_shard_job_killed_by_slurm_is_retried_and_resumes(local: tuple[Path, float], tmp_path: Path) -> None:
    """A shard job cancelled by the scheduler mid-build fails, is reported and retried (the profile's
    `retries`); the retry builds that shard alone (the other shard's record stands), no half-built record
    is left, and the run is the local one."""
    reference, _ = local
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    write_suite(workdir, "slurmci", SUITE)
    target = "results/slurmci/runs/dpr-xm/syn/en.json"
    started = run(workdir, "--profile", str(ci_profile(tmp_path / "profile")), target)
    shards = workdir / "results/registry/shard"
    deadline = time.monotonic() + 900
    while not any(shards.glob(".*.tmp-*")):  # a shard job is building
        assert started.poll() is None and time.monotonic() < deadline, (workdir / "log").read_text()[-4000:]
        time.sleep(0.2)
    building = [job for job, state, comment, _ in cluster_jobs(workdir)
                if state == "RUNNING" and rule_of(comment) == "shard"]
    subprocess.run(["scancel", building[0]], check=True)
    assert started.wait(timeout=1500) == 0, (workdir / "log").read_text()[-4000:]

    log = (workdir / "log").read_text()
    assert f"SLURM-job '{building[0]}' failed, SLURM status is: 'CANCELLED'" in log and "Trying to restart job" in log
    states: dict[str, list[str]] = {}
    for job, state, comment, _ in cluster_jobs(workdir):
        if rule_of(comment) == "shard":
            states.setdefault(comment, []).append(state)
    assert sorted(sorted(s) for s in states.values()) == [["CANCELLED", "COMPLETED"], ["COMPLETED"]], states
    assert not list(shards.glob(".*")) or all(p.suffix == ".lock" for p in shards.glob(".*")), list(shards.glob(".*"))
    assert len([p for p in shards.iterdir() if (p / "record.json").is_file()]) == 2
    assert run_file(workdir, "dpr-xm") == run_file(reference, "dpr-xm")


def test_shard_job_past_its_time_limit_leaves_nothing_complete_and_the_rerun_resumes(
        local: tuple[Path, float], tmp_path: Path) -> None:
    """SLURM's own time limit kills a shard job mid-build (the job is held there, as a slow one would be,
    and its end time moved to now with ``scontrol update``): the job ends TIMEOUT, the run fails (no
    retry here), and nothing of that shard looks complete: no pointer, no record, only the private
    folder the next build clears. Submitting the same command again resumes: the other shard's record
    stands, only the killed shard is built again, and the run is the local one."""
    reference, _ = local
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    write_suite(workdir, "slurmci", SUITE)
    profile = ci_profile(tmp_path / "profile")
    target = "results/slurmci/runs/dpr-xm/syn/en.json"
    started = run(workdir, "--profile", str(profile), "--retries", "0", target)
    building = building_shard(workdir, started)
    pid = int(building.name.rsplit("-", 1)[1])
    os.kill(pid, signal.SIGSTOP)  # the build stays unfinished until SLURM ends the job
    assert building.is_dir(), f"{building}: the shard was built before it could be held"
    job = slurm_job_of(pid)
    subprocess.run(["scontrol", "update", f"JobId={job}", f"EndTime={time.strftime('%Y-%m-%dT%H:%M:%S')}"],
                   check=True)
    assert started.wait(timeout=600) != 0, "the run went through although its shard job was killed"
    assert state(job) == "TIMEOUT"
    assert f"SLURM-job '{job}' failed, SLURM status is: 'TIMEOUT'" in (workdir / "log").read_text()
    deadline = time.monotonic() + 120  # SLURM's KillWait
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} of the timed-out job {job} still runs"
        time.sleep(0.5)

    shards = workdir / "results/registry/shard"
    records = {p.name: (p / "record.json").read_bytes() for p in shards.iterdir() if (p / "record.json").is_file()}
    pointers = sorted(p.name for p in (workdir / "results/slurmci/shards/dpr-xm/syn/en").glob("*.json"))
    assert len(records) == 1 and len(pointers) == 1, (records.keys(), pointers)
    killed = building.name.split(".tmp-")[0].lstrip(".")
    assert killed not in records and not (shards / killed).exists()

    first = {job for job, *_ in cluster_jobs(workdir)}
    finished(workdir, "--profile", str(profile), target)
    rerun = [rule_of(comment) for job, state_, comment, _ in cluster_jobs(workdir) if job not in first]
    assert sorted(rerun) == ["index", "retrieve", "shard"], rerun
    assert all(state_ == "COMPLETED" for job, state_, *_ in cluster_jobs(workdir) if job not in first)
    assert {name: (shards / name / "record.json").read_bytes() for name in records} == records
    assert len([p for p in shards.iterdir() if (p / "record.json").is_file()]) == 2
    assert not [p for p in shards.glob(".*") if p.suffix != ".lock"]
    assert run_file(workdir, "dpr-xm") == run_file(reference, "dpr-xm")
