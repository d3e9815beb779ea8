"""Token counts from a Hugging Face ``tokenizer.json``, with no model loaded::

    tokenizer = HFTokenCounter(Path(".../all-MiniLM-L6-v2/tokenizer.json"))
    tokenizer.count("how do I calibrate the oxygen sensor?")     # 9
    tokenizer.split(long_text, 254)                              # pieces of <= 254 tokens

The local embedder counts with its model's file; a server's embedder with the file
RAGLINE_EMBEDDING_TOKENIZER names (by default all-MiniLM-L6-v2's, an estimate).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer


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
        """Consecutive pieces of at most ``max_tokens`` tokens each, counted as
        ``count`` counts them. Pieces end where a word begins, unless one word is longer
        than a piece: a word cut in two may tokenise into more pieces than it had (the
        second half of "calibrating" is "ibrating", not "##ibrating")."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        offsets, words = encoding.offsets, encoding.word_ids
        total = len(offsets)
        pieces: list[str] = []
        start = 0
        while start < total:
            end = min(start + max_tokens, total)
            if end < total:
                cut = end
                while cut > start and words[cut] is not None and words[cut] == words[cut - 1]:
                    cut -= 1
                end = cut if cut > start else end
            piece = self._piece(text, offsets, start, end)
            # A piece may still count more once cut out (a byte-level BPE word loses its
            # leading space); give back tokens until it fits.
            while end - start > 1 and self.count(piece) > max_tokens:
                end -= 1
                piece = self._piece(text, offsets, start, end)
            if piece:
                pieces.append(piece)
            start = end
        return pieces

    @staticmethod
    def _piece(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> str:
        stop = offsets[end][0] if end < len(offsets) else len(text)
        return text[offsets[start][0] : stop].strip()
