"""The benchmark suite's statistics and Markdown rendering (`benchmarks/report.py`), and the process labels
of `benchmarks/topology.py`."""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks import report
from benchmarks.topology import label_of


def test_spread_ignores_missing_values_and_takes_the_median() -> None:
    assert report.spread([3, None, 1, float("nan"), 2, "x", True]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    assert report.spread([4.0, 1.0]) == {"min": 1.0, "median": 2.5, "max": 4.0, "n": 2}
    assert report.spread([None]) is None


def test_percentile_is_nearest_rank_like_load_py() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 0.5) == 51.0
    assert report.percentile(values, 0.99) == 100.0
    assert report.percentile([], 0.99) is None


def test_least_squares_slope_of_a_line_and_of_noise_around_it() -> None:
    xs = [0.0, 1.0, 2.0, 3.0]
    assert report.least_squares_slope(xs, [1.0, 3.0, 5.0, 7.0]) == pytest.approx(2.0)
    assert report.least_squares_slope(xs, [1.0, 2.0, 1.0, 2.0]) == pytest.approx(0.2)
    assert report.least_squares_slope([1.0, 1.0], [1.0, 2.0]) is None
    assert report.least_squares_slope([1.0], [1.0]) is None


def test_growth_per_hour_skips_the_warm_up_and_is_relative_to_the_mean() -> None:
    # A steep warm-up (first 20 % of the run), then +1 KiB per 36 s around a mean of ~1000 KiB: 10 %/h.
    times = [float(t) for t in range(0, 3600, 36)]
    values = [100.0 + t if t < 720 else 980.0 + (t - 720) / 36 for t in times]
    growth = report.growth_percent_per_hour(times, values)
    kept = [v for t, v in zip(times, values, strict=True) if t >= 0.2 * times[-1]]
    assert growth == pytest.approx(100 / (sum(kept) / len(kept)) * 100, rel=1e-6)
    assert growth is not None
    assert 9.0 < growth < 10.5
    assert report.growth_percent_per_hour([0.0, 10.0, 20.0], [500.0, 500.0, 500.0]) == 0.0
    assert report.growth_percent_per_hour([], []) is None


def test_drift_compares_the_last_third_with_the_first() -> None:
    assert report.drift([10, 10, 10, 50, 50, 50, 20, 20, 20]) == pytest.approx(2.0)
    assert report.drift([10, None, 10, 10]) == pytest.approx(1.0)
    assert report.drift([10, 20]) is None


def test_figure_is_met_by_its_median() -> None:
    target = report.Target(">=", 100, "≥ 100")
    row = report.figure("rate", "events/s", [90, 120, 110], target)
    assert (row["min"], row["median"], row["max"], row["n"]) == (90.0, 110.0, 120.0, 3)
    assert row["met"] is True
    assert report.figure("rate", "events/s", [90, 95, 150], target)["met"] is False
    assert report.figure("latency", "ms", [1.0], report.Target("<=", 2, "≤ 2"))["met"] is True
    assert report.figure("none", "ms", [None], target)["met"] is None


def test_flag_figure_holds_only_when_every_run_held() -> None:
    assert report.flag_figure("zero loss", [True, True])["met"] is True
    row = report.flag_figure("zero loss", [True, False, None])
    assert (row["held"], row["n"], row["met"]) == (1, 2, False)
    assert report.flag_figure("zero loss", [])["met"] is None


def _load(sustained: float, zero_loss: bool = True) -> dict[str, Any]:
    return {
        "accepted_events_per_s": sustained * 1.2,
        "searchable_events_per_s": sustained,
        "searchable_rate_mean_per_s": sustained * 0.9,
        "zero_loss": zero_loss,
        "ingest_request_p50_ms": 8.0,
        "ingest_request_p99_ms": 60.0,
        "ingest_to_searchable_p50_ms": 900.0,
        "ingest_to_searchable_p99_ms": 1500.0,
        "offered_rate": sustained / 2,
    }


def _by_name(rows: list[report.Figure]) -> dict[str, report.Figure]:
    return {row["name"]: row for row in rows}


def test_ingest_figures_all_in_one_with_ceiling_ratio_and_rss_per_process() -> None:
    runs = [
        {
            "max": _load(sustained),
            "paced": _load(sustained / 2),
            "ceiling": {"events_per_s": 1_000_000.0},
            "rss": {"mintlog": {"peak_kib": 2048}, "nats-server": {"peak_kib": 1024}},
        }
        for sustained in (30_000.0, 40_000.0, 35_000.0)
    ]
    runs[1]["max"]["zero_loss"] = False
    rows = _by_name(report.group_figures("ingest_all_in_one", runs))
    sustained = rows["sustained end to end, incl. drain (unpaced)"]
    assert (sustained["min"], sustained["median"], sustained["max"]) == (30_000.0, 35_000.0, 40_000.0)
    assert sustained["target"] == "≥ 100,000 events/s"
    assert sustained["met"] is False
    assert rows["zero loss (unpaced)"]["met"] is False
    assert rows["zero loss (paced)"]["met"] is True
    assert rows["ingest-to-searchable p99 (paced)"]["met"] is True
    assert rows["Mintlog ÷ ceiling (sustained)"]["median"] == pytest.approx(0.035)
    assert rows["peak RSS mintlog"]["median"] == 2.0
    assert rows["peak RSS nats-server"]["unit"] == "MiB"
    assert rows["peak RSS mintlog"]["target"] is None  # the 512 MiB bound is the distributed pipeline's
    # Runs from before issue 19 carry no `paced_fraction`: they were paced at half the sustained rate.
    assert "offered rate (paced, 50 % of sustained)" in rows


def test_ingest_figures_show_the_backlog_and_refusals_of_the_unpaced_load_and_the_paced_share() -> None:
    unpaced = _load(30_000.0) | {
        "backlog_messages_max": 420,
        "backlog_oldest_max_s": 12.5,
        "statuses": {"202": 1000, "503": 7, "429": 2},  # as read back from the results JSON (string keys)
    }
    runs = [{"max": unpaced, "paced": _load(24_000.0), "paced_fraction": 0.8}]
    rows = _by_name(report.group_figures("ingest_all_in_one", runs))
    assert rows["pipeline backlog, max (unpaced)"]["median"] == 420
    assert rows["oldest batch waiting, max (unpaced)"]["median"] == 12.5
    assert rows["ingest requests refused or failed (unpaced)"]["median"] == 9
    assert "offered rate (paced, 80 % of sustained)" in rows
    no_refusal = [{"max": _load(30_000.0) | {"statuses": {202: 10}}, "paced": _load(24_000.0)}]
    rows = _by_name(report.group_figures("ingest_all_in_one", no_refusal))
    assert rows["ingest requests refused or failed (unpaced)"]["median"] == 0


def test_ingest_figures_distributed_ratio_to_bulk_has_the_target() -> None:
    rss = {"pipeline-1": {"peak_kib": 600 * 1024}, "pipeline-2": {"peak_kib": 300 * 1024}, "api-1": {"peak_kib": 1}}
    runs = [{"max": _load(50_000.0), "paced": _load(25_000.0), "bulk": {"events_per_s": 62_500.0}, "rss": rss}]
    rows = _by_name(report.group_figures("ingest_distributed", runs))
    ratio = rows["Mintlog ÷ OpenSearch `_bulk` (sustained)"]
    assert ratio["median"] == pytest.approx(0.8)
    assert ratio["met"] is True
    assert rows["sustained end to end, incl. drain (unpaced)"]["target"] is None
    # Issue 19: each distributed pipeline process under 512 MiB.
    assert (rows["peak RSS pipeline-1"]["target"], rows["peak RSS pipeline-1"]["met"]) == (
        "≤ 512 MiB per process (issue 19)",
        False,
    )
    assert rows["peak RSS pipeline-2"]["met"] is True
    assert rows["peak RSS api-1"]["target"] is None


def test_group_figures_leave_out_rows_without_values() -> None:
    rows = report.group_figures("ingest_distributed", [{"repeat": 1}])
    assert rows == []
    assert report.group_figures("soak", []) == []


def _stores_result(store: str, needle_p99: float, bytes_per_event: float) -> dict[str, Any]:
    return {
        "store": store,
        "events": 10_000_000,
        "bytes_per_event": bytes_per_event,
        "raw_bytes_per_event": 300.0,
        "load_events_per_s": 50_000.0,
        "queries": {
            "needle": {"p50_ms": needle_p99 / 2, "p99_ms": needle_p99},
            "histogram_24h": {"p50_ms": 100.0, "p99_ms": 300.0},
        },
    }


def test_search_figures_apply_targets_at_10m_on_tantivy_only_and_pair_ratios_by_repeat() -> None:
    runs = [
        {"store": "tantivy", "events": 10_000_000, "result": _stores_result("tantivy", 40.0, 90.0)},
        {"store": "opensearch", "events": 10_000_000, "result": _stores_result("opensearch", 80.0, 450.0)},
        {"store": "tantivy", "events": 200_000, "result": _stores_result("tantivy", 400.0, 90.0)},
    ]
    rows = _by_name(report.group_figures("search_storage", runs))
    assert rows["10M tantivy: needle (request id) p99"]["met"] is True
    assert rows["10M tantivy: 24 h histogram by level p99"]["met"] is False
    assert rows["10M opensearch: needle (request id) p99"]["target"] is None
    assert rows["10M tantivy: disk ÷ raw NDJSON"]["median"] == pytest.approx(0.3)
    assert rows["10M tantivy: disk ÷ raw NDJSON"]["met"] is True
    assert rows["10M Mintlog ÷ OpenSearch: needle (request id) p99"]["median"] == pytest.approx(0.5)
    assert rows["10M Mintlog ÷ OpenSearch: bytes on disk"]["median"] == pytest.approx(0.2)
    assert rows["200k tantivy: needle (request id) p99"]["target"] is None


def test_alert_figures_per_phase() -> None:
    runs = [
        [
            {"phase": "idle", "p50_s": 3.0, "p99_s": 5.0, "missed": 0},
            {"phase": "under load", "p50_s": 4.0, "p99_s": 6.0, "missed": 1},
        ],
        [{"phase": "idle", "p50_s": 2.0, "p99_s": 4.0, "missed": 0}],
    ]
    rows = _by_name(report.group_figures("alert", runs))
    assert rows["idle: p50"]["median"] == 2.5
    assert rows["under load: p99"]["n"] == 1
    assert rows["under load: samples without a webhook in 60 s"]["median"] == 1.0


def test_uptime_figures_judge_start_delay_and_detection_against_the_runs_interval() -> None:
    def run(delay_p99: float, detection_p99: float) -> dict[str, Any]:
        return {
            "monitors": 1000,
            "interval_s": 30,
            "start_delay": {"p50_s": 0.3, "p99_s": delay_p99, "max_s": 2.0},
            "cpu_ms_per_check": 12.0,
            "cpu_ms_per_check_by_process": {"mintlog": 8.0, "nats-server": 1.0},
            "detection": {"p50_s": 45.0, "p99_s": detection_p99, "missed": 0, "target_s": 62},
        }

    rows = _by_name(report.group_figures("uptime", [run(0.8, 61.0), run(1.4, 63.0), run(0.9, 60.0)]))
    delay = rows["check start delay p99"]
    assert (delay["median"], delay["target"], delay["met"]) == (0.9, "≤ 1 s (issue 17)", True)
    detection = rows["detection latency p99"]
    assert (detection["median"], detection["met"]) == (61.0, True)
    assert detection["target"].startswith("≤ 62 s")
    assert rows["CPU per check: nats-server"]["median"] == 1.0
    assert "checks skipped (fell an interval behind)" not in rows  # not measured: left out


def test_soak_summary_and_figures() -> None:
    samples = [
        {
            "t_s": float(t),
            "rss_kib": {"mintlog": 1000 + t, "nats-server": 500},
            "request_p99_ms": 50.0 if t < 600 else 100.0,
            "searchable_p99_ms": 1000.0,
            "lag": t % 7,
        }
        for t in range(10, 910, 10)
    ]
    summary = report.soak_summary(samples)
    assert summary["rss_growth_percent_per_hour"]["nats-server"] == 0.0
    assert summary["rss_growth_percent_per_hour"]["mintlog"] > 100
    assert summary["request_p99_drift"] == pytest.approx(2.0)
    assert summary["searchable_p99_drift"] == pytest.approx(1.0)
    assert summary["max_lag"] == 6
    rows = _by_name(
        report.group_figures("soak", [{"rate": 10_000, "duration_s": 900, "summary": summary, "zero_loss": True}])
    )
    assert rows["RSS growth after warm-up: nats-server"]["met"] is True
    assert rows["RSS growth after warm-up: mintlog"]["met"] is False
    assert rows["ingest request p99 drift (last ÷ first third)"]["met"] is False
    assert rows["ingest-to-searchable p99 drift (last ÷ first third)"]["met"] is True
    assert rows["zero loss at the end"]["met"] is True


def test_format_number() -> None:
    assert report.format_number(123456.7, "events/s") == "123,457"
    assert report.format_number(123.4, "ms") == "123"
    assert report.format_number(12.34, "ms") == "12.3"
    assert report.format_number(1.234, "ms") == "1.23"
    assert report.format_number(0.81234, "ratio") == "0.81"
    assert report.format_number(0.0351, "ratio") == "0.035"
    assert report.format_number(2.5, "%/h") == "+2.5"
    assert report.format_number(None) == "—"
    assert report.format_number(math.nan) == "—"


def _results() -> dict[str, Any]:
    runs = [{"max": _load(40_000.0), "paced": _load(20_000.0), "ceiling": {"events_per_s": 1e6}}]
    return {
        "schema_version": report.SCHEMA_VERSION,
        "mode": "quick",
        "repeats": 1,
        "command": "make bench-quick",
        "started_at": "2026-11-27 05:00 UTC",
        "finished_at": "2026-11-27 05:10 UTC",
        "machine": {"cpu_model": "Test CPU", "cores": 2, "ram_gib": 23.4, "kernel": "6.1", "python": "3.11.9"},
        "git": {"commit": "0123456789abcdef0123", "dirty": True},
        "versions": {"mintlog": "0.1.0", "tantivy": "0.25.0"},
        "groups": {
            "ingest_all_in_one": {
                "status": "ok",
                "command": "make bench-quick",
                "runs": runs,
                "figures": report.group_figures("ingest_all_in_one", runs),
            },
            "alert": {"status": "error", "error": "RuntimeError: bench_alert failed `x`\nline 2", "runs": []},
        },
    }


def test_render_section_has_markers_machine_tables_and_errors() -> None:
    section = report.render_section(_results(), "benchmarks/results/2026-11-27-quick.json")
    assert section.startswith(report.BEGIN_MARKER)
    assert section.endswith(report.END_MARKER)
    assert "`benchmarks/results/2026-11-27-quick.json`" in section
    assert "Test CPU, 2 cores, 23.4 GiB RAM, Linux 6.1, Python 3.11.9" in section
    assert "`0123456789ab` (uncommitted changes in the tree)" in section
    assert "mintlog 0.1.0, tantivy 0.25.0" in section
    assert "### Ingest: `mintlog run`, all roles, embedded defaults" in section
    assert "| figure | min | median | max | target | met (median) |" in section
    assert (
        "| sustained end to end, incl. drain (unpaced) (events/s) | 40,000 | 40,000 | 40,000 "
        "| ≥ 100,000 events/s | **no** |"
    ) in section
    assert "| zero loss (unpaced) | yes (1/1 runs) | | | every run | yes |" in section
    assert "**Error** (the group did not finish): `RuntimeError: bench_alert failed 'x' line 2`" in section


def test_replace_section_inserts_after_the_intro_then_replaces_in_place() -> None:
    document = "# Benchmarks\n\nIntro line one\nline two.\n\n## History\n\nold table\n"
    first = report.replace_section(document, f"{report.BEGIN_MARKER}\nv1\n{report.END_MARKER}")
    assert first == (
        f"# Benchmarks\n\nIntro line one\nline two.\n\n{report.BEGIN_MARKER}\nv1\n{report.END_MARKER}\n\n"
        "## History\n\nold table\n"
    )
    second = report.replace_section(first, f"{report.BEGIN_MARKER}\nv2\n{report.END_MARKER}")
    assert second == first.replace("\nv1\n", "\nv2\n")


@pytest.mark.parametrize(
    ("argv", "parent_argv", "parent_label", "expected"),
    [
        (["/venv/bin/nats-server", "-c", "/tmp/x/nats-server.conf"], None, "mintlog", "nats-server"),
        (["/venv/bin/python", "-m", "mintlog", "run"], None, "", "mintlog"),
        (["/venv/bin/python", "-m", "mintlog", "run", "--role=api"], None, "", "mintlog-api"),
        (["/venv/bin/python", "-m", "mintlog", "run", "--role", "ingest,api"], None, "", "mintlog-ingest+api"),
        (
            ["/venv/bin/python", "-m", "mintlog", "worker", "pipeline"],
            ["python", "-m", "mintlog", "run"],
            "mintlog",
            "mintlog-pipeline",
        ),
        (["python", "-m", "mintlog", "run"], ["python", "-m", "mintlog", "run"], "ingest-1", "ingest-1-worker"),
        (["/venv/bin/mintlog", "run"], None, "", "mintlog"),
        ([], None, "mintlog", "mintlog-child"),
        (["/usr/bin/gzip"], None, "mintlog", "mintlog-gzip"),
    ],
)
def test_process_labels(argv: list[str], parent_argv: list[str] | None, parent_label: str, expected: str) -> None:
    assert label_of(argv, parent_argv, parent_label) == expected


def test_the_distributed_cpu_figures_put_the_write_path_beside_opensearch_per_indexed_event() -> None:
    run: dict[str, Any] = {
        "max": {"events_searchable": 100_000},
        "cpu_seconds": {
            "ingest-1-worker": 1.0,
            "pipeline-1": 2.0,
            "pipeline-2": 2.0,
            "nats-server": 0.5,
            "redis-server": 0.5,
            "api-1": 3.0,
            "opensearch": 12.0,
        },
        "bulk": {"opensearch_cpu_seconds": 6.0, "events_indexed": 200_000},
        "opensearch_index_ops": 100_000,
    }
    rows = {row["name"]: row for row in report.distributed_cpu_figures([run])}

    def median(name: str) -> float:
        return rows[name]["median"]

    assert median("CPU per event: Mintlog's write path (ingest, pipeline, nats-server, redis)") == pytest.approx(60.0)
    assert median("CPU per event: every Mintlog process (also api serving the probes, alert, notify)") == pytest.approx(
        90.0
    )
    assert median("CPU per event: OpenSearch, same run") == pytest.approx(120.0)
    assert median("Mintlog's write path ÷ OpenSearch, CPU per event") == pytest.approx(0.5)
    assert rows["Mintlog's write path ÷ OpenSearch, CPU per event"]["met"] is True
    assert median("CPU per event: OpenSearch under `_bulk`") == pytest.approx(30.0)


def test_protocol_ratios_are_to_the_native_loads_around_each_protocol_when_the_run_has_them() -> None:
    def load(sustained: int, **extra: Any) -> dict[str, Any]:
        return {"accepted_events_per_s": sustained, "searchable_events_per_s": sustained, "zero_loss": True, **extra}

    bracketed = {"protocols": {"native": load(20_000), "syslog": load(9_000, native_around_events_per_s=10_000)}}
    older = {"protocols": {"native": load(20_000), "syslog": load(9_000)}}
    rows = {row["name"]: row for row in report.protocol_figures([bracketed, older])}
    assert (rows["syslog ÷ native, sustained"]["min"], rows["syslog ÷ native, sustained"]["max"]) == (0.45, 0.9)
