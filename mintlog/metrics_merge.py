"""Merging the Prometheus expositions of the processes of one `mintlog run` into one.

`mintlog run` may run the pipeline in a child process (see `mintlog.launch.pipeline_child`); its `/metrics`
still answers for the whole: the parent's own exposition plus the child's, merged series by series. Every
process registers the same metric families (`mintlog.metrics.Metrics`), and a family a process does not work
on stays at zero there, so summing is right for counters, histograms and the gauges Mintlog exports (each
gauge is set by the one process that runs its role). `_created` series take the earliest time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["merge_expositions"]

_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


class _MergedCollector(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_expositions(texts: Sequence[bytes]) -> bytes:
    """One text exposition holding every series of `texts`, values of the same series summed (`_created`: the
    minimum). Families keep the order they first appear in. Raises `ValueError` on a text that is not the
    Prometheus text format."""
    if len(texts) == 1:
        return texts[0]
    families: dict[str, Metric] = {}
    values: dict[str, dict[_SeriesKey, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode("utf-8")):
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            series = values.setdefault(merged.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in series:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(series[key], sample.value)
                else:
                    series[key] += sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in values[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MergedCollector(families.values()))
    return generate_latest(registry)
