"""Dependencies of the routes, as types: ``ServicesDep``, ``ReaderDep``, ``AdminDep``,
``OperatorDep``.

A route that takes ``ReaderDep`` gets the caller's ``Principal`` after the key was
checked (401), the role required (403) and the rate limit applied (429). A request
takes ``cost_of(method, route)`` tokens of its key's bucket: reads one, uploads,
answers, searches and syncs more (``COSTS``). A missing, unknown or revoked key takes
a token of its client address's bucket (``RAGLINE_AUTH_FAILURES_*``): once that is
empty, the address gets 429 instead of 401, while valid keys go on as before. Finer role
checks belong to the services (``SourceService``, ``UploadService``), so that the API
and the command line apply the same rules. The tenant of
everything a route does is ``principal.tenant``: it never comes from the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from ragline.answer.service import Answerer
from ragline.auth import Principal, Role, authenticate
from ragline.config import Settings
from ragline.errors import AuthError
from ragline.jobs.dispatch import Dispatcher
from ragline.ratelimit import Decision, RateLimiter
from ragline.search.hybrid import Searcher
from ragline.sources.service import SourceService
from ragline.uploads.service import UploadService


@dataclass
class Services:
    settings: Settings
    engine: Engine
    uploads: UploadService
    searcher: Searcher
    answerer: Answerer
    dispatcher: Dispatcher
    limiter: RateLimiter
    sources: SourceService
    auth_failures: RateLimiter


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `ragline keys create`.")


# Tokens a request takes from its key's bucket, by method and route template; any
# other read takes one, any other write two.
COSTS: dict[tuple[str, str], int] = {
    ("POST", "/v1/documents"): 10,
    ("POST", "/v1/ask"): 5,
    ("POST", "/v1/ask/stream"): 5,
    ("POST", "/v1/sources/{ref}/sync"): 5,
    ("POST", "/v1/search"): 2,
}
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def cost_of(method: str, route: str) -> int:
    return COSTS.get((method, route), 1 if method in _READS else 2)


def _too_many(decision: Decision, what: str) -> HTTPException:
    return HTTPException(
        status_code=429,
        detail=f"{what}; retry in {decision.retry_after} s",
        headers={"Retry-After": str(decision.retry_after)},
    )


def _admit(
    services: Services, secret: str | None, client: str, cost: int
) -> tuple[Principal, Decision]:
    """The caller, and whether their rate bucket had ``cost`` tokens (one database or
    Redis round trip each, in one worker thread)."""
    settings = services.settings
    if not settings.auth_required and secret is None:
        principal = Principal(tenant=settings.tenant, role="admin", key_id=None)
    else:
        try:
            principal = authenticate(services.engine, secret)
        except AuthError:
            failures = services.auth_failures.take(f"auth-failures:{client}")
            if not failures.allowed:
                raise _too_many(failures, "too many requests without a valid API key") from None
            raise
    bucket = f"key:{principal.key_id}" if principal.key_id else f"tenant:{principal.tenant}"
    return principal, services.limiter.take(bucket, cost=cost)


def _require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        secret = credentials.credentials if credentials is not None else None
        client = request.client.host if request.client else "unknown"
        route = getattr(request.scope.get("route"), "path", request.url.path)
        cost = cost_of(request.method, route)
        principal, decision = await run_in_threadpool(_admit, services, secret, client, cost)
        request.state.tenant = principal.tenant
        structlog.contextvars.bind_contextvars(tenant=principal.tenant)
        principal.require(role)
        if not decision.allowed:
            raise _too_many(decision, f"rate limit exceeded (this request costs {cost})")
        return principal

    return dependency


ReaderDep = Annotated[Principal, Depends(_require("reader"))]
AdminDep = Annotated[Principal, Depends(_require("admin"))]
OperatorDep = Annotated[Principal, Depends(_require("operator"))]
