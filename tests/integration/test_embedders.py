"""Every embedder ragline ships passes the embedder contract
(``ragline.testing.embedder``): the local model, and a server speaking OpenAI's API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragline.config import Settings
from ragline.embedding.base import Embedder
from ragline.embedding.factory import get_embedder
from ragline.embedding.local import LocalEmbedder
from ragline.embedding.openai import OpenAIEmbedder
from ragline.modelspec import model_path
from ragline.testing.embedder import EmbedderContract
from tests.integration.embeddings_server import (
    Behaviour,
    bag_of_words,
    embeddings_server,
    hf_token_counter,
)
from tests.integration.test_openai_embedder import openai_settings


class TestLocalEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, embedder: Embedder) -> Embedder:  # the session's model
        assert isinstance(embedder, LocalEmbedder)
        return embedder


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    """A server that lists its embeddings in reverse order, takes at most 256 tokens an
    input as MiniLM counts them, and sends vectors that are not unit-length."""
    behaviour = Behaviour(
        embed=bag_of_words(48),
        reverse=True,
        max_input_tokens=256,
        count_tokens=hf_token_counter(model_path(settings) / "tokenizer.json"),
    )
    with embeddings_server(behaviour) as (url, _):
        yield url


class TestOpenAIEmbedder(EmbedderContract):
    """In batches of 4, so that most calls take several requests."""

    @pytest.fixture
    def embedder(self, server: str) -> Embedder:
        embedder = get_embedder(
            openai_settings(server, embedding_dimension=48, embedding_batch_size=4)
        )
        assert isinstance(embedder, OpenAIEmbedder)
        return embedder
