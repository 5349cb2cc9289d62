"""Prometheus metrics: requests, outcome codes, latency per endpoint and per pipeline stage.

Labels are endpoint names, outcome codes and stage names only: never image data, never an SDK ID.
With several worker processes ``ageguard serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start, and ``/metrics`` aggregates every worker's values from there.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

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


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
