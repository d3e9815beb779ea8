"""The figures that live in the database (jobs by state, queue depth, chunks indexed,
freshness of each source), read when Prometheus scrapes, so every API replica
reports the same truth.

    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine))
    generate_latest(REGISTRY) + generate_latest(registry)   # what /metrics serves
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from ragline.ingest.store import total_chunks
from ragline.jobs.store import JobStore
from ragline.sources.freshness import source_freshness


class DatabaseCollector(Collector):
    """Jobs by state, jobs waiting by queue and chunks indexed, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # collected from the database on scrape only

    def collect(self) -> Iterator[Metric]:
        states, waiting = JobStore(self.engine).counts()
        jobs = GaugeMetricFamily("ragline_jobs", "Jobs by state.", labels=["state"])
        for state, count in states.items():
            jobs.add_metric([state], count)
        yield jobs
        depth = GaugeMetricFamily(
            "ragline_queue_depth", "Jobs queued or waiting to retry, by queue.", labels=["queue"]
        )
        for queue, count in waiting.items():
            depth.add_metric([queue], count)
        yield depth
        # No tenant label: /metrics may be open to anyone who reaches it, and tenant names
        # are not for everyone.
        total = total_chunks(self.engine)
        yield GaugeMetricFamily(
            "ragline_chunks_indexed", "Chunks in the index, all tenants.", value=int(total)
        )
        yield from _freshness(self.engine)


def _freshness(engine: Engine) -> Iterator[Metric]:
    """Per source, by id and kind (names, like tenants, stay out of /metrics)."""
    labels = ["source_id", "kind"]
    age = GaugeMetricFamily(
        "ragline_source_seconds_since_success",
        "Seconds since the source's last successful sync (absent: never synced).",
        labels=labels,
    )
    pending = GaugeMetricFamily(
        "ragline_source_pending_items",
        "Event records of the source queued for a sync and not yet indexed.",
        labels=labels,
    )
    failed = GaugeMetricFamily(
        "ragline_source_failed_items", "Items of the source that failed to index.", labels=labels
    )
    for row in source_freshness(engine, tenant=None):
        key = [row["id"], row["kind"]]
        if row["seconds_since_success"] is not None:
            age.add_metric(key, row["seconds_since_success"])
        pending.add_metric(key, row["pending"])
        failed.add_metric(key, row["failed_items"])
    yield from (age, pending, failed)
