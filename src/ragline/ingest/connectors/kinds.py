"""The connector contract besides items and changes: what a kind of source is, and
what a connector is built with.

A kind is a connector module (or a package's ``kind`` module) exposing ``KIND``: its
configuration model (pydantic, unknown keys refused) and a function building the
``Source`` from a validated configuration::

    kind = KIND                                     # e.g. ragline.ingest.connectors.sql_table
    config = kind.validate({"url": "postgresql://db/app", "table": "articles", ...})
    source = kind.build(config, context)

Secrets never sit in a configuration: a field that holds one is named ``*_env`` and
holds the name of the environment variable to read it from, when the source runs
(``ragline.secrets``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import ConfigurationError, problems
from ragline.ingest.chunking import ChunkProfile
from ragline.ingest.connectors.base import Changes, Source
from ragline.reach import Allowance
from ragline.secrets import check_no_secrets

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Profiles:
    """The chunking profiles of a source: ``default`` for every item, and one per
    content category (a row's type, a stream's table) the connector reports.

    Sizes are in the embedding model's tokens; a passage never exceeds the model's
    window, so a larger ``max_tokens`` is capped by it.
    """

    default: ChunkProfile | None = None
    by_category: Mapping[str, ChunkProfile] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Profiles:
        """From ``{"default": {"max_tokens": 300}, "video": {"max_tokens": 600, ...}}``."""
        profiles: dict[str, ChunkProfile] = {}
        for name, values in spec.items():
            if not isinstance(values, Mapping):
                raise ConfigurationError(f"profile {name!r} must be an object of chunking settings")
            unknown = set(values) - {"max_tokens", "overlap_tokens", "min_tokens"}
            if unknown:
                raise ConfigurationError(
                    f"profile {name!r}: unknown settings {sorted(unknown)}; "
                    "use max_tokens, overlap_tokens, min_tokens"
                )
            try:
                numbers = {key: int(value) for key, value in values.items()}
            except (TypeError, ValueError) as e:
                raise ConfigurationError(f"profile {name!r}: settings must be integers") from e
            max_tokens = numbers.get("max_tokens", 200)
            overlap = numbers.get("overlap_tokens", min(30, max_tokens // 5))
            min_tokens = numbers.get("min_tokens", min(40, max_tokens // 4))
            if not 16 <= max_tokens <= 8192 or not 0 <= overlap < max_tokens:
                raise ConfigurationError(
                    f"profile {name!r}: need 16 <= max_tokens <= 8192 and "
                    "0 <= overlap_tokens < max_tokens"
                )
            if not 0 <= min_tokens <= max_tokens:
                raise ConfigurationError(f"profile {name!r}: need 0 <= min_tokens <= max_tokens")
            profiles[name] = ChunkProfile(
                f"source-{name}",
                max_tokens=max_tokens,
                overlap_tokens=overlap,
                min_tokens=min_tokens,
            )
        default = profiles.pop("default", None)
        return cls(default=default, by_category=profiles)

    def for_category(self, category: str | None) -> ChunkProfile | None:
        """The profile for items of ``category``: its own, else the source's default,
        else None (the profile of the item's document type)."""
        if category is not None and category in self.by_category:
            return self.by_category[category]
        return self.default


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a connector is built with besides its configuration."""

    name: str  # the source's name in the ledger: "<kind>:<configured name>"
    source_id: uuid.UUID
    tenant: str
    collection: str
    settings: Settings
    engine: Engine
    profiles: Profiles
    # Where the source may reach, as the operator allowed its tenant.
    allowance: Allowance = field(default_factory=Allowance)


@dataclass(frozen=True, slots=True)
class Kind(Generic[C]):
    name: str
    config: type[C]
    build: Callable[[C, SourceContext], Source]
    summary: str
    # Checks a posted or queued notification (an S3 event message...) and returns the
    # event records to queue a sync with; raises ConfigurationError when malformed.
    parse_notification: Callable[[C, dict[str, Any]], list[dict[str, Any]]] | None = None
    # Turns those event records into the changes a sync job applies.
    events: Callable[[Source, list[dict[str, Any]]], Changes] | None = None
    # Messages waiting in the source's queue or stream (``ragline status``).
    backlog: Callable[[C, SourceContext], int] | None = None
    # Whether list() can be scheduled at all (a stream has nothing to list).
    listable: bool = True

    def validate(self, config: Mapping[str, Any]) -> C:
        check_no_secrets(config)
        try:
            return self.config.model_validate(dict(config))
        except ValidationError as e:
            raise ConfigurationError(
                f"invalid {self.name} source configuration: {problems(e)}"
            ) from e
