"""Building a configured source's connector from its record, within what the operator
allows its tenant to reach.

kind, config, context = build_context(record, settings, engine)
kind, config, source = build_source(record, settings, engine)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.ingest.connectors.base import Source
from ragline.ingest.connectors.kinds import Kind, Profiles, SourceContext
from ragline.sources.registry import get_kind
from ragline.sources.store import SourceRecord
from ragline.tenants import get_policy


def build_context(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, SourceContext]:
    """The kind, validated configuration and build context of ``record``."""
    kind = get_kind(record.kind)
    config = kind.validate(record.config)
    with engine.connect() as conn:
        allowance = get_policy(conn, record.tenant).allowance
    context = SourceContext(
        name=record.ledger_name,
        source_id=record.id,
        tenant=record.tenant,
        collection=record.collection,
        settings=settings,
        engine=engine,
        profiles=Profiles.parse(record.profiles),
        allowance=allowance,
    )
    return kind, config, context


def build_source(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, Source]:
    """The kind, validated configuration and connector of ``record``."""
    kind, config, context = build_context(record, settings, engine)
    return kind, config, kind.build(config, context)
