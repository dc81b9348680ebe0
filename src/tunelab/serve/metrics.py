"""Prometheus metrics for GET /metrics, with the official `prometheus_client`.

One registry per app (not the library's global one): two servers in one process (tests, or an
app embedded in another) never share or double-register series. Each uvicorn worker process has
its own registry, so with `serve.workers > 1` a scrape sees one worker: scrape replicas
separately (one worker per container) for exact totals.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tunelab_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "tunelab_request_latency_seconds",
            "Time from request received to response sent",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.texts = Counter("tunelab_texts", "Texts predicted", registry=r)
        self.batch_size = Histogram("tunelab_batch_size", "Texts per model batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_latency = Histogram(
            "tunelab_batch_latency_seconds", "Model time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_failures = Counter("tunelab_batch_failures", "Batches whose model call raised", registry=r)
        self.rejected = Counter("tunelab_rejected", "Requests refused by reason", ["reason"], registry=r)
        self.queue_depth = Gauge("tunelab_queue_depth", "Texts waiting for the model", registry=r)
        self.queue_depth.set_function(queue_depth)

    def on_batch(self, size: int, seconds: float, ok: bool) -> None:
        self.batch_size.observe(size)
        self.batch_latency.observe(seconds)
        if ok:
            self.texts.inc(size)
        else:
            self.batch_failures.inc()

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
