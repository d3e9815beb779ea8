"""Citation markers: the only ``[n]`` in an answer are the ones ragline assigns.

    neutralise("as shown in [7] and ［1］")   # -> "as shown in (7) and (1)"
    normalise("Rinse the cap【2】.")          # -> "Rinse the cap [2]."
    MARKER.findall("Rinse [1] and dry [2].")  # -> ["1", "2"]

Passage text (in a prompt, or quoted by the extractive answerer) goes through
``neutralise``: anything that looks like a citation marker (square, fullwidth,
lenticular or tortoise-shell brackets around numbers, lists or ranges of them,
footnote carets, invisible characters inside) becomes a parenthesis, so a document
cannot plant a citation. A model's text goes through ``normalise``: look-alike
markers become plain ``[n]`` markers, which are then checked like any other.
"""

from __future__ import annotations

import re

# Square brackets and their look-alikes (fullwidth, lenticular, tortoise-shell, white).
OPENING = "[\uff3b\u3010\u3014\u3016\u3018\u301a\u27e6\u2045\ufe5d"
CLOSING = "]\uff3d\u3011\u3015\u3017\u3019\u301b\u27e7\u2046\ufe5e"
_OPEN = re.escape(OPENING)
_CLOSE = re.escape(CLOSING)
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_GAP = f"[\\s{_INVISIBLE}]*"
_SEPARATOR = f"{_GAP}[,\uff0c;\\-\u2010\u2011\u2012\u2013\u2014~]{_GAP}"

# Anything a reader (or a checker) could take for a citation marker.
MARKER_LIKE = re.compile(
    f"[{_OPEN}]{_GAP}\\^?{_GAP}(?P<numbers>\\d+(?:{_SEPARATOR}\\d+)*){_GAP}[{_CLOSE}]"
)
# The markers ragline writes and checks: ASCII brackets around 1 to 3 ASCII digits.
MARKER = re.compile(r"\[([0-9]{1,3})\]")

_NUMBER = re.compile(r"\d+")
_RANGE = re.compile(f"(\\d+){_GAP}[\\-\u2010\u2011\u2012\u2013\u2014~]{_GAP}(\\d+)")
_MAX_RANGE = 20


def neutralise(text: str) -> str:
    """``text`` with every marker-like sequence turned into a parenthesis."""

    def soften(match: re.Match[str]) -> str:
        return "(" + ",".join(_NUMBER.findall(match.group("numbers"))) + ")"

    return MARKER_LIKE.sub(soften, text)


def normalise(text: str) -> str:
    """``text`` with look-alike markers (``［1］``, ``【1, 2】``, ``[1-3]``) written as
    plain ``[n]`` markers; numbers above 999 are left alone (a year, not a source)."""

    def plain(match: re.Match[str]) -> str:
        numbers = match.group("numbers")
        found = [int(n) for n in _NUMBER.findall(numbers)]
        if any(n > 999 for n in found):
            return match.group(0)
        expanded: list[int] = []
        for part in re.split(f"{_GAP}[,\uff0c;]{_GAP}", numbers):
            span = _RANGE.fullmatch(part)
            if span and 0 < int(span.group(2)) - int(span.group(1)) < _MAX_RANGE:
                expanded.extend(range(int(span.group(1)), int(span.group(2)) + 1))
            else:
                expanded.extend(int(n) for n in _NUMBER.findall(part))
        return "".join(f"[{n}]" for n in expanded)

    return MARKER_LIKE.sub(plain, text)


def strip_markers(text: str) -> str:
    """``text`` without any marker, look-alikes included."""
    return MARKER_LIKE.sub("", text)
