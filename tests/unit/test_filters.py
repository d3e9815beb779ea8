from __future__ import annotations

import datetime as dt

import pytest

from ragline.domain import Filter
from ragline.errors import RetrievalError
from ragline.search.filters import filter_sql, parse_filters


def test_parse_known_keys_and_aliases() -> None:
    parsed = parse_filters(
        [
            "type=pdf",
            "collection=docs",
            "document=a/b.md",
            "source=files:/x",
            "date_from=2025-01-02",
        ]
    )
    assert parsed == Filter(
        collection="docs",
        source="files:/x",
        doc_type="pdf",
        doc_id="a/b.md",
        date_from=dt.date(2025, 1, 2),
    )


def test_exact_date_sets_both_bounds() -> None:
    parsed = parse_filters(["date=2025-03-14"])
    assert parsed.date_from == parsed.date_to == dt.date(2025, 3, 14)


def test_unknown_keys_filter_metadata() -> None:
    assert parse_filters(["team=ops", "version=4.2"]).metadata == {"team": "ops", "version": "4.2"}


@pytest.mark.parametrize("bad", ["type", "=pdf", "date=14/03/2025"])
def test_bad_filters_say_what_is_expected(bad: str) -> None:
    with pytest.raises(RetrievalError):
        parse_filters([bad])


def test_tenant_is_always_in_the_sql() -> None:
    where, params = filter_sql(Filter(doc_type="pdf"), "acme")
    assert where.startswith("c.tenant = :f_tenant")
    assert params == {"f_tenant": "acme", "f_doc_type": "pdf"}
