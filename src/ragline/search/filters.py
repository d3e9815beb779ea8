"""Search filters: parsed from ``key=value`` pairs, rendered as SQL on ``chunks c``.

where, params = filter_sql(parse_filters(["type=pdf", "date_from=2025-01-01"]), "t1")
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from ragline.domain import Filter
from ragline.errors import RetrievalError

_ALIASES = {
    "collection": "collection",
    "source": "source",
    "type": "doc_type",
    "doc_type": "doc_type",
    "document": "doc_id",
    "doc_id": "doc_id",
    "document_id": "doc_id",
    "date_from": "date_from",
    "date_to": "date_to",
    "date": "date",
}


def parse_filters(pairs: Iterable[str]) -> Filter:
    """``["type=pdf", "team=ops"]`` -> Filter. Unknown keys match document metadata."""
    fields: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise RetrievalError(f"filter {pair!r} is not key=value (e.g. type=pdf)")
        field = _ALIASES.get(key.lower())
        if field is None:
            metadata[key] = value
        elif field in ("date_from", "date_to", "date"):
            day = _date(key, value)
            if field == "date":
                fields["date_from"] = fields["date_to"] = day
            else:
                fields[field] = day
        else:
            fields[field] = value
    return Filter(metadata=metadata, **fields)


def _date(key: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as e:
        raise RetrievalError(f"filter {key}={value!r}: dates are YYYY-MM-DD") from e


def filter_sql(search_filter: Filter, tenant: str) -> tuple[str, dict[str, Any]]:
    """A WHERE condition on ``chunks c`` (tenant always first) and its parameters."""
    clauses = ["c.tenant = :f_tenant"]
    params: dict[str, Any] = {"f_tenant": tenant}
    for column in ("collection", "source", "doc_type"):
        value = getattr(search_filter, column)
        if value is not None:
            clauses.append(f"c.{column} = :f_{column}")
            params[f"f_{column}"] = value
    if search_filter.doc_id is not None:
        clauses.append(
            "c.document_id IN (SELECT d.id FROM documents d WHERE d.tenant = :f_tenant "
            "AND d.doc_id = :f_doc_id)"
        )
        params["f_doc_id"] = search_filter.doc_id
    if search_filter.date_from is not None:
        clauses.append("c.doc_date >= :f_date_from")
        params["f_date_from"] = search_filter.date_from
    if search_filter.date_to is not None:
        clauses.append("c.doc_date <= :f_date_to")
        params["f_date_to"] = search_filter.date_to
    if search_filter.metadata:
        clauses.append(
            "c.document_id IN (SELECT d.id FROM documents d WHERE d.tenant = :f_tenant "
            "AND d.metadata @> CAST(:f_metadata AS jsonb))"
        )
        params["f_metadata"] = json.dumps(search_filter.metadata)
    return " AND ".join(clauses), params


def scope_sql(search_filter: Filter, alias: str) -> str:
    """The condition delimiting a search's BM25 statistics on table ``alias``: the
    tenant, and the collection when the search is restricted to one."""
    condition = f"{alias}.tenant = :f_tenant"
    if search_filter.collection is not None:
        condition += f" AND {alias}.collection = :f_collection"
    return condition


def has_row_filters(search_filter: Filter) -> bool:
    """Whether the filter restricts more than the tenant and collection."""
    return any(
        (
            search_filter.source,
            search_filter.doc_type,
            search_filter.doc_id,
            search_filter.date_from,
            search_filter.date_to,
            search_filter.metadata,
        )
    )
