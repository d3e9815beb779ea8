"""Recent query vectors of one process, kept per tenant.

A question asked again, or searched again for its answer, is not embedded twice. The
key is (tenant, query): a tenant's first search of a query another tenant asked a
moment ago is embedded like any new query, so its timing tells nothing of the others::

    cache = QueryCache(size=4096)
    known = cache.get("acme", ["oxygen probe"])       # {} the first time
    cache.put("acme", {"oxygen probe": vector})
    cache.hits, cache.misses                            # (0, 1)

The least recently used entries are dropped first once ``size`` are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from ragline.embedding.base import Vectors


class QueryCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant: str, queries: Sequence[str]) -> dict[str, Vectors]:
        """The cached vectors of ``tenant``'s ``queries`` (each distinct query counted
        once as a hit or a miss)."""
        found: dict[str, Vectors] = {}
        with self._lock:
            for query in dict.fromkeys(queries):
                vector = self._vectors.get((tenant, query))
                if vector is None:
                    self.misses += 1
                    continue
                self._vectors.move_to_end((tenant, query))
                found[query] = vector
                self.hits += 1
        return found

    def put(self, tenant: str, vectors: Mapping[str, Vectors]) -> None:
        with self._lock:
            for query, vector in vectors.items():
                self._vectors[(tenant, query)] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
