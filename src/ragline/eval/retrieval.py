"""Retrieval evaluation on a BEIR dataset: nDCG@10, Recall@100, MRR@10, latency.

    result = evaluate_retrieval(pipeline, searcher, BeirDataset(path), split="test",
                                modes=("lexical", "dense", "hybrid"))
    result.modes["hybrid"].ndcg_at_10

The corpus is ingested through the ordinary pipeline into its own collection, so a
second evaluation finds it unchanged and embeds nothing. Documents are ranked by
their best chunk. Latency is that of the search alone: the queries are embedded
beforehand, in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragline.config import SearchMode
from ragline.domain import Filter, SyncReport
from ragline.embedding.base import Vectors
from ragline.eval.beir import BeirDataset, Qrels
from ragline.eval.metrics import mrr_at, ndcg_at, percentile, recall_at
from ragline.ingest.pipeline import Pipeline
from ragline.ingest.progress import Progress
from ragline.search.hybrid import Searcher

# Chunks fetched per query: enough for 100 distinct documents when a few documents
# contribute several chunks each.
CHUNK_DEPTH = 300


@dataclass(frozen=True)
class ModeResult:
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    queries: int

    def as_dict(self) -> dict[str, float]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
        }


@dataclass
class RetrievalEvaluation:
    dataset: str
    split: str
    collection: str
    ingest: SyncReport
    modes: dict[str, ModeResult] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {mode: result.as_dict() for mode, result in self.modes.items()}


def collection_for(dataset: BeirDataset) -> str:
    return f"beir:{dataset.name}"


def rank_documents(doc_ids: Sequence[str], limit: int = 100) -> list[str]:
    """Documents in the order of their best chunk (hits come best first)."""
    ranking: list[str] = []
    seen: set[str] = set()
    for doc_id in doc_ids:
        if doc_id not in seen:
            seen.add(doc_id)
            ranking.append(doc_id)
            if len(ranking) == limit:
                break
    return ranking


@dataclass(frozen=True)
class QuerySet:
    """The judged queries of a split, with their vectors (embedded once, in a batch)."""

    ids: list[str]
    texts: dict[str, str]
    qrels: Qrels
    vectors: Vectors | None

    @classmethod
    def load(cls, dataset: BeirDataset, split: str, searcher: Searcher) -> QuerySet:
        texts = dataset.queries(split)
        ids = sorted(texts)
        vectors = searcher.embed_queries([texts[q] for q in ids]) if ids else None
        return cls(ids, texts, dataset.qrels(split), vectors)


def score_mode(
    searcher: Searcher,
    queries: QuerySet,
    mode: SearchMode,
    collection: str,
    on_query: Callable[[], None] | None = None,
) -> ModeResult:
    """Run every query in ``mode`` against ``collection`` and average the metrics."""
    ndcg, recall, mrr, latency = [], [], [], []
    scope = Filter(collection=collection)
    for index, query_id in enumerate(queries.ids):
        started = time.perf_counter()
        hits = searcher.search(
            queries.texts[query_id],
            mode=mode,
            k=CHUNK_DEPTH,
            search_filter=scope,
            query_vector=queries.vectors[index] if queries.vectors is not None else None,
        )
        latency.append((time.perf_counter() - started) * 1000)
        ranking = rank_documents([hit.doc_id for hit in hits])
        relevance = queries.qrels[query_id]
        ndcg.append(ndcg_at(ranking, relevance, 10))
        recall.append(recall_at(ranking, relevance, 100))
        mrr.append(mrr_at(ranking, relevance, 10))
        if on_query is not None:
            on_query()
    count = len(queries.ids) or 1
    return ModeResult(
        ndcg_at_10=sum(ndcg) / count,
        recall_at_100=sum(recall) / count,
        mrr_at_10=sum(mrr) / count,
        p50_ms=percentile(latency, 0.50),
        p95_ms=percentile(latency, 0.95),
        queries=len(queries.ids),
    )


def evaluate_retrieval(
    pipeline: Pipeline,
    searcher: Searcher,
    dataset: BeirDataset,
    *,
    split: str = "test",
    modes: Sequence[SearchMode] = ("lexical", "dense", "hybrid"),
    ingest_progress: Progress | None = None,
    on_query: Callable[[], None] | None = None,
) -> RetrievalEvaluation:
    collection = collection_for(dataset)
    ingest = pipeline.sync(dataset.source(), collection=collection, progress=ingest_progress)
    queries = QuerySet.load(dataset, split, searcher)
    result = RetrievalEvaluation(dataset.name, split, collection, ingest)
    for mode in modes:
        result.modes[mode] = score_mode(searcher, queries, mode, collection, on_query)
    return result
