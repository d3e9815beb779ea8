"""Dense, lexical and hybrid search over the chunks, in one SQL statement each.

    searcher = Searcher.from_settings(get_settings())
    hits = searcher.search("how do I calibrate the oxygen probe?", mode="hybrid", k=5)

- dense: cosine distance on the HNSW index, with ef_search raised for filters that
  keep a small share of the chunks; small or very selective scopes are ranked
  exactly, so that a selective filter does not starve the result.
- lexical: Okapi BM25 (k1, b from settings) computed in SQL from per-chunk postings
  of PostgreSQL's English text search lexemes (stemmed, stop words removed).
- hybrid: weighted reciprocal rank fusion of both lists,
  score = w_dense / (k + rank_dense) + w_lexical / (k + rank_lexical).

Every search runs in a tenant scope: row-level security limits it to the tenant's
rows besides the statement's own tenant condition.

A ``Reranker``, when configured, reorders the top ``rerank_depth`` hits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import SearchMode, Settings
from ragline.db.engine import get_engine
from ragline.db.migrate import check_embedding_model
from ragline.db.tenancy import tenant_scope
from ragline.domain import Filter, Hit
from ragline.embedding.base import Embedder, Vectors
from ragline.embedding.factory import get_embedder
from ragline.errors import RetrievalError
from ragline.logs import ensure_logging
from ragline.search.filters import filter_sql, has_row_filters, scope_sql
from ragline.search.query_cache import QueryCache
from ragline.search.rerank import Reranker, get_reranker

# Okapi BM25 over the postings of the searched scope (tenant, and collection when the
# search is restricted to one): N and the average length come from bm25_stats, and
# document frequencies from the postings themselves, for that scope. Other filters
# restrict the candidates, not the statistics.
#   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
#   score(c) = sum_t idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))
# with tf and len counting a term in the context (title, section) w_context times.
_LEXICAL = """
    terms AS (
        SELECT DISTINCT lexeme AS term
        FROM unnest(tsvector_to_array(to_tsvector('english', :query))) AS lexeme
    ),
    bm25_scope AS (
        SELECT coalesce(sum(s.chunks), 0)::float8 AS n,
               greatest(sum(s.len_text + :w_context * s.len_context)
                        / nullif(sum(s.chunks), 0), 1e-9)::float8 AS avg_len
        FROM bm25_stats s WHERE {scope_stats}
    ),
    matches AS (
        SELECT p.term, p.chunk_id, p.tf_text + :w_context * p.tf_context AS tf,
               p.len_text + :w_context * p.len_context AS len
        FROM postings p JOIN terms ON terms.term = p.term
        WHERE {scope_postings}
    ),
    df AS (SELECT term, count(*)::float8 AS df FROM matches GROUP BY term),
    scored AS (
        SELECT m.chunk_id AS id, sum(
            ln(1 + (bm25_scope.n - df.df + 0.5) / (df.df + 0.5)) * m.tf * (:k1 + 1)
            / (m.tf + :k1 * (1 - :b + :b * m.len / bm25_scope.avg_len))
        ) AS score
        FROM matches m JOIN df ON df.term = m.term CROSS JOIN bm25_scope
        GROUP BY m.chunk_id
    ),
    lexical AS (
        SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
            SELECT s.id, s.score FROM scored s {candidates}
            ORDER BY s.score DESC, s.id LIMIT :depth
        ) candidates
    )"""

# Dense candidates: through the HNSW index ("c.embedding <=> :qvec"), or ranked exactly
# ("(c.embedding <=> :qvec) + 0", which no index can serve); see Searcher._plan_dense.
_DENSE = """
    dense AS (
        SELECT id, dist, row_number() OVER (ORDER BY dist, id) AS rank FROM (
            SELECT c.id, c.embedding <=> :qvec AS dist FROM chunks c
            WHERE {where} ORDER BY {order} LIMIT :depth
        ) candidates
    )"""

# pgvector's HNSW index filters after it searches, and returns at most ef_search rows.
# Filtered dense search therefore raises ef_search by the inverse of the filter's
# share of the table, up to pgvector's maximum; where that is not enough, and the
# scope holds at most EXACT_SCAN_CAP chunks, they are ranked exactly. Scopes of at
# most EXACT_SCAN_SMALL chunks are always ranked exactly: that is as fast.
EXACT_SCAN_SMALL = 2_000
EXACT_SCAN_CAP = 100_000
HNSW_MAX_EF_SEARCH = 1_000

# Each fused row keeps the cosine similarity of its chunk to the query when the dense
# list found it: unlike a rank, it says how close the best passages are at all.
_FUSED = {
    "dense": "SELECT id, 1 - dist AS score, 1 - dist AS similarity FROM dense",
    "lexical": "SELECT id, score, NULL::float8 AS similarity FROM lexical",
    "hybrid": """
        SELECT coalesce(d.id, l.id) AS id,
               coalesce(:w_dense / (:rrf_k + d.rank), 0)
             + coalesce(:w_lexical / (:rrf_k + l.rank), 0) AS score,
               1 - d.dist AS similarity
        FROM dense d FULL OUTER JOIN lexical l ON d.id = l.id""",
}

_RESULT = """
    SELECT c.id AS chunk_id, f.score, f.similarity, doc.doc_id, doc.title, doc.uri, c.section,
           c.text, c.source, c.collection, c.doc_type, c.page
    FROM fused f
    JOIN chunks c ON c.id = f.id
    JOIN documents doc ON doc.id = c.document_id
    ORDER BY f.score DESC, c.id
    LIMIT :k"""


def search_sql(mode: SearchMode, search_filter: Filter, where: str, *, exact: bool) -> str:
    """The statement for ``mode``; ``where`` filters ``chunks c``."""
    parts = []
    if mode in ("lexical", "hybrid"):
        candidates = (
            f"JOIN chunks c ON c.id = s.id WHERE {where}" if has_row_filters(search_filter) else ""
        )
        parts.append(
            _LEXICAL.format(
                scope_stats=scope_sql(search_filter, "s"),
                scope_postings=scope_sql(search_filter, "p"),
                candidates=candidates,
            )
        )
    if mode in ("dense", "hybrid"):
        order = "(c.embedding <=> :qvec) + 0" if exact else "c.embedding <=> :qvec"
        parts.append(_DENSE.format(where=where, order=order))
    # Materialised: the fused list is a hundred rows or so, computed once, then joined
    # to its chunks by primary key (inlined, a misestimate can re-run it per chunk).
    parts.append(f"fused AS MATERIALIZED ({_FUSED[mode]})")
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
        self.query_cache = QueryCache(settings.query_cache_size)

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
        if "\x00" in query:
            raise RetrievalError("the query contains a NUL (\\u0000) character")
        mode = mode or self.settings.search_mode
        if mode not in _FUSED:
            raise RetrievalError(f"unknown search mode {mode!r}: use dense, lexical or hybrid")
        wanted = k or self.settings.search_k
        k = max(wanted, self.settings.rerank_depth) if self.reranker is not None else wanted
        search_filter = search_filter or Filter()
        tenant = tenant or self.settings.tenant
        where, params = filter_sql(search_filter, tenant)
        params |= {
            "query": query,
            "k": k,
            "depth": max(self.settings.candidate_depth, k),
            "rrf_k": self.settings.rrf_k,
            "w_dense": self.settings.dense_weight,
            "w_lexical": self.settings.lexical_weight,
            "k1": self.settings.bm25_k1,
            "b": self.settings.bm25_b,
            "w_context": self.settings.bm25_context_weight,
        }
        if mode in ("dense", "hybrid"):
            params["qvec"] = (
                query_vector
                if query_vector is not None
                else self.embed_queries([query], tenant=tenant)[0]
            )
        with tenant_scope(self.engine, tenant) as conn:
            exact = False
            if mode != "lexical":
                exact, ef_search = self._plan_dense(conn, search_filter, where, params)
                if not exact and ef_search != self.settings.hnsw_ef_search:
                    conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {ef_search}"))
            sql = search_sql(mode, search_filter, where, exact=exact)
            rows = conn.execute(sa.text(sql), params).mappings().all()
        hits = [_hit(row) for row in rows]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits)
        return hits[:wanted]

    def _plan_dense(
        self, conn: sa.Connection, search_filter: Filter, where: str, params: dict[str, Any]
    ) -> tuple[bool, int]:
        """(rank exactly?, ef_search) for the scope the filters leave.

        Without row filters the scope's size is in bm25_stats; otherwise the filtered
        chunks are counted, up to EXACT_SCAN_CAP. The size of the whole index, every
        tenant's chunks, comes from ragline_index_size(), a count row-level security
        would otherwise hide."""
        if has_row_filters(search_filter):
            scope = conn.execute(
                sa.text(
                    f"SELECT count(*) FROM (SELECT 1 FROM chunks c WHERE {where} LIMIT :cap) s"
                ),
                {**params, "cap": EXACT_SCAN_CAP + 1},
            ).scalar_one()
            total = conn.execute(sa.text("SELECT ragline_index_size()")).scalar_one()
        else:
            in_scope = scope_sql(search_filter, "s")
            scope, total = conn.execute(
                sa.text(
                    f"SELECT coalesce(sum(chunks) FILTER (WHERE {in_scope}), 0), "
                    "ragline_index_size() FROM bm25_stats s"
                ),
                params,
            ).one()
        depth = int(params["depth"])
        if scope <= EXACT_SCAN_SMALL:
            return True, self.settings.hnsw_ef_search
        share = scope / max(total, scope, 1)
        needed = math.ceil(max(depth, self.settings.hnsw_ef_search) / share)
        if needed > HNSW_MAX_EF_SEARCH and scope <= EXACT_SCAN_CAP:
            return True, self.settings.hnsw_ef_search
        return False, min(needed, HNSW_MAX_EF_SEARCH)

    def embed_queries(self, queries: Sequence[str], *, tenant: str | None = None) -> Vectors:
        """One vector per query, from the model the index was built with (checked once).
        Recent queries of ``tenant`` (default: the configured one) come from its cache."""
        embedder = self.embedder
        if not self._model_checked:
            with self.engine.connect() as conn:
                check_embedding_model(conn, embedder.name, embedder.dimension)
            self._model_checked = True
        if not self.query_cache.size:
            return embedder.embed(list(queries))
        tenant = tenant or self.settings.tenant
        known = self.query_cache.get(tenant, queries)
        missing = [q for q in dict.fromkeys(queries) if q not in known]
        if missing:
            fresh = dict(zip(missing, embedder.embed(missing), strict=True))
            known.update(fresh)
            self.query_cache.put(tenant, fresh)
        return np.stack([known[q] for q in queries])


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
        similarity=row["similarity"],
        uri=row["uri"] or "",
    )
