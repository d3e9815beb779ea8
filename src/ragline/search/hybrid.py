"""Dense, lexical and hybrid search over the chunks, in one SQL statement each.

    searcher = Searcher.from_settings(get_settings())
    hits = searcher.search("how do I calibrate the oxygen probe?", mode="hybrid", k=5)

- dense: cosine distance on the HNSW index. When the filters leave few chunks, or a
  small share of them, those are ranked exactly instead, so that a selective filter
  does not starve the result (pgvector's HNSW filters after searching).
- lexical: Okapi BM25 (k1, b from settings) computed in SQL from per-chunk postings
  of PostgreSQL's English text search lexemes (stemmed, stop words removed).
- hybrid: weighted reciprocal rank fusion of both lists,
  score = w_dense / (k + rank_dense) + w_lexical / (k + rank_lexical).

A ``Reranker``, when configured, reorders the top ``rerank_depth`` hits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import SearchMode, Settings
from ragline.db.engine import get_engine
from ragline.db.migrate import check_embedding_model
from ragline.domain import Filter, Hit
from ragline.errors import RetrievalError
from ragline.ingest.embedders import Embedder, Vectors, get_embedder
from ragline.logs import ensure_logging
from ragline.search.filters import filter_sql, scope_sql
from ragline.search.rerank import Reranker, get_reranker

# Dense search ranks the filtered chunks exactly when there are at most EXACT_SCAN_LIMIT
# of them, or at most EXACT_SCAN_CAP that are under EXACT_SCAN_SHARE of all chunks.
EXACT_SCAN_LIMIT = 20_000
EXACT_SCAN_CAP = 100_000
EXACT_SCAN_SHARE = 0.10

# Okapi BM25 over the postings of the searched scope (tenant, and collection when the
# search is restricted to one): N, average length and document frequencies are those
# of that scope. Other filters restrict the candidates, not the statistics.
#   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
#   score(c) = sum_t idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))
# with tf and len counting a term in the context (title, section) w_context times.
_LEXICAL = """
    terms AS (
        SELECT DISTINCT lexeme AS term
        FROM unnest(tsvector_to_array(to_tsvector('english', :query))) AS lexeme
    ),
    bm25_scope AS (
        SELECT count(*)::float8 AS n,
               greatest(avg(s.len_text + :w_context * s.len_context), 1e-9)::float8 AS avg_len
        FROM chunks s WHERE {scope_chunks}
    ),
    matches AS (
        SELECT p.term, p.chunk_id, p.tf_text + :w_context * p.tf_context AS tf
        FROM postings p JOIN terms ON terms.term = p.term
        WHERE {scope_postings}
    ),
    df AS (SELECT term, count(*)::float8 AS df FROM matches GROUP BY term),
    lexical AS (
        SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
            SELECT c.id, sum(
                ln(1 + (bm25_scope.n - df.df + 0.5) / (df.df + 0.5)) * m.tf * (:k1 + 1)
                / (m.tf + :k1 * (1 - :b + :b
                    * (c.len_text + :w_context * c.len_context) / bm25_scope.avg_len))
            ) AS score
            FROM matches m
            JOIN df ON df.term = m.term
            JOIN chunks c ON c.id = m.chunk_id
            CROSS JOIN bm25_scope
            WHERE {where}
            GROUP BY c.id
            ORDER BY score DESC LIMIT :depth
        ) candidates
    )"""

# Dense candidates come from the HNSW index, which filters after it searches: with a
# selective filter most of its ef_search candidates are thrown away. So the chunks in
# the filtered scope are ranked exactly when there are few of them, or when they are
# a small share of the table (up to a cap, past which the index is used anyway).
_DENSE = """
    dense_scope AS (
        SELECT count(*) AS n FROM (SELECT 1 FROM chunks c WHERE {where} LIMIT :exact_cap + 1) s
    ),
    dense_exact AS (
        SELECT s.n <= :exact_limit
            OR (s.n <= :exact_cap AND s.n < :exact_share * greatest(t.reltuples, 1)) AS yes
        FROM dense_scope s, pg_class t WHERE t.oid = 'chunks'::regclass
    ),
    dense AS (
        SELECT id, dist, row_number() OVER (ORDER BY dist, id) AS rank FROM (
            (SELECT c.id, c.embedding <=> :qvec AS dist FROM chunks c
             WHERE {where} AND (SELECT yes FROM dense_exact)
             ORDER BY (c.embedding <=> :qvec) + 0 LIMIT :depth)
            UNION ALL
            (SELECT c.id, c.embedding <=> :qvec AS dist FROM chunks c
             WHERE {where} AND NOT (SELECT yes FROM dense_exact)
             ORDER BY c.embedding <=> :qvec LIMIT :depth)
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


def search_sql(mode: SearchMode, where: str, scope: Callable[[str], str]) -> str:
    """The statement for ``mode``; ``where`` filters ``chunks c``, ``scope(alias)`` is
    the condition that delimits the BM25 statistics on a table with that alias."""
    parts = []
    if mode in ("lexical", "hybrid"):
        parts.append(
            _LEXICAL.format(where=where, scope_chunks=scope("s"), scope_postings=scope("p"))
        )
    if mode in ("dense", "hybrid"):
        parts.append(_DENSE.format(where=where))
    parts.append(f"fused AS ({_FUSED[mode]})")
    return "WITH " + ",".join(parts) + _RESULT


class Searcher:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.reranker = reranker
        self._embedder = embedder
        self._model_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Searcher:
        ensure_logging(settings)
        return cls(get_engine(settings), settings, reranker=get_reranker(settings))

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
        query_vector: Vectors | None = None,
    ) -> list[Hit]:
        """Hits for ``query``, best first. ``query_vector`` skips embedding the query
        when the caller already has it (a batch of queries embedded at once)."""
        query = query.strip()
        if not query:
            raise RetrievalError("the query is empty")
        mode = mode or self.settings.search_mode
        if mode not in _FUSED:
            raise RetrievalError(f"unknown search mode {mode!r}: use dense, lexical or hybrid")
        wanted = k or self.settings.search_k
        k = max(wanted, self.settings.rerank_depth) if self.reranker is not None else wanted
        search_filter = search_filter or Filter()
        where, params = filter_sql(search_filter, tenant or self.settings.tenant)
        params |= {
            "query": query,
            "k": k,
            "depth": max(self.settings.candidate_depth, k),
            "exact_limit": EXACT_SCAN_LIMIT,
            "exact_cap": EXACT_SCAN_CAP,
            "exact_share": EXACT_SCAN_SHARE,
            "rrf_k": self.settings.rrf_k,
            "w_dense": self.settings.dense_weight,
            "w_lexical": self.settings.lexical_weight,
            "k1": self.settings.bm25_k1,
            "b": self.settings.bm25_b,
            "w_context": self.settings.bm25_context_weight,
        }
        if mode in ("dense", "hybrid"):
            params["qvec"] = (
                query_vector if query_vector is not None else self.embed_queries([query])[0]
            )
        with self.engine.connect() as conn:
            if mode != "lexical" and params["depth"] > self.settings.hnsw_ef_search:
                # An HNSW scan returns at most ef_search rows.
                conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {int(params['depth'])}"))
            sql = search_sql(mode, where, partial(scope_sql, search_filter))
            rows = conn.execute(sa.text(sql), params).mappings().all()
        hits = [_hit(row) for row in rows]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits)
        return hits[:wanted]

    def embed_queries(self, queries: Sequence[str]) -> Vectors:
        """One vector per query, from the model the index was built with (checked once)."""
        embedder = self.embedder
        if not self._model_checked:
            with self.engine.connect() as conn:
                check_embedding_model(conn, embedder.name, embedder.dimension)
            self._model_checked = True
        return embedder.embed(list(queries))


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
