"""The parent's `/metrics` merges its child's exposition: one family each, series summed."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mintlog.metrics import Metrics
from mintlog.metrics_merge import merge_expositions


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_counters_histograms_and_gauges_add_up_and_created_keeps_the_earliest() -> None:
    parent, child = Metrics(), Metrics()
    parent.ingest_events_accepted.inc(7)
    parent.http_requests.labels("ingest", "202").inc(3)
    parent.tails_open.set(2)
    child.indexer_events.inc(5)
    child.pipeline_lag.set(1.5)
    child.ingest_events_rejected.labels("too_large").inc(1)
    parent.store_write_seconds.observe(0.003)
    child.store_write_seconds.observe(0.2)

    merged = samples(merge_expositions([parent.render(), child.render()]))

    assert merged[("mintlog_ingest_events_accepted_total", ())] == 7
    assert merged[("mintlog_indexer_events_total", ())] == 5
    assert merged[("mintlog_http_requests_total", (("server", "ingest"), ("status", "202")))] == 3
    assert merged[("mintlog_ingest_events_rejected_total", (("reason", "too_large"),))] == 1
    assert merged[("mintlog_tails_open", ())] == 2
    assert merged[("mintlog_pipeline_lag_seconds", ())] == 1.5
    assert merged[("mintlog_store_write_seconds_count", ())] == 2
    assert merged[("mintlog_store_write_seconds_bucket", (("le", "0.005"),))] == 1
    assert merged[("mintlog_store_write_seconds_bucket", (("le", "+Inf"),))] == 2
    assert merged[("mintlog_store_write_seconds_sum", ())] == 0.203
    created = [
        value
        for source in (parent.render(), child.render())
        for (name, _labels), value in samples(source).items()
        if name == "mintlog_indexer_events_created"
    ]
    assert merged[("mintlog_indexer_events_created", ())] == min(created)


def test_every_family_appears_once() -> None:
    text = merge_expositions([Metrics().render(), Metrics().render()]).decode()
    type_lines = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))
    assert "# TYPE mintlog_indexer_events_total counter" in type_lines


def test_one_exposition_is_returned_unchanged() -> None:
    text = Metrics().render()
    assert merge_expositions([text]) is text
