"""The embedding contract: what the pipeline and the search need from a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class TokenCounter(Protocol):
    """Counts and splits text in the tokens of one embedding model."""

    def count(self, text: str) -> int:
        """Tokens of ``text``, without special tokens, padding or truncation."""
        ...

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Cut ``text`` into consecutive pieces of at most ``max_tokens`` tokens."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors.

    ``max_tokens`` is the number of text tokens one input may hold before the model
    silently truncates it; chunkers must stay within it.
    """

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def tokenizer(self) -> TokenCounter: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, L2-normalised, in input order."""
        ...
