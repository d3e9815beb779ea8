"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from ragline.eval.metrics import mrr_at, ndcg_at, percentile, recall_at


def test_ndcg_binary_relevance() -> None:
    # Relevant d1 and d2; ranking puts d1 at 2 and d2 at 4.
    ranking = ["x", "d1", "y", "d2"]
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranking, {"d1": 1, "d2": 1}, 10) == pytest.approx(dcg / idcg)


def test_ndcg_graded_relevance_and_cutoff() -> None:
    relevance = {"a": 2, "b": 1, "c": 0}
    # At k=2 only "b" (rank 1) and "c" (rank 2) are seen: dcg = (2^1 - 1) / log2(2) = 1.
    idcg = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert ndcg_at(["b", "c", "a"], relevance, 2) == pytest.approx(1 / idcg)
    assert ndcg_at(["a", "b"], relevance, 2) == pytest.approx(1.0)


def test_ndcg_counts_judged_documents_missing_from_the_ranking() -> None:
    # Three relevant documents, one retrieved at rank 1: 1 / (1 + 1/log2(3) + 1/2).
    expected = 1 / (1 + 1 / math.log2(3) + 0.5)
    assert ndcg_at(["r1"], {"r1": 1, "r2": 1, "r3": 1}, 10) == pytest.approx(expected)


def test_ndcg_without_relevant_documents_is_zero() -> None:
    assert ndcg_at(["a"], {"a": 0}, 10) == 0.0


def test_recall() -> None:
    relevance = {"a": 1, "b": 1, "c": 1, "d": 0}
    assert recall_at(["a", "x", "c", "d"], relevance, 100) == pytest.approx(2 / 3)
    assert recall_at(["x", "a"], relevance, 1) == 0.0


def test_mrr() -> None:
    assert mrr_at(["x", "y", "a"], {"a": 1}, 10) == pytest.approx(1 / 3)
    assert mrr_at(["x", "y", "a"], {"a": 1}, 2) == 0.0
    assert mrr_at(["a", "b"], {"a": 1, "b": 1}, 10) == 1.0


def test_percentile() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 0.5) == 30.0
    assert percentile(values, 0.95) == pytest.approx(48.0)
    assert percentile([], 0.5) == 0.0
