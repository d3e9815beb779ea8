"""Connections a source makes, checked against its tenant's allowance when they are made.

A host is resolved here, every address it resolves to is checked (``Allowance``), and
the connection goes to a checked address: a DNS answer that changes between the check
and the connection (rebinding) cannot send it elsewhere. Refusals name the host or URL
as the tenant wrote it, never what it resolved to::

    guard = NetGuard(allowance, "confluence source wiki")
    guard.check_url("https://wiki.example.com")          # OutsideAllowance if refused
    client = httpx.Client(transport=guard.transport(), trust_env=False,
                          follow_redirects=True)          # every connection checked
    target = guard.database("postgresql+psycopg://reader@db.example.com/crm", settings)
    engine = sa.create_engine(target.url, connect_args=target.connect_args)
"""

from __future__ import annotations

import contextvars
import re
import socket
import ssl
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ragline.config import Settings
from ragline.errors import ConfigurationError, OutsideAllowance, SourceUnavailable
from ragline.reach import Allowance, IPAddress, default_port, literal_address, normal_host

# Whether the request being sent lies inside one of the allowance's URL prefixes: its
# connection may then go to any address of the prefix's host.
_INSIDE_PREFIX: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ragline_inside_prefix", default=False
)


class NetGuard:
    """One tenant's allowance applied to the hosts and URLs of one source (``what``)."""

    def __init__(self, allowance: Allowance, what: str) -> None:
        self.allowance = allowance
        self.what = what
        self._prefix_origins = allowance.prefix_origins()

    def refusal(self, shown: str) -> OutsideAllowance:
        return OutsideAllowance(
            f"{self.what}: {shown} is not a host this tenant's sources may reach (loopback, "
            "private and link-local addresses, Unix sockets and the service's own database "
            "are refused unless allowed); ask the operator to allow it "
            "(ragline tenant allow TENANT --host HOST, --url-prefix URL or --network CIDR)"
        )

    def addresses(
        self, host: str, port: int | None, *, shown: str | None = None, inside_prefix: bool = False
    ) -> list[IPAddress]:
        """The addresses of ``host`` a connection may go to, resolved now; refuses the
        host (naming ``shown``, else the host) when any of them is not allowed."""
        shown = shown or host
        name = normal_host(host)
        literal = literal_address(name)
        found = [literal] if literal is not None else self._resolve(name, port, shown)
        if inside_prefix and (name, port) in self._prefix_origins:
            return found
        if self.allowance.host_allowed(name, port):
            return found
        if not all(self.allowance.address_allowed(address) for address in found):
            raise self.refusal(shown)
        return found

    def check_url(self, url: str) -> list[IPAddress]:
        """Check ``url``'s host now (before any connection); its addresses."""
        try:
            parts = urlsplit(url)
            port = parts.port or default_port(parts.scheme)
        except ValueError as e:
            raise ConfigurationError(f"{self.what}: {url!r} is not a valid URL") from e
        if not parts.hostname:
            if self.allowance.prefix_allows(url):
                return []
            raise self.refusal(url)
        inside = self.allowance.prefix_allows(url)
        return self.addresses(parts.hostname, port, shown=url, inside_prefix=inside)

    def check_broker(self, url: str) -> list[IPAddress]:
        """Check a broker's URL (redis://, amqp://...) now; refusals show its scheme,
        host and port only, never its credentials."""
        try:
            parts = urlsplit(url)
            port = parts.port or default_port(parts.scheme)
        except ValueError as e:
            raise ConfigurationError(f"{self.what}: the broker's URL is not a valid URL") from e
        shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")
        if self.allowance.prefix_allows(url):
            return (
                self.addresses(parts.hostname, port, inside_prefix=True) if parts.hostname else []
            )
        if not parts.hostname or parts.scheme.lower() == "unix":
            raise self.refusal(f"{parts.scheme}:// (a Unix socket or local transport)")
        return self.addresses(parts.hostname, port, shown=shown)

    def transport(self, **options: Any) -> httpx.BaseTransport:
        """An httpx transport whose every request (redirects included) is checked, and
        whose every connection goes to an address checked as it connects."""
        return GuardedTransport(self, **options)

    def database(self, url: str, settings: Settings) -> Database:
        """Where an sql source's URL may connect: an entry of ``databases`` as it is;
        otherwise not a Unix socket, not the service's own database, and a host checked
        like any other, pinned to its checked address."""
        return _database(self, url, settings)

    def _resolve(self, name: str, port: int | None, shown: str) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise SourceUnavailable(f"{self.what}: cannot resolve the host of {shown}") from e
        found: dict[IPAddress, None] = {}
        for info in infos:
            address = literal_address(str(info[4][0]))
            if address is not None:
                found[address] = None
        if not found:
            raise SourceUnavailable(f"{self.what}: cannot resolve the host of {shown}")
        return list(found)


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses; no Unix sockets."""

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.guard.addresses(host, port, inside_prefix=_INSIDE_PREFIX.get())
        error: Exception | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as e:
                error = e
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise self.guard.refusal("a Unix socket")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` over a connection pool that connects through the guard.
    TLS still verifies the certificate of the host name (SNI is the name, not the
    address)."""

    def __init__(self, guard: NetGuard, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_GuardedBackend(guard)
        )
        self.guard = guard

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inside = self.guard.allowance.prefix_allows(str(request.url))
        if not inside:
            self.guard.check_url(str(request.url))
        with _inside_prefix(inside):
            return super().handle_request(request)


@contextmanager
def _inside_prefix(inside: bool) -> Iterator[None]:
    token = _INSIDE_PREFIX.set(inside)
    try:
        yield
    finally:
        _INSIDE_PREFIX.reset(token)


@dataclass(frozen=True, slots=True)
class Database:
    """A database URL to connect to, and the driver arguments that pin its address."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    addresses: tuple[str, ...] = ()


def database_key(url: URL) -> tuple[str, str, str, int | None, str]:
    """What identifies a database: (backend without driver, user, host or socket
    directory, port, database)."""
    backend = url.get_backend_name()
    host = url.host or _socket_dir(url) or ""
    port = url.port or (None if host.startswith("/") or not host else default_port(backend))
    return backend, url.username or "", normal_host(host), port, url.database or ""


def _socket_dir(url: URL) -> str | None:
    value = url.query.get("host") or url.query.get("unix_socket")
    if isinstance(value, tuple):
        value = value[0] if value else None
    return value


def _database(guard: NetGuard, raw: str, settings: Settings) -> Database:
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as e:
        raise ConfigurationError(f"{guard.what}: the database URL is not a valid URL") from e
    shown = url.render_as_string(hide_password=True)
    key = database_key(url)
    for entry in guard.allowance.databases:
        try:
            if database_key(make_url(entry)) == key:
                return Database(url)
        except (ArgumentError, ValueError):
            continue  # a malformed entry allows nothing
    socket_dir = _socket_dir(url)
    backend = key[0]
    if backend == "sqlite" or not url.host or (socket_dir and socket_dir.startswith("/")):
        raise guard.refusal(f"{shown} (a local file or Unix socket)")
    if _is_own(url, settings):
        raise guard.refusal(f"{shown} (the service's own database)")
    addresses = guard.addresses(url.host, key[3], shown=shown)
    pinned = str(addresses[0])
    if backend == "postgresql":
        return Database(url, {"hostaddr": pinned}, (pinned,))
    if backend in ("mysql", "mariadb"):
        return Database(url.set(host=pinned), {}, (pinned,))
    return Database(url, {}, (pinned,))


def _is_own(url: URL, settings: Settings) -> bool:
    """Whether ``url`` points at the service's own database (host, port and database)."""
    own = make_url(settings.database_url) if settings.database_url else None
    socket_dir = _socket_dir(url)
    if socket_dir and Path(socket_dir).resolve().is_relative_to(settings.home.resolve()):
        return True
    if own is None or own.host is None or url.host is None:
        return False
    mine, theirs = database_key(own), database_key(url)
    if mine[3:] != theirs[3:]:
        return False
    if mine[2] == theirs[2]:
        return True
    try:
        own_addresses = {i[4][0] for i in socket.getaddrinfo(own.host, own.port or 5432)}
        their_addresses = {i[4][0] for i in socket.getaddrinfo(url.host, url.port or 5432)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(own_addresses & their_addresses)


def scrub(message: str, addresses: typing.Iterable[str], host: str) -> str:
    """``message`` with each resolved address replaced by the host the tenant wrote, and
    absolute paths of the server (a socket's, a file's) left out."""
    for address in addresses:
        message = message.replace(address, host)
    return _PATH.sub("<path>", message)


_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.@-]+/)+[\w.@-]*")
