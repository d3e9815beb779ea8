"""Checks of a JSON request body before FastAPI parses it: nesting depth, numbers that
are not finite, and text that is not valid Unicode.

    problem = refusal(body)           # None: let FastAPI parse and validate it
    if problem is not None:
        ...                           # answer 422 with ``problem``

Python's parser accepts ``NaN``, ``Infinity``, ``1e400`` (which becomes infinity) and
lone UTF-16 surrogates (``"\\ud800"``), none of which can be stored, compared or sent
back as JSON; and it recurses once per level, so a body nested thousands deep fails
with a ``RecursionError``. The depth is measured without parsing, in passes over the
bytes that run at C speed, so the check costs little even on the largest body allowed.
A body that is not JSON at all is left to the parser, which says where it is wrong.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Filters and metadata need a handful of levels; no request of the API needs more.
MAX_DEPTH = 64

# A JSON string, escapes included (possessive: no backtracking over long strings).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# Every bracket becomes one kind of pair; everything else goes.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class _Refused(ValueError):
    pass


def refusal(body: bytes) -> str | None:
    """Why ``body`` must be refused before it is parsed, or None."""
    if _too_deep(body):
        return f"the JSON body is nested more than {MAX_DEPTH} levels deep; send a flatter document"
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_finite)
    except _Refused as e:
        return str(e)
    except (ValueError, RecursionError):
        return None  # not JSON (or not UTF-8): FastAPI's parser explains it
    return _invalid_text(value)


def _too_deep(body: bytes) -> bool:
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    # Each pass removes the innermost level of every group.
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False  # unbalanced: not JSON, which the parser reports
        brackets = shorter
    return bool(brackets)


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number; send a finite number or null")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(
            f"the number {text[:40]} is too large to represent; send a number within ±1.7e308"
        )
    return value


def _invalid_text(value: Any) -> str | None:
    """Why a string (or key) of the parsed ``value`` is not valid Unicode, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                return (
                    f"a string holds an unpaired UTF-16 surrogate ({e.object[e.start]!a}); "
                    "send valid Unicode text"
                )
    return None
