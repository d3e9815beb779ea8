"""Text cleaning shared by the parsers: decoding, binary detection, normalisation."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from ragline.errors import ParseError

_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Control characters other than tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SNIFF_BYTES = 8192


def looks_binary(data: bytes) -> bool:
    """True for content that is not text: NUL bytes, or mostly control characters."""
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        return True
    if not head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(head) > 0.10


def decode(data: bytes) -> str:
    """Bytes of a text file to str: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if looks_binary(data):
        raise ParseError("binary content, not text (NUL or control bytes in the first 8 KiB)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as e:
        raise ParseError(f"not valid UTF-8 or Windows-1252 text: {e}") from e


def normalize(text: str) -> str:
    """Canonical form of a text: NFC, one space between words, at most one blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def sha256_of(parts: Iterable[str]) -> str:
    """Digest of a sequence of strings, with separators so that boundaries count."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TERMINAL = (".", ",", ";", ":", "!", "?")


def looks_like_heading(line: str) -> bool:
    """A short line that starts like a title and does not end like a sentence."""
    line = line.strip()
    words = line.split()
    return (
        0 < len(line) <= 80
        and len(words) <= 12
        and not line.endswith(_TERMINAL)
        and (line[0].isupper() or line[0].isdigit())
        and any(ch.isalpha() for ch in line)
    )
