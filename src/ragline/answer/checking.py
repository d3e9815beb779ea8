"""A model's text checked sentence by sentence, as it arrives: a sentence is given
out only once it is complete and has passed the checks, so what is streamed is what
the final answer says.

    checker = SentenceChecker(hits, embedder, min_similarity=0.25)
    for delta in stream:
        emit(checker.feed(delta))    # "" until a sentence is complete
    emit(checker.finish())
    checker.text, checker.cited, checker.removed, checker.dropped

A sentence keeps the markers that point at a passage which supports it: the clause
the marker closes (the sentence up to it, when the clause is only a few words),
without markers, and the passage are embedded, and their cosine similarity must
reach ``min_similarity``. A sentence whose last clause follows its last marker is
cited by none. Other markers are removed and counted
(``removed``). A sentence left without a marker is dropped and counted
(``dropped``): every sentence of a generated answer cites a passage that supports
it. Look-alike markers (``［1］``) are read as markers and checked the same way. A
line ending in a colon (the lead-in of a list) belongs to the sentence after it,
and numbering without words ("1.") does not end a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ragline.answer.markers import CLOSING, MARKER, MARKER_LIKE, OPENING, normalise
from ragline.domain import Hit
from ragline.embedding.base import Embedder

_GAP = re.compile(r"\s+(?=\S)")
_TRAILING_MARKERS = re.compile(f"(?:\\s*(?:{MARKER_LIKE.pattern}))+\\s*$")
_ENDS_SENTENCE = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)]*$")
_OPENS_MARKER = re.compile(f"^(?:{MARKER_LIKE.pattern})")
_CLOSED = re.compile(f"[{re.escape(CLOSING)}]")
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_CLAUSE_WORDS = 3  # words that make a clause worth citing
_LONGEST_MARKER = 24
_TAIL = 300


def _boundary(buffer: str, start: int) -> tuple[int, int] | int:
    """(end of the first complete sentence, start of the next) in ``buffer``, looking
    at its gaps from ``start``; while none is complete, where to look again from."""
    resume = start
    for gap in _GAP.finditer(buffer, start):
        after = buffer[gap.end() :]
        if _OPENS_MARKER.match(after):
            resume = gap.end()
            continue  # the marker closes the sentence before it
        if after[0] in OPENING and len(after) < _LONGEST_MARKER and not _CLOSED.search(after):
            return gap.start()  # perhaps a marker still arriving: wait for more
        before = buffer[: gap.start()]
        if not _LETTER.search(before):
            resume = gap.end()
            continue  # numbering, or markers alone, do not make a sentence
        text = _TRAILING_MARKERS.sub("", before[-_TAIL:])
        if "\n" in gap.group() and not text.endswith(":"):
            return gap.start(), gap.end()
        if _ENDS_SENTENCE.search(text) and not after[0].islower():
            return gap.start(), gap.end()
        resume = gap.end()
    return resume


def _separator(gaps: Sequence[str]) -> str:
    """The strongest of the gaps between two kept sentences, tidied."""
    if any(g.count("\n") > 1 for g in gaps):
        return "\n\n"
    if any("\n" in g for g in gaps):
        return "\n"
    return " "


class SentenceChecker:
    def __init__(self, hits: Sequence[Hit], embedder: Embedder, *, min_similarity: float):
        self.hits = hits
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.raw = ""  # everything fed, as the model wrote it
        self.text = ""  # everything given out: the checked answer so far
        self.cited: list[int] = []
        self.removed = 0
        self.dropped = 0
        self._buffer = ""
        self._scanned = 0
        self._gaps: list[str] = []
        self._passages: dict[int, np.ndarray] = {}

    def feed(self, delta: str) -> str:
        """The checked text of the sentences ``delta`` completes ("" when none)."""
        self.raw += delta
        self._buffer += delta
        out = []
        while True:
            cut = _boundary(self._buffer, self._scanned)
            if isinstance(cut, int):
                self._scanned = cut
                break
            end, start = cut
            out.append(self._sentence(self._buffer[:end]))
            self._gaps.append(self._buffer[end:start])
            self._buffer = self._buffer[start:]
            self._scanned = 0
        return "".join(out)

    def finish(self) -> str:
        """The checked text of what is left (the last sentence)."""
        rest, self._buffer = self._buffer, ""
        return self._sentence(rest)

    def _sentence(self, raw: str) -> str:
        sentence = normalise(raw.strip())
        if not sentence:
            return ""
        markers = list(MARKER.finditer(sentence))
        tail = sentence[markers[-1].end() :] if markers else sentence
        if len(_WORD.findall(tail)) >= _CLAUSE_WORDS:
            markers = []  # a clause after the last marker is cited by none
        kept: list[int] = []
        for marker in markers:
            n = int(marker.group(1))
            if n not in kept and n in self._supported(_claim(sentence, marker.start()), n):
                kept.append(n)
        self.removed += sum(1 for m in MARKER.finditer(sentence)) - len(kept)
        if not kept:
            self.dropped += 1
            return ""
        remaining = list(kept)

        def keep(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if n in remaining:
                remaining.remove(n)
                return match.group(0)
            return ""

        cleaned = MARKER.sub(keep, sentence)
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
        piece = (_separator(self._gaps) if self.text else "") + cleaned
        self._gaps = []
        self.text += piece
        self.cited.extend(n for n in kept if n not in self.cited)
        return piece

    def _supported(self, claim: str, n: int) -> set[int]:
        """{n} when passage ``n`` is close enough to ``claim``, else nothing."""
        if not 1 <= n <= len(self.hits) or not _LETTER.search(claim):
            return set()
        if n not in self._passages:
            vectors = self.embedder.embed([claim, self.hits[n - 1].text])
            self._passages[n] = vectors[1]
            claimed = vectors[0]
        else:
            claimed = self.embedder.embed([claim])[0]
        return {n} if float(claimed @ self._passages[n]) >= self.min_similarity else set()


def _claim(sentence: str, position: int) -> str:
    """What the marker at ``position`` cites: the clause since the marker before it,
    or, when that is only a few words, the sentence up to it; without markers."""
    before = sentence[:position]
    previous = list(MARKER.finditer(before))
    clause = before[previous[-1].end() :] if previous else before
    if len(_WORD.findall(clause)) < _CLAUSE_WORDS:
        clause = before
    return " ".join(MARKER.sub(" ", clause).split()).strip(" .!?,;:")
