"""The ``harness`` command: inspect systems, datasets and the registry; run one suite step."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import device, jobs, layout, registry, steps
from harness.data import DataError, schemes
from harness.languages import UnsupportedLanguage
from harness.paths import results_dir
from harness.report import ReportError, reproduce
from harness.spec import SuiteError, load_suite
from harness.system import SystemConfigError, catalog, system_params


def cmd_systems(args: argparse.Namespace) -> None:
    """Each catalogue row (name, description, the defaults that make it this system, pinned hub
    commits), read without
    importing any family; with a name, every param that system runs with (importing its family);
    with ``--device``, the device and faiss build steps would use here (importing torch and faiss)."""
    if args.device:
        print("\n".join(device.describe(device.probe())))
        return
    if args.name is not None:
        print(json.dumps(system_params(args.name).model_dump(mode="json"), indent=2))
        return
    rows = {**catalog.SYSTEMS, **{f"{prefix}:<model>": row for prefix, row in catalog.PREFIXES.items()}}
    for name, row in sorted(rows.items()):
        pinned = f"  pinned={json.dumps(row.revisions)}" if row.revisions else ""
        print(f"{name:<20} {row.description}  defaults={json.dumps(row.defaults)}{pinned}")


def cmd_runs(args: argparse.Namespace) -> None:
    """Where each published TREC run of a suite is (system, dataset, language, path)."""
    suite = load_suite(args.suite, check=False)
    for label in suite.systems:
        for unit in suite.units():
            pointer = layout.path("retrieve", suite.name, label, unit)
            where = layout.run_file(suite.name, label, unit) if pointer.is_file() else "(not run)"
            print(f"{label}\t{unit.dataset}\t{unit.lang}\t{where}")


def cmd_datasets(args: argparse.Namespace) -> None:
    for scheme, help in schemes().items():
        print(f"{scheme:<10} {help}")


def cmd_registry_list(args: argparse.Namespace) -> None:
    rows = []
    for record in registry.records():
        if args.step and record.step != args.step:
            continue
        data, labels = record.data, record.data.get("labels", {})
        summary = data.get("means") or data.get("info") or {"queries": data.get("queries")}
        rows.append([record.id, record.step, data["created"],
                     *(labels.get(key) or "-" for key in ("suite", "system", "dataset", "lang")),
                     json.dumps(summary, sort_keys=True)])
    if rows:
        rows.insert(0, ["id", "step", "created", "suite", "system", "dataset", "lang", "summary"])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            print("  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]))


def cmd_registry_show(args: argparse.Namespace) -> None:
    record = registry.find(args.id)
    print(json.dumps({**record.data, "path": str(record.path)}, indent=2, sort_keys=True))


def done(record: registry.Record) -> str:
    """What a step prints: the record it built, or the one it found built earlier."""
    took = f"{record.data['duration_s']} s"
    when = f"reused (built {record.data['created']} in {took})" if record.reused else f"({took})"
    return f"{record.step} {record.id} {when} → {record.path}"


def _unit_step(fn):
    def run(args: argparse.Namespace) -> None:
        suite = load_suite(args.suite, check=False)
        extra = [args.shard] if getattr(args, "shard", None) is not None else []
        print(done(fn(suite, args.system, suite.unit(args.dataset, args.lang), *extra)))

    return run


def cmd_train(args: argparse.Namespace) -> None:
    print(done(steps.train(load_suite(args.suite, check=False), args.system)))


def cmd_data(args: argparse.Namespace) -> None:
    """Fetch a suite collection (``--dataset``/``--lang``), a system's training data in ``--lang``
    (``--system``/``--lang``) or the collection a data pointer's ``--key`` names (`harness.jobs.data_needed`)."""
    suite = load_suite(args.suite, check=False)
    if sum(x is not None for x in (args.dataset, args.system, args.key)) != 1:
        raise SuiteError("harness data: give --dataset (a suite collection), --system (its training data) or --key")
    if args.key is not None:
        needed = jobs.data_needed(suite)
        if args.key not in needed:
            raise SuiteError(f"suite {suite.name!r} reads no collection with data key {args.key!r}")
        dataset_id, training = needed[args.key]
    elif args.lang is None:
        raise SuiteError("harness data: --dataset and --system need --lang")
    elif args.dataset is not None:
        dataset_id, training = suite.unit(args.dataset, args.lang).dataset_id, False
    else:
        spec = suite.system(args.system).train
        if spec is None or args.lang not in spec.dataset_ids():
            raise SuiteError(f"suite {suite.name!r}: system {args.system!r} trains on no data in language {args.lang!r}")
        dataset_id, training = spec.dataset_ids()[args.lang], spec.split == "training"
    print(done(steps.data(suite, dataset_id, training, layout.data(suite.name, dataset_id, training))))


def cmd_tables(args: argparse.Namespace) -> None:
    for path in steps.tables(load_suite(args.suite, check=False)):
        print(path)


def cmd_finish(args: argparse.Namespace) -> None:
    steps.finish(load_suite(args.suite, check=False), Path(args.out))


def cmd_baseline(args: argparse.Namespace) -> None:
    from harness.report.regression import write_baseline

    out = Path(args.out or results_dir() / "baselines" / f"{args.suite}.json")
    cells = write_baseline(load_suite(args.suite, check=False), out)
    print(f"wrote {cells} cells to {out}")


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every cell is ok, 1 on a regression, 2 when the baseline or the results are unusable."""
    from harness.report.regression import check, environment, load_baseline, render

    baseline = load_baseline(Path(args.baseline), args.suite)
    suite = load_suite(baseline["suite"], check=False)
    checks = check(suite, baseline, args.tolerance, args.alpha)
    print(render(checks, baseline.get("produced_by"), environment(suite)))
    return 1 if any(c.regressed for c in checks) else 0


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from harness.report.leaderboard import write_leaderboard

    for path in write_leaderboard(results_dir()):
        print(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    systems = sub.add_parser("systems", help="list the catalogue's systems, or one system's params")
    systems.add_argument("name", nargs="?", help="a system name: print its params with their defaults")
    systems.add_argument("--device", action="store_true",
                         help="print the device (CUDA GPU or CPU) and the faiss build that steps would use here")
    systems.set_defaults(fn=cmd_systems)
    runs = sub.add_parser("runs", help="where a suite's TREC runs are")
    runs.add_argument("--suite", required=True)
    runs.set_defaults(fn=cmd_runs)
    sub.add_parser("datasets", help="list dataset id schemes").set_defaults(fn=cmd_datasets)
    reg = sub.add_parser("registry", help="read the experiment registry").add_subparsers(dest="action", required=True)
    lst = reg.add_parser("list", help="one line per record")
    lst.add_argument("--step", choices=["data", "train", "shard", "index", "retrieve", "evaluate", "latency"])
    lst.set_defaults(fn=cmd_registry_list)
    show = reg.add_parser("show", help="a record in full")
    show.add_argument("id", help="record id or a unique prefix")
    show.set_defaults(fn=cmd_registry_show)
    for name, fn in [("shard", steps.shard), ("index", steps.index), ("retrieve", steps.retrieve),
                     ("evaluate", steps.evaluate_run), ("cost", steps.cost)]:
        step = sub.add_parser(name, help=f"{name} one system on one suite collection")
        step.add_argument("--suite", required=True)
        step.add_argument("--system", required=True, help="system label in the suite")
        step.add_argument("--dataset", required=True, help="dataset name in the suite")
        step.add_argument("--lang", required=True, help="language key ('all' for unsplit datasets)")
        if name == "shard":
            step.add_argument("--shard", type=int, required=True, help="shard number, from 0")
        step.set_defaults(fn=_unit_step(fn))
    trn = sub.add_parser("train", help="train one system of a suite (its train section)")
    trn.add_argument("--suite", required=True)
    trn.add_argument("--system", required=True, help="system label in the suite")
    trn.set_defaults(fn=cmd_train)
    dat = sub.add_parser("data", help="fetch and read through one collection of a suite, or a system's training data")
    dat.add_argument("--suite", required=True)
    dat.add_argument("--dataset", help="dataset name in the suite")
    dat.add_argument("--system", help="system label in the suite: its training data")
    dat.add_argument("--lang", help="language key ('all' for unsplit datasets)")
    dat.add_argument("--key", help="the data key of a suite's data pointer (what the workflow's data jobs give)")
    dat.set_defaults(fn=cmd_data)
    tab = sub.add_parser("tables", help="write a suite's tables")
    tab.add_argument("--suite", required=True)
    tab.set_defaults(fn=cmd_tables)
    reproduce.add_parser(sub)
    sub.add_parser("leaderboard", help="results/leaderboard.{md,html} across finished suites").set_defaults(
        fn=cmd_leaderboard)
    base = sub.add_parser("baseline", help="snapshot a suite's results as its regression baseline")
    base.add_argument("--suite", required=True)
    base.add_argument("--out", help="default: results/baselines/<suite>.json")
    base.set_defaults(fn=cmd_baseline)
    chk = sub.add_parser("check", help="compare a suite's results with a baseline; exit 1 on a regression, 2 when unusable")
    chk.add_argument("--baseline", required=True)
    chk.add_argument("--suite", help="default: the suite the baseline names")
    chk.add_argument("--tolerance", type=float, default=0.005,
                     help="largest drop of a trained cell's mean that is never a regression")
    chk.add_argument("--alpha", type=float, default=0.05,
                     help="level of the one-sided paired t-test (Holm over the trained cells)")
    chk.set_defaults(fn=cmd_check)
    fin = sub.add_parser("finish", help="write a suite's completion manifest")
    fin.add_argument("--suite", required=True)
    fin.add_argument("--out", required=True)
    fin.set_defaults(fn=cmd_finish)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = args.fn(args)
    except (DataError, SuiteError, SystemConfigError, UnsupportedLanguage, registry.RegistryError, ReportError,
            FileNotFoundError) as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
    return code or 0
