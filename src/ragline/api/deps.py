"""Dependencies of the routes, as types: ``ServicesDep``, ``ReaderDep``, ``AdminDep``,
``OperatorDep``.

A route that takes ``ReaderDep`` gets the caller's ``Principal`` after the key was
checked (401), the role required (403) and the rate limit applied (429). Finer role
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


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `ragline keys create`.")


def _admit(services: Services, secret: str | None) -> tuple[Principal, Decision]:
    """The caller, and whether their rate bucket had a token (one database or Redis
    round trip each, in one worker thread)."""
    settings = services.settings
    if not settings.auth_required and secret is None:
        principal = Principal(tenant=settings.tenant, role="admin", key_id=None)
    else:
        principal = authenticate(services.engine, secret)
    bucket = f"key:{principal.key_id}" if principal.key_id else f"tenant:{principal.tenant}"
    return principal, services.limiter.take(bucket)


def _require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        secret = credentials.credentials if credentials is not None else None
        principal, decision = await run_in_threadpool(_admit, services, secret)
        request.state.tenant = principal.tenant
        structlog.contextvars.bind_contextvars(tenant=principal.tenant)
        principal.require(role)
        if not decision.allowed:
            raise HTTPException(
                status_code=429,
                detail=f"rate limit exceeded; retry in {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            )
        return principal

    return dependency


ReaderDep = Annotated[Principal, Depends(_require("reader"))]
AdminDep = Annotated[Principal, Depends(_require("admin"))]
OperatorDep = Annotated[Principal, Depends(_require("operator"))]
