"""Latency and carbon tables from the suite's published cost files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.measure import JOULES_PER_KWH, paper_estimate
from harness.report.tables import Block


def latency_block(costs: dict[tuple[str, str], dict[str, Any]]) -> Block:
    """Rows (system, collection): per-query latency at batch 1, throughput, index build."""
    rows = {}
    for key, cost in costs.items():
        lat, idx = cost["latency"], cost["index"]
        rows[key] = {
            "encode p50 ms": lat["encode"]["p50_ms"], "search p50 ms": lat["search"]["p50_ms"],
            "total p50 ms": lat["total"]["p50_ms"], "total p95 ms": lat["total"]["p95_ms"],
            "total p99 ms": lat["total"]["p99_ms"], "QPS b=1": lat["qps_batch1"],
            f"QPS b={lat['batch_size']}": lat["qps_batched"], "index s": idx["seconds"],
            "docs/s": idx["documents"] / idx["seconds"] if idx["seconds"] else float("nan"),
            "index MiB": idx.get("index_bytes", float("nan")) / 2**20,
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["system", "collection"])
    hardware = next(iter(costs.values()))["hardware"]
    note = (f"Hardware: {hardware.get('cpu')}, {hardware.get('cores')} cores"
            + (f", GPU {hardware['gpu']}" if hardware.get("gpu") else "") + "; latency after warm-up, ms per query.")
    return Block("Latency and throughput", frame, fmt="{:.3g}", best=None, note=note)


def carbon_block(costs: dict[tuple[str, str], dict[str, Any]], tdp_watts: float | None = None) -> Block:
    """Rows systems: energy and emissions per phase summed over collections, joules per query, and
    with ``tdp_watts`` the papers' estimate (TDP × hours × the same carbon intensity) beside it."""
    rows: dict[str, dict[str, float]] = {}
    countries = set()
    trained = any(cost["energy"].get("train") for cost in costs.values())
    for (system, _), cost in costs.items():
        first = system not in rows
        untrained = float("nan")  # a system without a train step has no train energy, not zero
        row = rows.setdefault(system, {**({"train kWh": untrained, "train kgCO2eq": untrained} if trained else {}),
                                       "index kWh": 0.0, "index kgCO2eq": 0.0, "retrieve kWh": 0.0,
                                       "retrieve kgCO2eq": 0.0, "queries": 0, "TDP estimate kgCO2eq": 0.0})
        # a system is trained once for the whole suite: its train reading counts once, not per collection
        phases = (["train"] if first and cost["energy"].get("train") else []) + ["index", "retrieve"]
        for phase in phases:
            reading = cost["energy"][phase]
            if reading is None:
                raise ValueError(f"{system}: no {phase} energy was recorded; run the suite with cost settings")
            row[f"{phase} kWh"] = np.nansum([row[f"{phase} kWh"], reading["kwh"]])
            row[f"{phase} kgCO2eq"] = np.nansum([row[f"{phase} kgCO2eq"], reading["kg_co2eq"]])
            if tdp_watts and reading["kwh"]:
                intensity = reading["kg_co2eq"] / reading["kwh"]
                row["TDP estimate kgCO2eq"] += paper_estimate(tdp_watts, reading["duration_s"] / 3600, intensity)["kg_co2eq"]
            countries.add(reading["country"] + (f"/{reading['region']}" if reading.get("region") else ""))
        row["queries"] += cost["queries"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["J/query"] = frame["retrieve kWh"] * JOULES_PER_KWH / frame["queries"]
    if not tdp_watts:
        frame = frame.drop(columns=["TDP estimate kgCO2eq"])
    frame.index.name = "system"
    note = f"codecarbon, offline, carbon intensity of {', '.join(sorted(countries))}; J/query = retrieve energy / queries."
    if tdp_watts:
        note += f" TDP estimate: {tdp_watts:g} W × phase hours × the same carbon intensity, as the papers compute it."
    return Block("Energy and carbon", frame, fmt="{:.3g}", best=None, note=note)
