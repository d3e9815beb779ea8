"""What every ``Embedder`` must do, as a pytest class to subclass::

    import pytest
    from ragline.embedding.base import Embedder
    from ragline.testing.embedder import EmbedderContract

    class TestMyEmbedder(EmbedderContract):
        @pytest.fixture
        def embedder(self) -> Embedder:
            return MyEmbedder(...)

Each test method runs against the fixture's embedder: it describes itself, keeps
rows in input order whatever the batch, returns unit-length float32 rows of its
dimension, takes an empty batch and an input far beyond its window, and its
tokenizer counts and splits consistently (the chunker relies on it).
"""

from __future__ import annotations

import numpy as np
import pytest

from ragline.embedding.base import Embedder, TokenCounter, Vectors

TEXTS = (
    "How do I calibrate the dissolved-oxygen sensor?",
    "The warranty covers manufacturing defects for two years.",
    "Réinitialisez l'enregistreur avant l'hiver. Ölwechsel alle 500 Stunden.",
    "E-4471: conductivity reading outside calibrated range",
    "battery",
    "Solar panels should face south in the northern hemisphere, tilted at the latitude "
    "of the site, and be kept free of snow, dust and bird droppings.",
)

PARAGRAPH = (
    "Before calibrating, rinse the sensing cap with clean water and let it equilibrate "
    "in water-saturated air for ten minutes. Enter the barometric pressure measured at "
    "the station; an error of 10 hPa causes an error of about 1 % in the saturation. "
    "Internationalisation, electroconductivity and thermoluminescence are long words. "
)


def cosine(a: Vectors, b: Vectors) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class EmbedderContract:
    """Subclass it and provide the ``embedder`` fixture."""

    # How close (cosine) the same text's vectors must be, alone and in a batch: models
    # pad a batch to its longest input, which moves the last digits.
    same_vector = 0.999

    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError("subclass EmbedderContract and provide an `embedder` fixture")

    def test_describes_itself(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert isinstance(embedder.name, str)
        assert embedder.name
        assert isinstance(embedder.dimension, int)
        assert embedder.dimension > 0
        assert isinstance(embedder.max_tokens, int)
        assert embedder.max_tokens > 0
        assert isinstance(embedder.tokenizer, TokenCounter)

    def test_rows_are_unit_float32_of_its_dimension(self, embedder: Embedder) -> None:
        vectors = embedder.embed(list(TEXTS))

        assert vectors.dtype == np.float32
        assert vectors.shape == (len(TEXTS), embedder.dimension)
        assert np.all(np.isfinite(vectors))
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    def test_a_batch_keeps_input_order(self, embedder: Embedder) -> None:
        batch = embedder.embed(list(TEXTS))
        backwards = embedder.embed(list(reversed(TEXTS)))

        for i, text in enumerate(TEXTS):
            alone = embedder.embed([text])[0]
            assert cosine(batch[i], alone) >= self.same_vector, text
            assert cosine(backwards[len(TEXTS) - 1 - i], alone) >= self.same_vector, text
        # Different texts get different vectors, or the order above would prove nothing.
        similarities = batch @ batch.T
        assert np.all(similarities[~np.eye(len(TEXTS), dtype=bool)] < self.same_vector)

    def test_the_same_text_twice_gets_the_same_vector(self, embedder: Embedder) -> None:
        vectors = embedder.embed([TEXTS[0], TEXTS[1], TEXTS[0]])
        assert cosine(vectors[0], vectors[2]) >= self.same_vector

    def test_an_empty_batch_is_empty(self, embedder: Embedder) -> None:
        vectors = embedder.embed([])

        assert vectors.shape == (0, embedder.dimension)
        assert vectors.dtype == np.float32

    def test_an_input_far_beyond_its_window_is_embedded(self, embedder: Embedder) -> None:
        paragraph_tokens = embedder.tokenizer.count(PARAGRAPH)
        long_text = PARAGRAPH * (4 * embedder.max_tokens // paragraph_tokens + 1)
        assert embedder.tokenizer.count(long_text) > 4 * embedder.max_tokens

        vectors = embedder.embed([TEXTS[0], long_text, TEXTS[1]])

        assert vectors.shape == (3, embedder.dimension)
        assert np.all(np.isfinite(vectors))
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
        assert cosine(vectors[0], embedder.embed([TEXTS[0]])[0]) >= self.same_vector
        assert cosine(vectors[2], embedder.embed([TEXTS[1]])[0]) >= self.same_vector

    @pytest.mark.parametrize("size", [7, 50, "max_tokens"])
    def test_tokenizer_splits_into_pieces_it_counts_within_size(
        self, embedder: Embedder, size: int | str
    ) -> None:
        tokenizer = embedder.tokenizer
        limit = embedder.max_tokens if size == "max_tokens" else int(size)
        text = " ".join([PARAGRAPH, *TEXTS] * 3)
        total = tokenizer.count(text)

        pieces = tokenizer.split(text, limit)

        assert all(0 < tokenizer.count(piece) <= limit for piece in pieces)
        # The pieces are the text, in order, blanks aside...
        assert "".join("".join(pieces).split()) == "".join(text.split())
        # ...in about as few pieces as the size allows (cut where words begin).
        fewest = -(-total // limit)
        assert fewest <= len(pieces) <= 2 * fewest + 1

    def test_tokenizer_counts_what_it_is_given(self, embedder: Embedder) -> None:
        tokenizer = embedder.tokenizer

        assert tokenizer.count("") == 0
        assert 0 < tokenizer.count(TEXTS[4]) <= 3
        one, two = tokenizer.count(PARAGRAPH), tokenizer.count(PARAGRAPH * 2)
        assert 2 * one - 2 <= two <= 2 * one + 2
        assert tokenizer.split(TEXTS[0], tokenizer.count(TEXTS[0])) == [TEXTS[0]]
