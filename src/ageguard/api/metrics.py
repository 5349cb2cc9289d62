"""Prometheus metrics: requests, outcome codes, latency per endpoint and per pipeline stage.

Labels are endpoint names, outcome codes and stage names only: never image data, never an SDK ID.
With several worker processes ``ageguard serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start, and ``/metrics`` aggregates every worker's values from there.

Several instances: every sample carries ``ageguard_instance`` (the ``instance_name`` setting; ``ageguard
serve`` defaults it to "<hostname>:<port>"), added when the exposition is rendered, so the workers of one
instance sum into one series and two instances never collide even when scraped through one address.
Prometheus' own ``instance`` target label is left alone (docs/deploy.md shows the scrape config).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

#: The label every sample of this instance carries.
INSTANCE_LABEL = "ageguard_instance"
_instance_name: str | None = None

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "ageguard_requests",
    "API requests answered, by endpoint and outcome code (OK or an error code).",
    ["endpoint", "code"],
)
REQUEST_LATENCY = Histogram(
    "ageguard_request_duration_seconds",
    "Wall time of API requests, by endpoint.",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
STAGE_LATENCY = Histogram(
    "ageguard_stage_duration_seconds",
    "Time spent in each pipeline stage (from Analysis.timings_ms).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_REJECTIONS = Counter(
    "ageguard_queue_rejections",
    "Requests refused with SERVICE_UNAVAILABLE because the inference queue was full.",
)
RECORD_FAILURES = Counter(
    "ageguard_record_failures",
    "Request records the Hub database did not accept (each such request was answered SERVICE_UNAVAILABLE).",
)
IN_FLIGHT = Gauge(
    "ageguard_inference_in_flight",
    "Inference jobs running or waiting.",
    multiprocess_mode="livesum",
)


def observe_request(endpoint: str, code: str, seconds: float) -> None:
    REQUESTS.labels(endpoint=endpoint, code=code).inc()
    REQUEST_LATENCY.labels(endpoint=endpoint).observe(seconds)


def observe_stages(timings_ms: dict[str, float]) -> None:
    for stage, ms in timings_ms.items():
        STAGE_LATENCY.labels(stage=stage).observe(max(ms, 0.0) / 1000.0)


def set_instance_name(name: str | None) -> None:
    """The ``ageguard_instance`` label value (None: this host's name)."""
    global _instance_name
    _instance_name = name.strip() if name and name.strip() else None


def instance_name() -> str:
    return _instance_name or socket.gethostname()


class _InstanceLabelled(Collector):
    """Every family of ``source`` with the instance label added to each sample."""

    def __init__(self, source: CollectorRegistry | Collector, value: str) -> None:
        self.source = source
        self.value = value

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [
                Sample(
                    sample.name,
                    {**sample.labels, INSTANCE_LABEL: self.value},
                    sample.value,
                    sample.timestamp,
                    sample.exemplar,
                )
                for sample in family.samples
            ]
            yield out


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    source: CollectorRegistry | Collector
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(source)
    else:
        source = REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_InstanceLabelled(source, instance_name()))
    return generate_latest(registry), CONTENT_TYPE_LATEST
