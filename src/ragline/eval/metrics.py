"""Ranking metrics, as pytrec_eval and the BEIR paper compute them.

ndcg_at(["d3", "d1"], {"d1": 1, "d2": 2}, 10)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """nDCG@k with gain 2^rel - 1 and discount log2(rank + 1); the ideal ranking is
    built from every judged document of the query."""
    dcg = sum(
        (2 ** relevance.get(doc, 0) - 1) / math.log2(rank + 1)
        for rank, doc in enumerate(ranking[:k], start=1)
    )
    ideal = sorted((rel for rel in relevance.values() if rel > 0), reverse=True)[:k]
    idcg = sum((2**rel - 1) / math.log2(rank + 1) for rank, rel in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, rel in relevance.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
