"""Prometheus metrics objects, updated where things happen. The figures that live in
the database are collected at scrape time by ``ragline.api.metrics``.

    EMBEDDED_TEXTS.labels(model="all-MiniLM-L6-v2").inc(32)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUEST_SECONDS = Histogram(
    "ragline_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
EMBEDDING_BATCH_SECONDS = Histogram(
    "ragline_embedding_batch_duration_seconds",
    "Time the embedding model takes for one call (a batch of texts).",
    ("model",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
EMBEDDED_TEXTS = Counter(
    "ragline_embedded_texts",
    "Texts the embedding model has embedded (cache hits excluded).",
    ("model",),
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "ragline_job_attempts_finished",
    "Job attempts run by this process, by how they ended.",
    ("kind", "status"),
    registry=REGISTRY,
)
