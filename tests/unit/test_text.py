from __future__ import annotations

import pytest

from ragline.errors import ParseError
from ragline.ingest.text import decode, looks_binary, normalize, sha256_of


def test_normalize_collapses_spaces_and_blank_lines() -> None:
    raw = "  Title\u00a0 here \r\n\r\n\r\n\r\nBody\ttext  \x07\n"
    assert normalize(raw) == "Title here\n\nBody text"


def test_normalize_is_nfc() -> None:
    assert normalize("cafe\u0301") == "caf\u00e9"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii", "plain ascii"),
        ("µS/cm at 25 °C".encode(), "µS/cm at 25 °C"),
        (b"\xef\xbb\xbfwith BOM", "with BOM"),
        ("Windows quote \u2019s".encode("cp1252"), "Windows quote \u2019s"),
        ("utf-16 text".encode("utf-16"), "utf-16 text"),
    ],
)
def test_decode(data: bytes, expected: str) -> None:
    assert decode(data) == expected


def test_binary_is_refused() -> None:
    assert looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert looks_binary(bytes(range(1, 32)) * 10)
    assert not looks_binary(b"Ordinary text\twith tabs\nand lines")
    with pytest.raises(ParseError, match="binary"):
        decode(b"abc\x00def")


def test_hash_sees_boundaries() -> None:
    assert sha256_of(["ab", "c"]) != sha256_of(["a", "bc"])
    assert sha256_of(["ab", "c"]) == sha256_of(["ab", "c"])
