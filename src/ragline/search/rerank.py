"""Optional reranking of the fused hits by a model that reads query and passage together.

    reranker = get_reranker(settings)          # None unless RAGLINE_RERANK_MODEL_PATH is set
    hits = reranker.rerank(query, hits)        # best first, scores from the reranker

No reranking model ships with ragline (none can be installed offline here), so
reranking is off by default; point ``RAGLINE_RERANK_MODEL_PATH`` at a local
sentence-transformers cross-encoder directory (for example ms-marco-MiniLM-L-6-v2)
to turn it on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ragline.config import Settings
from ragline.domain import Hit
from ragline.errors import ConfigurationError


class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` reordered best first, each with the reranker's score."""
        ...


class CrossEncoderReranker:
    def __init__(self, model: Any, *, batch_size: int = 32) -> None:
        self._model = model
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: Path, *, device: str = "cpu") -> CrossEncoderReranker:
        try:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(str(path), device=device, local_files_only=True)
        except Exception as e:
            raise ConfigurationError(f"could not load the reranking model from {path}: {e}") from e
        return cls(model)

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict(
            [(query, hit.text) for hit in hits],
            batch_size=self.batch_size,
            show_progress_bar=False,
        )
        rescored = [
            replace(hit, score=float(score)) for hit, score in zip(hits, scores, strict=True)
        ]
        return sorted(rescored, key=lambda hit: hit.score, reverse=True)


_lock = threading.Lock()
_loaded: dict[Path, Reranker] = {}


def get_reranker(settings: Settings) -> Reranker | None:
    """The configured reranker, loaded once per process; None when reranking is off."""
    path = settings.rerank_model_path
    if path is None:
        return None
    with _lock:
        if path not in _loaded:
            _loaded[path] = CrossEncoderReranker.load(path, device=settings.embedding_device)
        return _loaded[path]
