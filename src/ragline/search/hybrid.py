"""Dense, lexical and hybrid search over the chunks, in one SQL statement each.

    searcher = Searcher.from_settings(get_settings())
    hits = searcher.search("how do I calibrate the oxygen probe?", mode="hybrid", k=5)

- dense: cosine distance on the HNSW index. When the filters leave few chunks, they
  are scanned exactly instead, so a selective filter never starves the result.
- lexical: PostgreSQL full text (English stemming), query terms OR-ed, ts_rank_cd.
- hybrid: weighted reciprocal rank fusion of both lists,
  score = w_dense / (k + rank_dense) + w_lexical / (k + rank_lexical).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import SearchMode, Settings
from ragline.db.engine import get_engine
from ragline.db.migrate import check_embedding_model
from ragline.domain import Filter, Hit
from ragline.errors import RetrievalError
from ragline.ingest.embedders import Embedder, get_embedder
from ragline.logs import ensure_logging
from ragline.search.filters import filter_sql

# Below this many chunks in the filtered scope, dense search scans them exactly.
EXACT_SCAN_LIMIT = 20_000

# The query's lexemes OR-ed together, each quoted the way tsquery syntax wants.
_QUERY_TERMS = """
    query AS (
        SELECT CASE WHEN count(*) = 0 THEN NULL ELSE
            string_agg(
                '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | '
            )::tsquery
        END AS tsq
        FROM unnest(tsvector_to_array(to_tsvector('english', :query))) AS lexeme
    )"""

_DENSE = """
    scope AS (
        SELECT count(*) AS n FROM (SELECT 1 FROM chunks c WHERE {where} LIMIT :exact_limit + 1) s
    ),
    dense AS (
        SELECT id, dist, row_number() OVER (ORDER BY dist, id) AS rank FROM (
            (SELECT c.id, c.embedding <=> :qvec AS dist FROM chunks c
             WHERE {where} AND (SELECT n FROM scope) <= :exact_limit
             ORDER BY (c.embedding <=> :qvec) + 0 LIMIT :depth)
            UNION ALL
            (SELECT c.id, c.embedding <=> :qvec AS dist FROM chunks c
             WHERE {where} AND (SELECT n FROM scope) > :exact_limit
             ORDER BY c.embedding <=> :qvec LIMIT :depth)
        ) candidates
    )"""

_LEXICAL = """
    lexical AS (
        SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
            SELECT c.id, ts_rank_cd(c.tsv, query.tsq) AS score FROM chunks c, query
            WHERE c.tsv @@ query.tsq AND {where}
            ORDER BY score DESC LIMIT :depth
        ) candidates
    )"""

_FUSED = {
    "dense": "SELECT id, 1 - dist AS score FROM dense",
    "lexical": "SELECT id, score FROM lexical",
    "hybrid": """
        SELECT coalesce(d.id, l.id) AS id,
               coalesce(:w_dense / (:rrf_k + d.rank), 0)
             + coalesce(:w_lexical / (:rrf_k + l.rank), 0) AS score
        FROM dense d FULL OUTER JOIN lexical l ON d.id = l.id""",
}

_RESULT = """
    SELECT c.id AS chunk_id, f.score, doc.doc_id, doc.title, c.section, c.text, c.source,
           c.collection, c.doc_type, c.page
    FROM fused f
    JOIN chunks c ON c.id = f.id
    JOIN documents doc ON doc.id = c.document_id
    ORDER BY f.score DESC, c.id
    LIMIT :k"""


def search_sql(mode: SearchMode, where: str) -> str:
    parts = []
    if mode in ("lexical", "hybrid"):
        parts += [_QUERY_TERMS, _LEXICAL.format(where=where)]
    if mode in ("dense", "hybrid"):
        parts.append(_DENSE.format(where=where))
    parts.append(f"fused AS ({_FUSED[mode]})")
    return "WITH " + ",".join(parts) + _RESULT


class Searcher:
    def __init__(
        self, engine: Engine, settings: Settings, embedder: Embedder | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._embedder = embedder
        self._model_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Searcher:
        ensure_logging(settings)
        return cls(get_engine(settings), settings)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings)
        return self._embedder

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        search_filter: Filter | None = None,
        tenant: str | None = None,
    ) -> list[Hit]:
        query = query.strip()
        if not query:
            raise RetrievalError("the query is empty")
        mode = mode or self.settings.search_mode
        if mode not in _FUSED:
            raise RetrievalError(f"unknown search mode {mode!r}: use dense, lexical or hybrid")
        k = k or self.settings.search_k
        where, params = filter_sql(search_filter or Filter(), tenant or self.settings.tenant)
        params |= {
            "query": query,
            "k": k,
            "depth": max(self.settings.candidate_depth, k),
            "exact_limit": EXACT_SCAN_LIMIT,
            "rrf_k": self.settings.rrf_k,
            "w_dense": self.settings.dense_weight,
            "w_lexical": self.settings.lexical_weight,
        }
        if mode in ("dense", "hybrid"):
            params["qvec"] = self._query_vector(query)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(search_sql(mode, where)), params).mappings().all()
        return [_hit(row) for row in rows]

    def _query_vector(self, query: str) -> Any:
        embedder = self.embedder
        if not self._model_checked:
            with self.engine.connect() as conn:
                check_embedding_model(conn, embedder.name, embedder.dimension)
            self._model_checked = True
        return embedder.embed([query])[0]


def _hit(row: Any) -> Hit:
    return Hit(
        doc_id=row["doc_id"],
        chunk_id=row["chunk_id"],
        score=float(row["score"]),
        title=row["title"] or "",
        section=row["section"],
        text=row["text"],
        source=row["source"],
        collection=row["collection"],
        doc_type=row["doc_type"] or "",
        page=row["page"],
    )
