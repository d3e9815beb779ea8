"""Per-key rate limits: a token bucket in Redis when configured, in PostgreSQL otherwise.

    limiter = get_rate_limiter(settings, engine)
    decision = limiter.take(f"key:{principal.key_id}", cost=5)
    if not decision.allowed:
        ...  # answer 429 with Retry-After: decision.retry_after

A bucket holds up to ``burst`` tokens and refills at ``per_minute / 60`` tokens a
second; each request takes ``cost`` tokens (one for a plain read, more for work that
costs the service more), or none when the bucket holds fewer. Both stores update a
bucket in one atomic step, so every API replica sharing the store shares the limit.
``get_rate_limiter`` takes the rates of API keys by default; pass ``per_minute`` and
``burst`` for another kind of bucket (failed authentications per client address).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until a token is available (0 when allowed)


class RateLimiter(Protocol):
    def take(self, key: str, *, cost: int = 1) -> Decision: ...


def _cost(cost: int, burst: int) -> int:
    """What a request takes: at least one token, and never more than a full bucket (a
    request dearer than the burst would otherwise never be allowed)."""
    return max(1, min(cost, burst))


def _decision(available: float, rate: float, cost: int) -> Decision:
    """``available``: the bucket's tokens before this request took ``cost``."""
    if available >= cost:
        return Decision(True, int(available - cost), 0)
    return Decision(False, int(available), max(1, math.ceil((cost - available) / rate)))


# Refill the bucket for the time since its last update, capped at the burst; the
# row stays locked until the transaction takes a token (or not) and commits.
_PG_REFILL = sa.text(
    """
    INSERT INTO rate_buckets AS b (key, tokens, updated_at)
    VALUES (:key, :burst, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET
        tokens = least(:burst, b.tokens
                       + extract(epoch FROM clock_timestamp() - b.updated_at) * :rate),
        updated_at = clock_timestamp()
    RETURNING tokens
    """
)
_PG_TAKE = sa.text("UPDATE rate_buckets SET tokens = tokens - :cost WHERE key = :key")


class PostgresRateLimiter:
    def __init__(self, engine: Engine, *, per_minute: float, burst: int) -> None:
        self.engine = engine
        self.rate = per_minute / 60
        self.burst = burst

    def take(self, key: str, *, cost: int = 1) -> Decision:
        cost = _cost(cost, self.burst)
        with self.engine.begin() as conn:
            available = float(
                conn.execute(
                    _PG_REFILL, {"key": key, "burst": self.burst, "rate": self.rate}
                ).scalar_one()
            )
            if available >= cost:
                conn.execute(_PG_TAKE, {"key": key, "cost": cost})
        return _decision(available, self.rate, cost)


_REDIS_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local available = math.min(burst, tokens + math.max(0, now - at) * rate)
local left = available
if available >= cost then left = available - cost end
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(available)
"""


class RedisRateLimiter:
    def __init__(self, url: str, *, per_minute: float, burst: int) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_REDIS_TAKE)
        self.rate = per_minute / 60
        self.burst = burst

    def take(self, key: str, *, cost: int = 1) -> Decision:
        cost = _cost(cost, self.burst)
        available = self.script(keys=[f"ragline:rate:{key}"], args=[self.burst, self.rate, cost])
        return _decision(float(available), self.rate, cost)


def get_rate_limiter(
    settings: Settings,
    engine: Engine,
    *,
    per_minute: float | None = None,
    burst: int | None = None,
) -> RateLimiter:
    """The limiter of API keys' requests, or, given ``per_minute`` and ``burst``, one
    with those rates sharing the same store."""
    rate = settings.rate_limit_per_minute if per_minute is None else per_minute
    size = settings.rate_limit_burst if burst is None else burst
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, per_minute=rate, burst=size)
    return PostgresRateLimiter(engine, per_minute=rate, burst=size)
