"""A sentence-transformers model loaded from a local directory (never from a hub).

embedder = LocalEmbedder.load(Path(".../all-MiniLM-L6-v2"), name="all-MiniLM-L6-v2")
vectors = embedder.embed(["how do I calibrate the oxygen sensor?"])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embedding.base import TokenCounter, Vectors
from ragline.embedding.tokens import HFTokenCounter
from ragline.errors import EmbeddingError
from ragline.metrics import EMBEDDED_TEXTS, EMBEDDING_BATCH_SECONDS


class LocalEmbedder:
    """An embedder running a sentence-transformers model on this machine."""

    def __init__(self, model: Any, *, name: str, path: Path, batch_size: int = 32) -> None:
        self._model = model
        self.name = name
        self.path = path
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())
        # [CLS] and [SEP] take two places of the model's window.
        self.max_tokens = int(model.max_seq_length) - 2
        self.tokenizer: TokenCounter = HFTokenCounter(path / "tokenizer.json")

    @classmethod
    def load(
        cls, path: Path, *, name: str, device: str = "cpu", batch_size: int = 32
    ) -> LocalEmbedder:
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as e:
            raise EmbeddingError(f"could not load the embedding model from {path}: {e}") from e
        return cls(model, name=name, path=path, batch_size=batch_size)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        started = time.perf_counter()
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        EMBEDDING_BATCH_SECONDS.labels(model=self.name).observe(time.perf_counter() - started)
        EMBEDDED_TEXTS.labels(model=self.name).inc(len(texts))
        return np.asarray(vectors, dtype=np.float32)
