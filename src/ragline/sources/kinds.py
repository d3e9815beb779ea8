"""The kinds of source a user can configure, and how each is built from its record.

A kind is a connector module exposing ``KIND``: its configuration model (pydantic,
unknown keys refused) and a function building the ``Source`` from a validated
configuration. Kinds load on first use, so a deployment without boto3 can still run
its SQL sources::

    kind = get_kind("sql")
    config = kind.validate({"url": "postgresql://db/app", "table": "articles", ...})
    source = kind.build(config, context)

Secrets never sit in a configuration: a field that holds one is named ``*_env`` and
holds the name of the environment variable to read it from, when the source runs.
"""

from __future__ import annotations

import importlib
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import ConfigurationError
from ragline.ingest.chunking import ChunkProfile

if TYPE_CHECKING:
    from ragline.ingest.sources.base import Changes, Source

C = TypeVar("C", bound=BaseModel)

# Connector modules by kind; each defines ``KIND``.
_MODULES = {
    "sql": "ragline.ingest.sources.sql_table",
    "confluence": "ragline.ingest.sources.confluence",
    "s3": "ragline.ingest.sources.s3",
    "stream": "ragline.ingest.sources.stream",
    "files": "ragline.ingest.sources.files",
}
KIND_NAMES = tuple(_MODULES)

# Keys that name a secret: "password", "access_token", "secret_access_key", "apikey"...
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|pwd|secret|token|api_?key|credentials?)($|_)", re.IGNORECASE
)


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
    # Runs consumers of a queue or stream until stopped (change-event streams).
    consume: Callable[[C, SourceContext, ConsumeOptions], None] | None = None
    # Messages waiting in the source's queue or stream (``ragline status``).
    backlog: Callable[[C, SourceContext], int] | None = None
    # Whether list() can be scheduled at all (a stream has nothing to list).
    listable: bool = True

    def validate(self, config: Mapping[str, Any]) -> C:
        check_no_secrets(config)
        try:
            return self.config.model_validate(dict(config))
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                for err in e.errors()
            )
            raise ConfigurationError(f"invalid {self.name} source configuration: {problems}") from e


@dataclass(frozen=True, slots=True)
class ConsumeOptions:
    consumers: int = 1
    # Stop after this many seconds without a message (None: run until stopped).
    idle_timeout: float | None = None
    stop: Callable[[], bool] = lambda: False


def get_kind(name: str) -> Kind[Any]:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise ConfigurationError(
            f"unknown source kind {name!r}; choose one of {', '.join(_MODULES)}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(
            f"the {name} source needs a package that is not installed ({e.name}); "
            f"install ragline with the matching extra"
        ) from e
    kind: Kind[Any] = module.KIND
    return kind


def check_no_secrets(config: Mapping[str, Any], path: str = "") -> None:
    """Refuse a configuration that holds a secret in clear: a key that names one
    (password, token...) must end in ``_env`` and name an environment variable, and
    a URL must not carry a password."""
    for key, value in config.items():
        where = f"{path}{key}"
        if isinstance(value, Mapping):
            check_no_secrets(value, f"{where}.")
            continue
        if _SECRET_KEY.search(key) and not key.endswith("_env") and value not in (None, ""):
            raise ConfigurationError(
                f"{where} looks like a secret; store it in an environment variable and "
                f"set {key}_env to that variable's name instead"
            )
        if isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                raise ConfigurationError(
                    f"{where} carries a password; put the whole URL in an environment "
                    f"variable and set {key}_env to its name"
                )


def secret(variable: str | None, what: str) -> str | None:
    """The value of the environment variable ``variable`` names (None when no variable
    is named); a named variable that is not set is an error."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise ConfigurationError(f"{what}: the environment variable {variable} is not set")
    return value
