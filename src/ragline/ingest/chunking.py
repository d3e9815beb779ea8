"""Token-aware, header-aware chunking with a profile per document type.

Sizes are counted in the embedding model's own tokens. Every chunk's ``embed_text``
(title and section path, then the passage) fits the model's window, so nothing is
silently truncated. Text is cut at the coarsest separator that makes pieces fit
(paragraph, line, sentence, clause, word, then token); sections never share a chunk
unless one of them is below the profile's minimum, in which case it is merged into a
neighbour rather than indexed alone::

    chunker = Chunker(embedder.tokenizer, window=embedder.max_tokens)
    for chunk in chunker.split(document):
        ...
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from ragline.cancel import checkpoint
from ragline.domain import Block, Chunk, DocType, ParsedDocument
from ragline.embedding.base import TokenCounter
from ragline.ingest.text import sha256_text

_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")
# No token is shorter than one character, so text this many times the budget cannot
# fit and is cut before it is ever tokenized whole.
_CHARS_PER_TOKEN_CEILING = 24
_CONTEXT_MAX_TOKENS = 48


@dataclass(frozen=True, slots=True)
class ChunkProfile:
    """How one type of document is cut.

    ``max_tokens`` bounds the passage; ``overlap_tokens`` of the end of one chunk are
    repeated at the start of the next within a section; chunks under ``min_tokens``
    are merged into a neighbour.
    """

    name: str
    max_tokens: int = 200
    overlap_tokens: int = 30
    min_tokens: int = 40
    separators: tuple[str, ...] = _SEPARATORS

    def fingerprint(self) -> str:
        return (
            f"{self.name}:{self.max_tokens}:{self.overlap_tokens}:{self.min_tokens}:"
            f"{'|'.join(self.separators)!r}"
        )


PROFILES: dict[DocType, ChunkProfile] = {
    DocType.MARKDOWN: ChunkProfile("markdown", max_tokens=200, overlap_tokens=30),
    DocType.HTML: ChunkProfile("html", max_tokens=200, overlap_tokens=30),
    DocType.TEXT: ChunkProfile("text", max_tokens=220, overlap_tokens=40),
    DocType.PDF: ChunkProfile("pdf", max_tokens=220, overlap_tokens=40),
    DocType.RECORD: ChunkProfile("record", max_tokens=220, overlap_tokens=40),
}


@dataclass(slots=True)
class _Piece:
    text: str
    tokens: int
    page: int | None
    joiner: str  # put between this piece and the one before it


@dataclass(slots=True)
class _Draft:
    section: tuple[str, ...]
    pieces: list[_Piece] = field(default_factory=list)
    overlap: int = 0  # leading pieces repeated from the previous draft

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)

    @property
    def has_new_text(self) -> bool:
        return len(self.pieces) > self.overlap

    def text(self) -> str:
        return "".join((p.joiner if i else "") + p.text for i, p in enumerate(self.pieces)).strip()


class Chunker:
    """Cuts parsed documents into chunks that fit an embedding model's window."""

    def __init__(self, tokenizer: TokenCounter, *, window: int) -> None:
        self.tokenizer = tokenizer
        self.window = window

    def split(
        self, document: ParsedDocument, profile: ChunkProfile | None = None
    ) -> Iterator[Chunk]:
        profile = profile or PROFILES[document.doc_type]
        drafts = self._merge_small(self._drafts(document, profile), document.title, profile)
        ordinal = 0
        for draft in drafts:
            checkpoint()
            context = self._context(document.title, draft.section)
            for text in self._fit_window(context, draft.text()):
                embed_text = f"{context}\n\n{text}"
                yield Chunk(
                    ordinal=ordinal,
                    text=text,
                    context=context,
                    embed_text=embed_text,
                    section=draft.section,
                    token_count=self.tokenizer.count(embed_text),
                    sha256=sha256_text(embed_text),
                    page=draft.pieces[0].page,
                )
                ordinal += 1

    # -- cutting ---------------------------------------------------------------------

    def _budget(self, title: str, section: tuple[str, ...], profile: ChunkProfile) -> int:
        return max(16, min(profile.max_tokens, self.window - self._context_tokens(title, section)))

    def _context(self, title: str, section: tuple[str, ...]) -> str:
        context = " > ".join((title, *section)) if section else title
        if self.tokenizer.count(context) > _CONTEXT_MAX_TOKENS:
            context = self.tokenizer.split(context, _CONTEXT_MAX_TOKENS)[0]
        return context

    def _context_tokens(self, title: str, section: tuple[str, ...]) -> int:
        return self.tokenizer.count(self._context(title, section))

    def _drafts(self, document: ParsedDocument, profile: ChunkProfile) -> Iterator[_Draft]:
        for section, group in groupby(document.blocks, key=lambda b: b.section):
            budget = self._budget(document.title, section, profile)
            draft = _Draft(section)
            for piece in self._pieces(group, budget, profile):
                if draft.pieces and draft.tokens + piece.tokens > budget:
                    if draft.has_new_text:
                        yield draft
                    draft = self._continue(draft, profile)
                    while draft.pieces and draft.tokens + piece.tokens > budget:
                        draft.pieces.pop(0)
                        draft.overlap -= 1
                draft.pieces.append(piece)
            if draft.has_new_text:
                yield draft

    def _continue(self, previous: _Draft, profile: ChunkProfile) -> _Draft:
        """A new draft that starts with the tail of ``previous`` (the overlap)."""
        carried: list[_Piece] = []
        total = 0
        for piece in reversed(previous.pieces[1:]):
            if total + piece.tokens > profile.overlap_tokens:
                break
            carried.insert(0, piece)
            total += piece.tokens
        return _Draft(previous.section, pieces=carried, overlap=len(carried))

    def _pieces(
        self, blocks: Iterable[Block], budget: int, profile: ChunkProfile
    ) -> Iterator[_Piece]:
        for index, block in enumerate(blocks):
            joiner = "\n\n" if index else ""
            texts: Iterable[str]
            if block.kind == "table":
                texts = self._table_parts(block.text, budget)
            else:
                texts = self._cut(block.text, budget, profile.separators)
            for n, text in enumerate(texts):
                piece_joiner = joiner if n == 0 else ("\n" if block.kind == "table" else "")
                yield _Piece(text, self.tokenizer.count(text), block.page, piece_joiner)

    def _fits(self, text: str, budget: int) -> bool:
        return (
            len(text) <= budget * _CHARS_PER_TOKEN_CEILING and self.tokenizer.count(text) <= budget
        )

    def _cut(self, text: str, budget: int, separators: tuple[str, ...]) -> Iterator[str]:
        if self._fits(text, budget):
            yield text
            return
        for depth, separator in enumerate(separators):
            if separator not in text:
                continue
            parts = re.split(f"(?<={re.escape(separator)})", text)
            for part in parts:
                if part.strip():
                    yield from self._cut(part, budget, separators[depth + 1 :])
            return
        # One "word" longer than the budget (a hash, a base64 blob...): cut by tokens.
        for start in range(0, len(text), budget * _CHARS_PER_TOKEN_CEILING):
            window = text[start : start + budget * _CHARS_PER_TOKEN_CEILING]
            yield from self.tokenizer.split(window, budget)

    def _table_parts(self, table: str, budget: int) -> Iterator[str]:
        """A table whole if it fits; else runs of rows, each under the header row."""
        if self._fits(table, budget):
            yield table
            return
        header, *rows = table.split("\n")
        header_tokens = self.tokenizer.count(header)
        if not rows or header_tokens > budget // 2:
            yield from self._cut(table, budget, ("\n", *_SEPARATORS[2:]))
            return
        part: list[str] = [header]
        tokens = header_tokens
        for row in rows:
            row_tokens = self.tokenizer.count(row)
            if row_tokens + header_tokens > budget:
                if len(part) > 1:
                    yield "\n".join(part)
                yield from self._cut(row, budget, _SEPARATORS[2:])
                part, tokens = [header], header_tokens
                continue
            if tokens + row_tokens > budget:
                yield "\n".join(part)
                part, tokens = [header], header_tokens
            part.append(row)
            tokens += row_tokens
        if len(part) > 1:
            yield "\n".join(part)

    # -- merging and finishing -------------------------------------------------------

    def _merge_small(
        self, drafts: Iterable[_Draft], title: str, profile: ChunkProfile
    ) -> Iterator[_Draft]:
        previous: _Draft | None = None
        for draft in drafts:
            if previous is not None and min(previous.tokens, draft.tokens) < profile.min_tokens:
                merged = self._merged(previous, draft)
                if merged.tokens <= self._budget(title, merged.section, profile):
                    previous = merged
                    continue
            if previous is not None:
                yield previous
            previous = draft
        if previous is not None:
            yield previous

    @staticmethod
    def _merged(first: _Draft, second: _Draft) -> _Draft:
        tail = second.pieces[second.overlap :] if second.section == first.section else second.pieces
        if not tail:
            return first
        joined = _Piece(tail[0].text, tail[0].tokens, tail[0].page, "\n\n")
        pieces = [*first.pieces, joined, *tail[1:]]
        section = first.section if first.tokens >= second.tokens else second.section
        return _Draft(section, pieces=pieces, overlap=first.overlap)

    def _fit_window(self, context: str, text: str) -> list[str]:
        """``text`` as one passage, or several if context + text would overflow the window.

        Token counts of pieces add up exactly at whitespace and punctuation, but not
        always where the token fallback cut a word; the model must never truncate.
        """
        if self.tokenizer.count(f"{context}\n\n{text}") <= self.window:
            return [text]
        return self.tokenizer.split(text, self.window - self.tokenizer.count(context))
