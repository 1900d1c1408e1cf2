"""Statistics and Markdown rendering of the benchmark suite's results (pure functions, no I/O).

`benchmarks/suite.py` measures and keeps every raw run; the functions here turn those runs into figures
(min/median/max over the repeats, the target where an issue names one, met or not by the median) and render
the generated section of `docs/benchmarks.md` between `BEGIN_MARKER` and `END_MARKER`:

    .venv/bin/python -m benchmarks.suite --render-only benchmarks/results/<date>.json

re-renders that section from a results file without measuring anything.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
BEGIN_MARKER = "<!-- bench-suite:begin -->"
END_MARKER = "<!-- bench-suite:end -->"

# "p99 flat" (issue 7) read as: the median of the last third of the soak's window p99s is at most this
# multiple of the first third's.
P99_FLAT_MAX_DRIFT = 1.2
RSS_GROWTH_MAX_PERCENT_PER_HOUR = 5.0
WARMUP_FRACTION = 0.2

Figure = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A target an issue names: `value <comparator> threshold`, with the words the tables show."""

    comparator: str  # ">=" or "<="
    threshold: float
    text: str

    def met(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value >= self.threshold if self.comparator == ">=" else value <= self.threshold


TARGET_ALL_IN_ONE_RATE = Target(">=", 100_000, "≥ 100,000 events/s")
TARGET_SEARCHABLE_P99_MS = Target("<=", 2000, "≤ 2 s")
TARGET_NEEDLE_P99_MS = Target("<=", 50, "≤ 50 ms (10M events)")
TARGET_HISTOGRAM_MS = Target("<=", 250, "≤ 250 ms (10M events)")
TARGET_DISK_RATIO = Target("<=", 0.35, "≤ 0.35 (10M events)")
TARGET_DISTRIBUTED_RATIO = Target(">=", 0.5, "≥ 0.5 (issue 19)")
TARGET_DISTRIBUTED_CPU_RATIO = Target("<=", 0.5, "≤ 0.5 (issue 19)")
TARGET_PIPELINE_RSS_MIB = Target("<=", 512, "≤ 512 MiB per process (issue 19)")
TARGET_IMPORT_RATIO = Target(">=", 0.8, "≥ 0.8 (issue 16)")
TARGET_PROTOCOL_RATIO = Target(">=", 0.8, "≥ 0.8 of native (issue 16)")
TARGET_ONCALL_LOOKUP_P99_MS = Target("<=", 5, "≤ 5 ms (issue 18)")
TARGET_STEP_DELAY_P99_S = Target("<=", 2, "≤ 2 s (10,000 incidents, issue 18)")
ONCALL_TARGET_INCIDENTS = 10_000
TARGET_RSS_GROWTH = Target("<=", RSS_GROWTH_MAX_PERCENT_PER_HOUR, "≤ 5 %/h")
TARGET_P99_FLAT = Target("<=", P99_FLAT_MAX_DRIFT, f"flat (≤ {P99_FLAT_MAX_DRIFT} times the start)")
TARGET_START_DELAY_P99_S = Target("<=", 1.0, "≤ 1 s (issue 17)")
TARGET_SIZE = 10_000_000


# ---------------------------------------------------------------- statistics


def _clean(values: Iterable[Any]) -> list[float]:
    return [
        float(value)
        for value in values
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(float(value))
    ]


def spread(values: Iterable[Any]) -> dict[str, float | int] | None:
    """min/median/max/n of the numeric values (None, NaN and non-numbers are left out); None when none."""
    clean = _clean(values)
    if not clean:
        return None
    return {"min": min(clean), "median": statistics.median(clean), "max": max(clean), "n": len(clean)}


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (as `benchmarks/load.py` computes it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Slope of the least-squares line through the points; None with fewer than two distinct xs."""
    if len(xs) != len(ys) or len(xs) < 2:
        return None
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    if spread_x == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread_x


def growth_percent_per_hour(
    times_s: Sequence[float], values: Sequence[float], warmup_fraction: float = WARMUP_FRACTION
) -> float | None:
    """Growth per hour of `values` after warm-up, as % of their mean: the least-squares slope over the samples
    after the first `warmup_fraction` of the run's duration."""
    if not times_s:
        return None
    start = times_s[0] + warmup_fraction * (times_s[-1] - times_s[0])
    kept = [(t, v) for t, v in zip(times_s, values, strict=True) if t >= start]
    slope = least_squares_slope([t for t, _ in kept], [v for _, v in kept])
    if slope is None:
        return None
    mean = statistics.fmean(v for _, v in kept)
    return slope * 3600 / mean * 100 if mean else None


def drift(window_values: Sequence[float | None]) -> float | None:
    """Median of the last third of the windows ÷ median of the first third (None values are left out)."""
    clean = _clean(window_values)
    if len(clean) < 3:
        return None
    third = len(clean) // 3
    first, last = statistics.median(clean[:third]), statistics.median(clean[-third:])
    return last / first if first else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator:
        return None
    return numerator / denominator


# ---------------------------------------------------------------- figures


def figure(name: str, unit: str, values: Iterable[Any], target: Target | None = None, note: str = "") -> Figure:
    """One table row: min/median/max over the runs, the target (if any) and whether the median meets it."""
    stats = spread(values)
    median = None if stats is None else float(stats["median"])
    return {
        "name": name,
        "unit": unit,
        "min": None if stats is None else stats["min"],
        "median": median,
        "max": None if stats is None else stats["max"],
        "n": 0 if stats is None else stats["n"],
        "target": target.text if target else None,
        "met": target.met(median) if target else None,
        "note": note,
    }


def flag_figure(name: str, flags: Iterable[Any], must_hold: bool = True) -> Figure:
    """A yes/no row (e.g. zero loss): how many runs held it; met only when every run did."""
    values = [bool(flag) for flag in flags if flag is not None]
    held = sum(values)
    return {
        "name": name,
        "unit": "flag",
        "held": held,
        "n": len(values),
        "target": "every run" if must_hold else None,
        "met": (held == len(values)) if must_hold and values else None,
        "note": "",
    }


def _get(run: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = run
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)  # pyright: ignore[reportUnknownMemberType]
    return value


def _rss_figures(
    runs: Sequence[Mapping[str, Any]], key: str = "rss", target_of: Callable[[str], Target | None] | None = None
) -> list[Figure]:
    labels: list[str] = []
    for run in runs:
        for label in run.get(key) or {}:
            if label not in labels:
                labels.append(label)
    return [
        figure(
            f"peak RSS {label}",
            "MiB",
            [_mib(_get(run, key, label, "peak_kib")) for run in runs],
            target_of(label) if target_of else None,
        )
        for label in labels
    ]


def _distributed_rss_target(label: str) -> Target | None:
    """Issue 19 bounds each distributed pipeline process ("pipeline-1", "pipeline-2", ...), not the others."""
    return TARGET_PIPELINE_RSS_MIB if label.startswith("pipeline-") else None


def _refused_requests(result: Mapping[str, Any]) -> int | None:
    """Ingest requests answered anything but 202 (refused by the backlog gate or failed, each sent again)."""
    statuses = result.get("statuses")
    if not isinstance(statuses, Mapping):
        return None
    return sum(int(count) for status, count in statuses.items() if str(status) != "202")


def _mib(kib: Any) -> float | None:
    return kib / 1024 if isinstance(kib, int | float) else None


def ingest_figures(runs: Sequence[Mapping[str, Any]], *, distributed: bool) -> list[Figure]:
    """Figures of the ingest groups. Each run: {"max": load.py result, "paced": load.py result, "rss": {label:
    {"peak_kib"}}, and "ceiling" (all-in-one) or "bulk" (distributed): the comparison measured beside it}."""
    unpaced = [run.get("max") or {} for run in runs]
    paced = [run.get("paced") or {} for run in runs]
    # Runs before issue 19 were paced at 50 % of the sustained rate; since then at 80 % (`paced_fraction`).
    paced_percent = round(100 * float(runs[0].get("paced_fraction", 0.5))) if runs else 50
    sustained_target = None if distributed else TARGET_ALL_IN_ONE_RATE
    rows = [
        figure("accepted (unpaced)", "events/s", [r.get("accepted_events_per_s") for r in unpaced]),
        figure(
            "sustained end to end, incl. drain (unpaced)",
            "events/s",
            [r.get("searchable_events_per_s") for r in unpaced],
            sustained_target,
        ),
        figure(
            "mean searchable rate during load (unpaced)",
            "events/s",
            [r.get("searchable_rate_mean_per_s") for r in unpaced],
        ),
        flag_figure("zero loss (unpaced)", [r.get("zero_loss") for r in unpaced]),
        figure("ingest request p50 (unpaced)", "ms", [r.get("ingest_request_p50_ms") for r in unpaced]),
        figure("ingest request p99 (unpaced)", "ms", [r.get("ingest_request_p99_ms") for r in unpaced]),
        figure("ingest-to-searchable p50 (unpaced)", "ms", [r.get("ingest_to_searchable_p50_ms") for r in unpaced]),
        figure("ingest-to-searchable p99 (unpaced)", "ms", [r.get("ingest_to_searchable_p99_ms") for r in unpaced]),
        figure(
            "probes behind the ingest-to-searchable percentiles (unpaced)", "count", [r.get("probes") for r in unpaced]
        ),
        figure("pipeline backlog, max (unpaced)", "messages", [r.get("backlog_messages_max") for r in unpaced]),
        figure("oldest batch waiting, max (unpaced)", "s", [r.get("backlog_oldest_max_s") for r in unpaced]),
        figure("ingest requests refused or failed (unpaced)", "count", [_refused_requests(r) for r in unpaced]),
        figure(
            f"offered rate (paced, {paced_percent} % of sustained)", "events/s", [r.get("offered_rate") for r in paced]
        ),
        figure("accepted (paced)", "events/s", [r.get("accepted_events_per_s") for r in paced]),
        flag_figure("zero loss (paced)", [r.get("zero_loss") for r in paced]),
        figure("ingest request p50 (paced)", "ms", [r.get("ingest_request_p50_ms") for r in paced]),
        figure("ingest request p99 (paced)", "ms", [r.get("ingest_request_p99_ms") for r in paced]),
        figure("ingest-to-searchable p50 (paced)", "ms", [r.get("ingest_to_searchable_p50_ms") for r in paced]),
        figure(
            "ingest-to-searchable p99 (paced)",
            "ms",
            [r.get("ingest_to_searchable_p99_ms") for r in paced],
            None if distributed else TARGET_SEARCHABLE_P99_MS,
        ),
        figure("probes behind the ingest-to-searchable percentiles (paced)", "count", [r.get("probes") for r in paced]),
    ]
    rows += _rss_figures(runs, target_of=_distributed_rss_target if distributed else None)
    if distributed:
        rows += [
            figure("OpenSearch `_bulk`, same bodies", "events/s", [_get(run, "bulk", "events_per_s") for run in runs]),
            figure("OpenSearch `_bulk` request p99", "ms", [_get(run, "bulk", "request_p99_ms") for run in runs]),
            figure(
                "Mintlog ÷ OpenSearch `_bulk` (sustained)",
                "ratio",
                [ratio(_get(run, "max", "searchable_events_per_s"), _get(run, "bulk", "events_per_s")) for run in runs],
                TARGET_DISTRIBUTED_RATIO,
            ),
            *distributed_cpu_figures(runs),
        ]
    else:
        rows += [
            figure(
                "ceiling: msgspec decode, 1 thread", "events/s", [_get(run, "ceiling", "events_per_s") for run in runs]
            ),
            figure(
                "Mintlog ÷ ceiling (sustained)",
                "ratio",
                [
                    ratio(_get(run, "max", "searchable_events_per_s"), _get(run, "ceiling", "events_per_s"))
                    for run in runs
                ],
            ),
        ]
    return rows


def _us_per_event(cpu_seconds: Any, events: Any) -> float | None:
    if not isinstance(cpu_seconds, int | float) or not isinstance(events, int | float) or events <= 0:
        return None
    return cpu_seconds / events * 1e6


WRITE_PATH_PREFIXES = ("ingest-", "pipeline-", "nats-server", "redis-server")
"""The processes an event passes through (or that ingest consults) on its way to OpenSearch; api, alert and
notify are left out: during the run they serve the load generator's search probes or idle."""


def distributed_cpu_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """CPU µs per indexed event of the unpaced run (load and drain): Mintlog's write path (`WRITE_PATH_PREFIXES`)
    and all its processes beside the OpenSearch node's, and the node's under `_bulk`. Each run:
    {"cpu_seconds": {label: seconds}, "max": {"events_searchable"}, "bulk": {"opensearch_cpu_seconds",
    "events_indexed"}, "opensearch_index_ops"}."""

    def per_event(run: Mapping[str, Any], keep: Any) -> float | None:
        cpu: dict[str, float] = run.get("cpu_seconds") or {}
        kept = [seconds for label, seconds in cpu.items() if keep(label)]
        return _us_per_event(sum(kept), _get(run, "max", "events_searchable")) if kept else None

    write_path = [per_event(run, lambda label: label.startswith(WRITE_PATH_PREFIXES)) for run in runs]
    everything = [per_event(run, lambda label: label != "opensearch") for run in runs]
    pipeline = [per_event(run, lambda label: label.startswith("pipeline-")) for run in runs]
    node = [per_event(run, lambda label: label == "opensearch") for run in runs]
    return [
        figure("CPU per event: Mintlog's write path (ingest, pipeline, nats-server, redis)", "µs", write_path),
        figure("CPU per event: of which the pipeline processes", "µs", pipeline),
        figure("CPU per event: every Mintlog process (also api serving the probes, alert, notify)", "µs", everything),
        figure("CPU per event: OpenSearch, same run", "µs", node),
        figure(
            "Mintlog's write path ÷ OpenSearch, CPU per event",
            "ratio",
            [ratio(own, theirs) for own, theirs in zip(write_path, node, strict=True)],
            TARGET_DISTRIBUTED_CPU_RATIO,
        ),
        figure(
            "every Mintlog process ÷ OpenSearch, CPU per event",
            "ratio",
            [ratio(own, theirs) for own, theirs in zip(everything, node, strict=True)],
        ),
        figure(
            "OpenSearch index operations ÷ events indexed (1: no other client wrote)",
            "ratio",
            [ratio(run.get("opensearch_index_ops"), _get(run, "max", "events_searchable")) for run in runs],
        ),
        figure(
            "CPU per event: OpenSearch under `_bulk`",
            "µs",
            [
                _us_per_event(_get(run, "bulk", "opensearch_cpu_seconds"), _get(run, "bulk", "events_indexed"))
                for run in runs
            ],
        ),
    ]


QUERY_NAMES = {
    "needle": "needle (request id)",
    "needle_24h": "needle, last 24 h",
    "common_term_filter": "common term + level filter",
    "histogram_24h": "24 h histogram by level",
}


def _size_label(events: int) -> str:
    if events >= 1_000_000 and events % 1_000_000 == 0:
        return f"{events // 1_000_000}M"
    if events >= 1000 and events % 1000 == 0:
        return f"{events // 1000}k"
    return str(events)


def search_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the search + storage group. Each run: {"store", "events", "result": bench_stores --json}."""
    sizes = sorted({int(run["events"]) for run in runs if "events" in run})
    rows: list[Figure] = []
    for size in sizes:
        at_size = [run for run in runs if run.get("events") == size]
        by_store = {
            store: [run.get("result") or {} for run in at_size if run.get("store") == store]
            for store in ("tantivy", "opensearch")
        }
        queries: list[str] = []
        for results in by_store.values():
            for result in results:
                for query in result.get("queries") or {}:
                    if query not in queries:
                        queries.append(query)
        label = _size_label(size)
        is_target_size = size >= TARGET_SIZE
        for query in queries:
            for percentile_key in ("p50_ms", "p99_ms"):
                for store, results in by_store.items():
                    target = None
                    if store == "tantivy" and is_target_size and percentile_key == "p99_ms":
                        target = {"needle": TARGET_NEEDLE_P99_MS, "histogram_24h": TARGET_HISTOGRAM_MS}.get(query)
                    rows.append(
                        figure(
                            f"{label} {store}: {QUERY_NAMES.get(query, query)} {percentile_key[:3]}",
                            "ms",
                            [_get(result, "queries", query, percentile_key) for result in results],
                            target,
                        )
                    )
            rows.append(
                figure(
                    f"{label} Mintlog ÷ OpenSearch: {QUERY_NAMES.get(query, query)} p99",
                    "ratio",
                    _paired_ratios(by_store, ("queries", query, "p99_ms")),
                    note="lower: Mintlog faster",
                )
            )
        for store, results in by_store.items():
            rows.append(
                figure(f"{label} {store}: bytes on disk per event", "B", [r.get("bytes_per_event") for r in results])
            )
            rows.append(
                figure(
                    f"{label} {store}: disk ÷ raw NDJSON",
                    "ratio",
                    [ratio(r.get("bytes_per_event"), r.get("raw_bytes_per_event")) for r in results],
                    TARGET_DISK_RATIO if store == "tantivy" and is_target_size else None,
                )
            )
            rows.append(
                figure(f"{label} {store}: load rate", "events/s", [r.get("load_events_per_s") for r in results])
            )
        rows.append(
            figure(
                f"{label} Mintlog ÷ OpenSearch: bytes on disk",
                "ratio",
                _paired_ratios(by_store, ("bytes_per_event",)),
                note="lower: Mintlog smaller",
            )
        )
    return rows


def _paired_ratios(by_store: Mapping[str, Sequence[Mapping[str, Any]]], path: tuple[str, ...]) -> list[float | None]:
    """Mintlog ÷ OpenSearch of the same repeat (the i-th run of each)."""
    pairs = zip(by_store.get("tantivy", []), by_store.get("opensearch", []), strict=False)
    return [ratio(_get(mintlog, *path), _get(opensearch, *path)) for mintlog, opensearch in pairs]


def alert_figures(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[Figure]:
    """Figures of the alert group. Each run: bench_alert.py's --json list of phase summaries."""
    phases: list[str] = []
    for run in runs:
        for phase in run:
            if phase.get("phase") not in phases:
                phases.append(str(phase.get("phase")))
    rows: list[Figure] = []
    for name in phases:
        of_phase = [next((p for p in run if p.get("phase") == name), {}) for run in runs]
        rows += [
            figure(f"{name}: p50", "s", [p.get("p50_s") for p in of_phase]),
            figure(f"{name}: p99", "s", [p.get("p99_s") for p in of_phase]),
            figure(f"{name}: samples without a webhook in 60 s", "count", [p.get("missed") for p in of_phase]),
        ]
    return rows


def soak_summary(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Reduce the soak's 10-second samples ({"t_s", "rss_kib": {label: kib}, "request_p99_ms",
    "searchable_p99_ms", "lag"}) to growth per hour per process, p99 drifts and the maximum lag."""
    times = [float(sample["t_s"]) for sample in samples]
    labels: list[str] = []
    for sample in samples:
        for label in sample.get("rss_kib") or {}:
            if label not in labels:
                labels.append(label)
    growth: dict[str, float | None] = {}
    for label in labels:
        points = [(t, s["rss_kib"][label]) for t, s in zip(times, samples, strict=True) if label in s["rss_kib"]]
        growth[label] = growth_percent_per_hour([t for t, _ in points], [float(v) for _, v in points])
    lags = _clean(sample.get("lag") for sample in samples)
    return {
        "rss_growth_percent_per_hour": growth,
        "request_p99_drift": drift([sample.get("request_p99_ms") for sample in samples]),
        "searchable_p99_drift": drift([sample.get("searchable_p99_ms") for sample in samples]),
        "max_lag": max(lags) if lags else None,
        "samples": len(samples),
    }


def soak_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the soak. Each run: soak.py's result ({"rate", "duration_s", "summary", "zero_loss", ...})."""
    labels: list[str] = []
    for run in runs:
        for label in _get(run, "summary", "rss_growth_percent_per_hour") or {}:
            if label not in labels:
                labels.append(label)
    rows = [
        figure("offered rate", "events/s", [run.get("rate") for run in runs]),
        figure("duration", "s", [run.get("duration_s") for run in runs]),
    ]
    rows += [
        figure(
            f"RSS growth after warm-up: {label}",
            "%/h",
            [_get(run, "summary", "rss_growth_percent_per_hour", label) for run in runs],
            TARGET_RSS_GROWTH,
        )
        for label in labels
    ]
    rows += [
        figure(
            "ingest request p99 drift (last ÷ first third)",
            "ratio",
            [_get(run, "summary", "request_p99_drift") for run in runs],
            TARGET_P99_FLAT,
        ),
        figure(
            "ingest-to-searchable p99 drift (last ÷ first third)",
            "ratio",
            [_get(run, "summary", "searchable_p99_drift") for run in runs],
            TARGET_P99_FLAT,
        ),
        figure(
            "max NATS consumer lag (pending + unacked)", "messages", [_get(run, "summary", "max_lag") for run in runs]
        ),
        flag_figure("zero loss at the end", [run.get("zero_loss") for run in runs]),
    ]
    return rows


def normalize_figures(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[Figure]:
    """Figures of the normalize group. Each run: normalize_rate.py's --json rows (one per event shape)."""
    rows: list[Figure] = []
    shapes = [str(row.get("shape")) for row in runs[0]] if runs else []
    for shape in shapes:
        of_shape = [next((row for row in run if row.get("shape") == shape), {}) for run in runs]
        settings = list((of_shape[0].get("events_per_s") or {}).keys())
        for setting in settings:
            rows.append(
                figure(
                    f"{shape}, {setting}", "events/s", [row.get("events_per_s", {}).get(setting) for row in of_shape]
                )
            )
            if setting != "detection off":
                rows.append(
                    figure(
                        f"{shape}, {setting} ÷ detection off",
                        "ratio",
                        [row.get("ratio_to_off", {}).get(setting) for row in of_shape],
                    )
                )
    return rows


def import_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the import group. Each run: `benchmarks/bench_import.py`'s result."""
    return [
        figure("mintlog import, accepted", "events/s", [run["import"]["accepted_events_per_s"] for run in runs]),
        figure("mintlog import, accepted", "MB/s", [run["import"]["accepted_mb_per_s"] for run in runs]),
        figure("load generator, accepted", "events/s", [run["load"]["accepted_events_per_s"] for run in runs]),
        figure(
            "mintlog import ÷ load generator",
            "ratio",
            [run["import_to_load_ratio"] for run in runs],
            TARGET_IMPORT_RATIO,
        ),
        flag_figure("mintlog import, every event searchable", [run["import"]["zero_loss"] for run in runs]),
    ]


def protocol_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the ingest protocols group. Each run: {"protocols": {name: load.py result}}, `native` first; a
    protocol's ratio is to its `native_around_events_per_s` (the native loads before and after it) when the run
    has it, else to the run's native load."""
    names = list(dict.fromkeys(name for run in runs for name in run.get("protocols") or {}))
    rows: list[Figure] = []
    for name in names:
        results = [(run.get("protocols") or {}).get(name) or {} for run in runs]
        natives = [(run.get("protocols") or {}).get("native") or {} for run in runs]
        rows.append(figure(f"{name}: accepted", "events/s", [r.get("accepted_events_per_s") for r in results]))
        rows.append(
            figure(f"{name}: sustained end to end", "events/s", [r.get("searchable_events_per_s") for r in results])
        )
        rows.append(flag_figure(f"{name}: zero loss", [r.get("zero_loss") for r in results]))
        if name != "native":
            ratios = [
                ratio(
                    r.get("searchable_events_per_s"),
                    r.get("native_around_events_per_s") or n.get("searchable_events_per_s"),
                )
                for r, n in zip(results, natives, strict=True)
            ]
            rows.append(figure(f"{name} ÷ native, sustained", "ratio", ratios, TARGET_PROTOCOL_RATIO))
    return rows


def oncall_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the on-call group. Each run: `benchmarks/bench_oncall.py`'s --json result."""
    incidents = [_get(run, "escalation", "incidents") for run in runs]
    at_target_size = all(isinstance(count, int) and count >= ONCALL_TARGET_INCIDENTS for count in incidents)
    return [
        figure(
            "on-call lookup (`people_on_call`) p50", "ms", [_get(r, "lookup", "people_on_call", "p50_ms") for r in runs]
        ),
        figure(
            "on-call lookup (`people_on_call`) p99",
            "ms",
            [_get(r, "lookup", "people_on_call", "p99_ms") for r in runs],
            TARGET_ONCALL_LOOKUP_P99_MS,
        ),
        figure(
            "`on_call_at` alone, all overrides p99", "ms", [_get(r, "lookup", "on_call_at", "p99_ms") for r in runs]
        ),
        figure("`render_shifts`, 7 days p99", "ms", [_get(r, "lookup", "render_7_days", "p99_ms") for r in runs]),
        figure("escalation: incidents", "count", incidents),
        figure("escalation: step started p50", "s", [_get(r, "escalation", "step_start_delay", "p50_s") for r in runs]),
        figure(
            "escalation: step notified p50", "s", [_get(r, "escalation", "step_notified_delay", "p50_s") for r in runs]
        ),
        figure(
            "escalation: step notified p99",
            "s",
            [_get(r, "escalation", "step_notified_delay", "p99_s") for r in runs],
            TARGET_STEP_DELAY_P99_S if at_target_size else None,
        ),
        figure(
            "escalation: step notified max", "s", [_get(r, "escalation", "step_notified_delay", "max_s") for r in runs]
        ),
        figure("escalation: throughput", "steps/s", [_get(r, "escalation", "steps_per_second") for r in runs]),
        figure(
            "escalation: every step done (entries written, next step inserted)",
            "s",
            [_get(r, "escalation", "seconds_to_all_done") for r in runs],
        ),
        figure("escalation: steps not notified", "count", [_get(r, "escalation", "missed") for r in runs]),
    ]


def uptime_figures(runs: Sequence[Mapping[str, Any]]) -> list[Figure]:
    """Figures of the uptime group. Each run: `benchmarks/bench_uptime.py`'s --json result. The detection target
    is interval x down_after + 2 s of the first run (every run of one suite uses the same plan)."""
    detection_target = None
    target_s = _get(runs[0], "detection", "target_s") if runs else None
    if isinstance(target_s, int | float):
        text = f"≤ {target_s:g} s (interval x down_after + 2 s, issue 17)"
        detection_target = Target("<=", float(target_s), text)
    rows = [
        figure("monitors", "count", [run.get("monitors") for run in runs]),
        figure("interval", "s", [run.get("interval_s") for run in runs]),
        figure("checks finished per second", "checks/s", [run.get("checks_per_s") for run in runs]),
        figure("check start delay p50", "s", [_get(run, "start_delay", "p50_s") for run in runs]),
        figure(
            "check start delay p99", "s", [_get(run, "start_delay", "p99_s") for run in runs], TARGET_START_DELAY_P99_S
        ),
        figure("check start delay max", "s", [_get(run, "start_delay", "max_s") for run in runs]),
        figure("checks skipped (fell an interval behind)", "count", [run.get("skipped_checks") for run in runs]),
        figure("probe latency p99", "ms", [run.get("probe_latency_p99_ms") for run in runs]),
        figure("CPU per check, every mintlog process", "ms", [run.get("cpu_ms_per_check") for run in runs]),
    ]
    kinds = list(dict.fromkeys(kind for run in runs for kind in run.get("cpu_ms_per_check_by_process") or {}))
    rows += [
        figure(f"CPU per check: {kind}", "ms", [_get(run, "cpu_ms_per_check_by_process", kind) for run in runs])
        for kind in kinds
    ]
    rows += [
        figure("detection latency p50", "s", [_get(run, "detection", "p50_s") for run in runs]),
        figure("detection latency p99", "s", [_get(run, "detection", "p99_s") for run in runs], detection_target),
        figure("detection samples without an incident", "count", [_get(run, "detection", "missed") for run in runs]),
    ]
    return rows


FIGURE_BUILDERS: dict[str, Any] = {
    "ingest_all_in_one": lambda runs: ingest_figures(runs, distributed=False),
    "ingest_distributed": lambda runs: ingest_figures(runs, distributed=True),
    "search_storage": search_figures,
    "alert": alert_figures,
    "soak": soak_figures,
    "normalize": normalize_figures,
    "import_file": import_figures,
    "ingest_protocols": protocol_figures,
    "oncall": oncall_figures,
    "uptime": uptime_figures,
}

GROUP_TITLES = {
    "ingest_all_in_one": "Ingest: `mintlog run`, all roles, embedded defaults",
    "ingest_distributed": "Ingest: distributed roles on OpenSearch",
    "search_storage": "Search and storage",
    "alert": "Alert latency (202 of the crossing event → signed webhook)",
    "soak": "Soak at 50 % of the measured maximum",
    "normalize": "Normalization rate with and without level/timestamp detection (one core)",
    "import_file": "`mintlog import` of a file beside the load generator",
    "ingest_protocols": "Ingest protocols beside the native body (sustained end to end, all-in-one)",
    "oncall": "On-call lookup and escalation steps due at once (issue 18)",
    "uptime": "Uptime: HTTP monitors on one uptime process (issue 17)",
}


def group_figures(name: str, runs: Sequence[Any]) -> list[Figure]:
    """The figures of group `name` from its raw runs; rows without any measured value are left out."""
    builder = FIGURE_BUILDERS.get(name)
    rows: list[Figure] = builder(runs) if builder and runs else []
    return [row for row in rows if row["n"]]


# ---------------------------------------------------------------- rendering


def format_number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "ratio":
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    if unit == "%/h":
        return f"{value:+.1f}"
    magnitude = abs(value)
    if magnitude >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _met_text(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def render_figure_row(row: Figure) -> str:
    if row["unit"] == "flag":
        held = f"{'yes' if row['held'] == row['n'] and row['n'] else 'no'} ({row['held']}/{row['n']} runs)"
        return f"| {row['name']} | {held} | | | {row['target'] or '—'} | {_met_text(row['met'])} |"
    unit = row["unit"]

    def cell(value: float | None) -> str:
        return format_number(value, unit)

    name = f"{row['name']} ({unit})" if unit and unit not in ("ratio",) else row["name"]
    if row.get("note"):
        name += f" — {row['note']}"
    return (
        f"| {name} | {cell(row['min'])} | {cell(row['median'])} | {cell(row['max'])} "
        f"| {row['target'] or '—'} | {_met_text(row['met'])} |"
    )


def render_table(rows: Sequence[Figure]) -> str:
    header = "| figure | min | median | max | target | met (median) |\n|---|---|---|---|---|---|"
    return "\n".join([header, *(render_figure_row(row) for row in rows)])


def render_machine(results: Mapping[str, Any]) -> str:
    machine = results.get("machine") or {}
    versions = results.get("versions") or {}
    git = results.get("git") or {}
    ram = machine.get("ram_gib")
    dirty = " (uncommitted changes in the tree)" if git.get("dirty") else ""
    lines = [
        f"- when: {results.get('started_at', '?')} → {results.get('finished_at', '?')}; "
        f"mode **{results.get('mode')}**, {results.get('repeats')} repeat(s) per figure",
        f"- command: `{results.get('command', '?')}`",
        f"- machine: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"{f'{ram:.1f}' if isinstance(ram, int | float) else '?'} GiB RAM, Linux {machine.get('kernel', '?')}, "
        f"Python {machine.get('python', '?')}",
        f"- commit: `{str(git.get('commit', '?'))[:12]}`{dirty}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]
    return "\n".join(lines)


def render_section(results: Mapping[str, Any], results_path: str = "") -> str:
    """The generated section of docs/benchmarks.md, markers included."""
    parts = [
        BEGIN_MARKER,
        "## Benchmark suite: latest results",
        "",
        "_Generated by `benchmarks/suite.py` (`make bench`; `make bench-quick` for the short development run)"
        + (f" from `{results_path}`" if results_path else "")
        + ". Do not edit between the markers: rerun, or re-render with "
        "`.venv/bin/python -m benchmarks.suite --render-only <results.json>`._",
        "",
        render_machine(results),
        "",
        "Each figure is the min / median / max over the repeats (every repeat on freshly started processes); "
        "“met” compares the median with the target. Ratios are computed per repeat, then summarized.",
    ]
    groups: Mapping[str, Any] = results.get("groups") or {}
    for name, group in groups.items():
        parts += ["", f"### {GROUP_TITLES.get(name, name)}", ""]
        if group.get("command"):
            parts += [f"Command: `{group['command']}`", ""]
        if group.get("description"):
            parts += [str(group["description"]), ""]
        if group.get("status") == "skipped":
            parts.append(f"Not run: {group.get('error') or 'skipped'}.")
            continue
        rows = group.get("figures") or []
        if rows:
            parts.append(render_table(rows))
        if group.get("error"):
            parts += [*([""] if rows else []), f"**Error** (the group did not finish): `{_one_line(group['error'])}`"]
    parts += ["", END_MARKER]
    return "\n".join(parts)


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split()).replace("`", "'")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def replace_section(document: str, section: str) -> str:
    """`document` with the text between the markers (inclusive) replaced by `section`; without markers, the
    section goes after the title's first paragraph (the intro), the rest of the document unchanged."""
    begin, end = document.find(BEGIN_MARKER), document.find(END_MARKER)
    if begin != -1 and end != -1 and end > begin:
        return document[:begin] + section + document[end + len(END_MARKER) :]
    lines = document.split("\n")
    index = 0
    while index < len(lines) and not lines[index].startswith("# "):
        index += 1
    index += 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines) and lines[index].strip() and not lines[index].startswith("#"):
        index += 1
    head, tail = lines[:index], lines[index:]
    while tail and not tail[0].strip():
        tail = tail[1:]
    return "\n".join([*head, "", section, "", *tail])
