"""Prometheus metrics of one node, under Druid's metric names.

Druid's names map to Prometheus as Druid's ``prometheus-emitter`` does: ``druid_`` + the name with
``/`` as ``_`` (``query/time`` -> ``druid_query_time``), timers in seconds. Each node has its own
registry (several nodes share a process in tests and benchmarks), served at ``GET /metrics``.

Values owned by a component are read at scrape time through ``gauge_callback`` so the hot paths
pay nothing; counters and histograms are for events (a query, a persist).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# ``*_created`` timestamps per series double the output and no Druid metric has them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Buckets for query and request times, in seconds.
TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Sample = tuple[dict[str, str], float]


def prom_name(druid_name: str) -> str:
    """``query/time`` -> ``druid_query_time``."""
    return "druid_" + druid_name.replace("/", "_").replace("-", "_").replace(".", "_")


class _CallbackCollector(Collector):
    def __init__(
        self, name: str, doc: str, labels: Sequence[str], read: Callable[[], Iterable[Sample]]
    ) -> None:
        self._name, self._doc, self._labels, self._read = name, doc, list(labels), read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        try:
            for labels, value in self._read():
                family.add_metric([labels.get(k, "") for k in self._labels], value)
        except Exception:
            log.exception("reading metric %s failed", self._name)
        yield family

    def describe(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(self._name, self._doc, labels=self._labels)


class NodeMetrics:
    """The metrics of one node; ``service`` and ``host`` label every sample (as Druid's)."""

    def __init__(self, service: str, host: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.const = {"service": service, "host": host}

    def _labels(self, labels: Sequence[str]) -> list[str]:
        return [*self.const, *labels]

    def counter(self, druid_name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(prom_name(druid_name), doc, self._labels(labels), registry=self.registry)

    def histogram(
        self,
        druid_name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = TIME_BUCKETS,
    ) -> Histogram:
        return Histogram(
            prom_name(druid_name),
            doc,
            self._labels(labels),
            registry=self.registry,
            buckets=buckets,
        )

    def gauge(self, druid_name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(prom_name(druid_name), doc, self._labels(labels), registry=self.registry)

    def gauge_callback(
        self,
        druid_name: str,
        doc: str,
        read: Callable[[], Iterable[Sample]],
        labels: Sequence[str] = (),
    ) -> None:
        """A gauge whose samples ``read()`` returns at scrape time: ``[({label: value}, x)]``."""
        const = self.const

        def with_const() -> Iterable[Sample]:
            return [({**const, **lbl}, value) for lbl, value in read()]

        self.registry.register(
            _CallbackCollector(prom_name(druid_name), doc, self._labels(labels), with_const)
        )

    def labels(self, **extra: str) -> dict[str, str]:
        """The constant labels plus ``extra``, for ``metric.labels(**m.labels(...))``."""
        return {**self.const, **extra}

    def render(self) -> bytes:
        return generate_latest(self.registry)
