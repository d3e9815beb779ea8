"""A sentence-transformers model loaded from a local directory (never from a hub).

embedder = LocalEmbedder.load(Path(".../all-MiniLM-L6-v2"), name="all-MiniLM-L6-v2")
vectors = embedder.embed(["how do I calibrate the oxygen sensor?"])
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ragline.errors import EmbeddingError
from ragline.ingest.embedders.base import TokenCounter, Vectors
from ragline.metrics import EMBEDDED_TEXTS, EMBEDDING_BATCH_SECONDS


class HFTokenCounter:
    """Token counts from a model's ``tokenizer.json``.

    The file may preset padding and truncation (MiniLM's truncates at 128); both are
    switched off here, or long texts would be counted short.
    """

    def __init__(self, tokenizer_file: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        # Boilerplate and repeated passages are counted once.
        self._cached_count = lru_cache(maxsize=65536)(self._count)

    def count(self, text: str) -> int:
        return self._cached_count(text)

    def _count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, text: str, max_tokens: int) -> list[str]:
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        pieces: list[str] = []
        for start in range(0, len(offsets), max_tokens):
            window = offsets[start : start + max_tokens]
            begin = window[0][0]
            end = offsets[start + max_tokens][0] if start + max_tokens < len(offsets) else len(text)
            piece = text[begin:end].strip()
            if piece:
                pieces.append(piece)
        return pieces


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


def read_dimension(path: Path) -> int:
    """The output dimension of a sentence-transformers model directory, without loading it."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        dimension: int | None = None
        for module in modules:
            config_file = path / module.get("path", "") / "config.json"
            if not config_file.exists():
                continue
            config = json.loads(config_file.read_text())
            if "out_features" in config:  # a Dense layer after pooling
                dimension = int(config["out_features"])
            elif "word_embedding_dimension" in config:
                dimension = int(config["word_embedding_dimension"])
        if dimension is None:
            dimension = int(json.loads((path / "config.json").read_text())["hidden_size"])
    except (OSError, KeyError, ValueError) as e:
        raise EmbeddingError(f"{path} is not a sentence-transformers model directory: {e}") from e
    return dimension
