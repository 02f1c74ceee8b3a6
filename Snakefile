"""Thin workflow: `snakemake --cores all suites/<name>` expands suites/<name>.yaml into harness steps.

Every job is one `python -m harness <step>` call; the harness's content-addressed registry makes a
rerun with identical inputs free. Each job's output is the pointer its step publishes, at the path
`harness.layout` gives (every pattern below comes from there). Each job's params are what its
output depends on (`harness.jobs`: the suite's settings and a hash of every source file its code
reaches), so Snakemake reruns exactly the jobs a changed setting or an edited file affects; that
identity is read from file contents.
Planning checks the suite first (`harness.spec.check_suite`: checking params imports the suite's
system modules). Cluster execution uses Snakemake's own executor plugins (see README).
"""

import json
import sys

from functools import cache

from harness import jobs, layout
from harness.system.catalog import entry
from harness.spec import SuiteError, load_suite as _load_suite

PY = sys.executable
LABEL = "[A-Za-z0-9][A-Za-z0-9_.+-]*"

wildcard_constraints:
    suite=LABEL,
    system=LABEL,
    dataset=LABEL,
    lang=LABEL,
    key=LABEL,


@cache
def load_suite(name):
    """Suites are parsed and checked (`harness.spec.check_suite`) once per invocation, however many
    jobs ask; a bad suite stops planning with its one-line error, before any job runs."""
    try:
        return _load_suite(name)
    except SuiteError as e:
        sys.exit(str(e))


def unit(wc):
    return load_suite(wc.suite).unit(wc.dataset, wc.lang)


def step_config(settings):
    """A params function: the settings and code versions (`harness.jobs`) whose change must rerun the job."""

    def config(wc):
        return json.dumps(settings(load_suite(wc.suite), wc.system, unit(wc)), sort_keys=True, default=str)

    return config


def table_inputs(wc):
    """Every evaluation's pointer, and every cost pointer when the suite measures cost."""
    suite = load_suite(wc.suite)
    steps = ["evaluate"] + (["cost"] if suite.cost else [])
    return [str(layout.path(step, suite.name, s, u)) for step in steps for s in suite.systems for u in suite.units()]


# Light jobs run where Snakemake runs, never on a cluster's compute nodes: fetching data (compute nodes
# may have no network; one job per collection however many units and systems read it, so its shard
# jobs only read), and the reports.
localrules: data, tables, suite


STEP = PY + " -m harness STEP --suite {wildcards.suite} --system {wildcards.system} --dataset {wildcards.dataset} --lang {wildcards.lang}"


rule suite:
    input:
        layout.pattern("tables"),
    output:
        layout.SUITE_TARGET,
    shell:
        PY + " -m harness finish --suite {wildcards.suite} --out {output}"


rule tables:
    input:
        table_inputs,
    output:
        layout.pattern("tables"),
    params:
        settings=lambda wc: json.dumps(jobs.tables_settings(load_suite(wc.suite)), sort_keys=True),
    shell:
        PY + " -m harness tables --suite {wildcards.suite}"


rule evaluate:
    input:
        layout.pattern("retrieve"),
    output:
        layout.pattern("evaluate"),
    params:
        config=step_config(jobs.eval_settings),
    shell:
        STEP.replace("STEP", "evaluate")


rule cost:
    input:
        layout.pattern("retrieve"),
    output:
        layout.pattern("cost"),
    params:
        config=step_config(jobs.cost_settings),
    shell:
        STEP.replace("STEP", "cost")


def system_resources(name):
    """A resource the catalogue gives the system's train, shard, index and retrieve jobs (gpu, mem_mb)."""

    def resource(wc):
        row = entry(load_suite(wc.suite).system(wc.system).system)
        return row.resources.get(name, 0) if row else 0

    return resource


rule retrieve:
    input:
        layout.pattern("index"),
    output:
        layout.pattern("retrieve"),
    params:
        config=step_config(jobs.retrieve_settings),
    resources:
        mem_mb=system_resources("mem_mb"),
        gpu=system_resources("gpu"),
    shell:
        STEP.replace("STEP", "retrieve")


def trained(wc):
    """The trained-checkpoint pointer, when the suite trains the system (nothing otherwise)."""
    return [str(layout.path("train", wc.suite, wc.system))] if load_suite(wc.suite).system(wc.system).train else []


def unit_data(wc):
    """The data pointer of the unit's collection."""
    return str(layout.data(wc.suite, unit(wc).dataset_id, False))


def train_data(wc):
    """The data pointer of each training collection of the system."""
    spec = load_suite(wc.suite).system(wc.system).train
    return [str(layout.data(wc.suite, i, spec.split == "training")) for i in spec.dataset_ids().values()]


def data_config(wc):
    """A data job's params: the collection's id, its split and its loader's code."""
    needed = jobs.data_needed(load_suite(wc.suite))
    if wc.key not in needed:
        raise ValueError(f"suite {wc.suite!r} reads no collection with data key {wc.key!r}")
    dataset_id, training = needed[wc.key]
    return json.dumps({"dataset": dataset_id, "training": training, "code": jobs.dataset_code(dataset_id)})


rule data:
    output:
        layout.pattern("data"),
    priority: 1
    params:
        config=data_config,
    shell:
        PY + " -m harness data --suite {wildcards.suite} --key {wildcards.key}"


def shard_inputs(wc):
    """The shard pointers a sharded collection's index merges (none when unsharded), after training."""
    u = unit(wc)
    shards = [str(layout.path("shard", wc.suite, wc.system, u, i)) for i in range(u.shards)]
    return trained(wc) + [unit_data(wc)] + (shards if u.shards > 1 else [])


# Data and training jobs head the longest chains (train → index → retrieve → evaluate), and training
# jobs are the longest: started first, they are not left to run alone at the end while other cores idle.
rule train:
    input:
        train_data,
    output:
        layout.pattern("train"),
    priority: 1
    params:
        config=lambda wc: json.dumps(jobs.train_settings(load_suite(wc.suite), wc.system), sort_keys=True),
    resources:
        mem_mb=system_resources("mem_mb"),
        gpu=system_resources("gpu"),
    shell:
        PY + " -m harness train --suite {wildcards.suite} --system {wildcards.system}"


rule shard:
    input:
        trained,
        unit_data,
    output:
        layout.pattern("shard"),
    wildcard_constraints:
        shard=r"\d+",
    params:
        config=step_config(jobs.index_settings),
    resources:
        mem_mb=system_resources("mem_mb"),
        gpu=system_resources("gpu"),
    shell:
        STEP.replace("STEP", "shard") + " --shard {wildcards.shard}"


rule index:
    input:
        shard_inputs,
    output:
        layout.pattern("index"),
    params:
        config=step_config(jobs.index_settings),
    resources:
        mem_mb=system_resources("mem_mb"),
        gpu=system_resources("gpu"),
    shell:
        STEP.replace("STEP", "index")
