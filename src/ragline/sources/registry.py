"""The kinds of source a user can configure, and the consumers of those that push
their changes. Connectors load on first use, so a deployment without boto3 can
still run its SQL sources::

    kind = get_kind("sql")
    consume = get_consumer("stream")        # None for a kind that is not consumed
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ragline.errors import ConfigurationError
from ragline.ingest.connectors.kinds import Kind, SourceContext

# The module defining each kind's ``KIND``.
_KINDS = {
    "sql": "ragline.ingest.connectors.sql_table",
    "confluence": "ragline.ingest.connectors.confluence",
    "s3": "ragline.ingest.connectors.s3.kind",
    "stream": "ragline.ingest.connectors.stream.kind",
    "files": "ragline.ingest.connectors.files",
}
KIND_NAMES = tuple(_KINDS)

# The module defining ``consume`` for each kind whose changes arrive on a queue.
_CONSUMERS = {
    "stream": "ragline.sources.consumers.stream",
    "s3": "ragline.sources.consumers.s3",
}


@dataclass(frozen=True, slots=True)
class ConsumeOptions:
    consumers: int = 1
    # Stop after this many seconds without a message (None: run until stopped).
    idle_timeout: float | None = None
    stop: Callable[[], bool] = lambda: False


Consume = Callable[[Any, SourceContext, ConsumeOptions], None]


def get_kind(name: str) -> Kind[Any]:
    module = _load(_KINDS, name, "source kind")
    kind: Kind[Any] = module.KIND
    return kind


def get_consumer(name: str) -> Consume | None:
    """What consumes the queue or stream of a ``name`` source, or None when its kind
    has nothing to consume."""
    if name not in _CONSUMERS:
        get_kind(name)  # an unknown kind is an error, not "nothing to consume"
        return None
    consume: Consume = _load(_CONSUMERS, name, "consumer").consume
    return consume


def _load(modules: dict[str, str], name: str, what: str) -> Any:
    module_name = modules.get(name)
    if module_name is None:
        raise ConfigurationError(f"unknown {what} {name!r}; choose one of {', '.join(modules)}")
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(
            f"the {name} source needs a package that is not installed ({e.name}); "
            f"install ragline with the matching extra"
        ) from e
