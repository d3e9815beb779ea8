"""Answers without a language model: the retrieved sentences that best answer the
question, quoted with their citations.

    answer_text, used = extract(question, hits, embedder, max_sentences=3)

Each hit is cut into sentences; the question and the sentences are embedded with the
index's model and the closest sentences (above ``min_similarity``) are kept, in
the order of their documents' ranks, each followed by its ``[n]`` marker. Marker-like
text in a passage (``[7]``, ``［1］``) is quoted as a parenthesis, so the only markers
in the answer are the ones added here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ragline.answer.markers import neutralise
from ragline.domain import Hit
from ragline.embedding.base import Embedder

# A sentence ends at . ! or ? followed by space and a capital, digit or quote; the
# list and line structure of passages also separates sentences.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")
_MIN_WORDS = 4
_MIN_UNPUNCTUATED_WORDS = 12


def sentences(text: str) -> list[str]:
    """The sentences of a passage worth quoting alone: not the lead-in of a list (ending
    in a colon), nor a short line without a full stop (a heading)."""
    kept = []
    for part in _SENTENCE_END.split(text):
        part = part.strip(" -*•\t")
        words = len(part.split())
        if words < _MIN_WORDS or part.endswith(":"):
            continue
        if not part.endswith((".", "!", "?", '"', ")")) and words < _MIN_UNPUNCTUATED_WORDS:
            continue
        kept.append(part)
    return kept


def extract(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    *,
    max_sentences: int = 3,
    min_similarity: float = 0.3,
) -> tuple[str, list[int]]:
    """The answer text and the 1-based numbers of the hits it cites (sentences below
    ``min_similarity`` are never used; the text is empty when none is close enough)."""
    candidates = [
        (n, s) for n, hit in enumerate(hits, start=1) for s in sentences(neutralise(hit.text))
    ]
    if not candidates:
        return "", []
    vectors = embedder.embed([question] + [s for _, s in candidates])
    scores = vectors[1:] @ vectors[0]
    best = [int(i) for i in np.argsort(-scores)[:max_sentences] if scores[i] >= min_similarity]
    # Quoted in the order of the sources' ranks, and of the sentences within each.
    best.sort()
    parts = []
    cited: list[int] = []
    for i in best:
        n, sentence = candidates[i]
        if not sentence.endswith((".", "!", "?")):
            sentence += "."
        parts.append(f"{sentence} [{n}]")
        if n not in cited:
            cited.append(n)
    return " ".join(parts), cited
