"""An upload's ``metadata``: a small JSON object, bounded in size and depth before and
after it is parsed, so that no request can make the server recurse or hold much.

    metadata = parse_metadata('{"team": "ops", "tags": ["a", "b"]}')
    check_metadata({"team": "ops"})          # for callers that pass a dict
"""

from __future__ import annotations

import json
from typing import Any

from ragline.errors import InvalidInput

MAX_METADATA_BYTES = 32 * 1024
MAX_METADATA_DEPTH = 16


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """The JSON object ``raw`` (``{}`` when empty). ``InvalidInput`` when it is not
    JSON, not an object, over ``MAX_METADATA_BYTES`` or nested deeper than
    ``MAX_METADATA_DEPTH``."""
    if not raw:
        return {}
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is {size:,} bytes, over the limit of {MAX_METADATA_BYTES:,}: "
            "keep it to a few fields (store bigger data in the document itself)"
        )
    try:
        value = json.loads(raw)
    except RecursionError as e:
        raise _too_deep() from e
    except ValueError as e:
        raise InvalidInput(f"metadata is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidInput('metadata must be a JSON object, e.g. {"team": "ops"}')
    check_metadata(value)
    return value


def check_metadata(value: dict[str, Any]) -> None:
    """Refuse metadata nested deeper than ``MAX_METADATA_DEPTH`` (walked without
    recursion, so any depth is refused cleanly)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple) and depth > MAX_METADATA_DEPTH:
            raise _too_deep()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels: flatten it "
        '(e.g. {"team": "ops", "site": "north"})'
    )
