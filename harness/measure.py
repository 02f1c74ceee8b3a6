"""Cost capture: energy and carbon per phase (codecarbon), query latency and throughput.

Energy is measured with codecarbon's offline tracker (GPU from NVML, CPU from RAPL or its TDP
fallback, RAM by its model) with the country — and optionally region — taken from the suite, so
no network is needed; the values and the method codecarbon used are recorded. Next to it
`paper_estimate` gives the papers' coarse estimate, TDP × hours × carbon intensity.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.data.base import Query
from harness.system import System

JOULES_PER_KWH = 3.6e6


@dataclass
class EnergyReading:
    """What codecarbon measured for one phase; filled in when the ``with`` block ends."""

    phase: str
    country: str
    region: str | None = None
    kwh: float | None = None
    kg_co2eq: float | None = None
    duration_s: float | None = None
    cpu_model: str | None = None
    gpu_model: str | None = None
    tracking: dict[str, Any] = field(default_factory=dict)

    @property
    def joules(self) -> float | None:
        return None if self.kwh is None else self.kwh * JOULES_PER_KWH

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "joules": self.joules}


@contextmanager
def energy(phase: str, country: str, region: str | None = None) -> Iterator[EnergyReading]:
    """Measure the energy and emissions of the enclosed block with codecarbon, offline."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    reading = EnergyReading(phase, country, region)
    options = {"country_iso_code": country, "log_level": "error", "save_to_file": False, "measure_power_secs": 1,
               "tracking_mode": "process", "project_name": f"harness-{phase}"}
    if region:
        options["region"] = region
    tracker = OfflineEmissionsTracker(**options)
    tracker.start()
    try:
        yield reading
    finally:
        tracker.stop()
        data = tracker.final_emissions_data
        reading.kwh, reading.kg_co2eq, reading.duration_s = data.energy_consumed, data.emissions, data.duration
        reading.cpu_model, reading.gpu_model = data.cpu_model, data.gpu_model or None
        reading.tracking = {"mode": data.tracking_mode, "cpu_power_w": data.cpu_power, "gpu_power_w": data.gpu_power,
                            "ram_power_w": data.ram_power, "cpu_kwh": data.cpu_energy, "gpu_kwh": data.gpu_energy,
                            "ram_kwh": data.ram_energy, "codecarbon": _codecarbon_version()}


def _codecarbon_version() -> str:
    from importlib.metadata import version

    return version("codecarbon")


def paper_estimate(tdp_watts: float, hours: float, kg_co2eq_per_kwh: float, devices: int = 1) -> dict[str, float]:
    """The papers' estimate: every device at its TDP for the whole run."""
    kwh = tdp_watts * devices * hours / 1000.0
    return {"kwh": kwh, "kg_co2eq": kwh * kg_co2eq_per_kwh}


def percentiles(values_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 and mean, in milliseconds."""
    if not values_s:
        raise ValueError("no latencies to summarise")
    ms = sorted(v * 1000 for v in values_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"p50_ms": cuts[49], "p95_ms": cuts[94], "p99_ms": cuts[98], "mean_ms": statistics.fmean(ms)}


def latency(system: System, index: Path, queries: list[Query], k: int, warmup: int, batch_size: int) -> dict[str, Any]:
    """Per-query latency at batch size 1 (encoding and search timed separately) after ``warmup``
    queries, and end-to-end throughput at ``batch_size``, of ``system`` as the run was made (a passage
    system is its `harness.system.passages.Passages` wrapper, so the search timed includes MaxP)."""
    if not queries:
        raise ValueError("latency needs at least one query")
    searcher = system.open(index)
    try:
        for q in queries[:warmup]:
            system.search(searcher, [q], system.encode_queries([q]), k)
        encode_s, search_s = [], []
        for q in queries:
            t0 = time.perf_counter()
            encoded = system.encode_queries([q])
            t1 = time.perf_counter()
            system.search(searcher, [q], encoded, k)
            t2 = time.perf_counter()
            encode_s.append(t1 - t0)
            search_s.append(t2 - t1)
        t0 = time.perf_counter()
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            system.search(searcher, batch, system.encode_queries(batch), k)
        batched_s = time.perf_counter() - t0
    finally:
        system.close(searcher)
    return {
        "queries": len(queries), "warmup": warmup, "k": k, "batch_size": batch_size,
        "encode": percentiles(encode_s), "search": percentiles(search_s),
        "total": percentiles([e + s for e, s in zip(encode_s, search_s, strict=True)]),
        "qps_batch1": len(queries) / (sum(encode_s) + sum(search_s)),
        "qps_batched": len(queries) / batched_s,
    }
