"""The outside services integration tests and benchmarks talk to: Redis, RabbitMQ,
PostgreSQL (without pgvector: the server a SQL source reads) and MariaDB.

Each is found from an environment variable, with the local default of this machine::

    RAGLINE_TEST_REDIS_URL     redis://127.0.0.1:6379
    RAGLINE_TEST_AMQP_URL      amqp://guest:guest@127.0.0.1:5672//
    RAGLINE_TEST_POSTGRES_URL  postgresql://postgres@127.0.0.1:5432/test
    RAGLINE_TEST_MARIADB_URL   mysql+pymysql://root@127.0.0.1:3306/test

``ensure_*`` checks that the service answers; a service at its local default that
does not is started with the machine's own command (when running as root) and
waited for. Each test module gets a Redis database (``redis_db``) and a RabbitMQ
virtual host (``amqp_vhost_url``) of its own, so modules never see each other's keys,
queues or messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pymysql
import redis
from kombu import Connection


@dataclass(frozen=True)
class Service:
    name: str
    env: str
    default: str
    start: str  # a shell command, as the machine documents it
    timeout: float  # seconds to wait for it after starting it

    @property
    def url(self) -> str:
        return os.environ.get(self.env) or self.default


REDIS = Service(
    "Redis",
    "RAGLINE_TEST_REDIS_URL",
    "redis://127.0.0.1:6379",
    "mkdir -p /var/lib/redis /var/log/redis && "
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    30,
)
RABBITMQ = Service(
    "RabbitMQ",
    "RAGLINE_TEST_AMQP_URL",
    "amqp://guest:guest@127.0.0.1:5672//",
    "rabbitmq-server -detached",
    120,
)
POSTGRES = Service(
    "PostgreSQL",
    "RAGLINE_TEST_POSTGRES_URL",
    "postgresql://postgres@127.0.0.1:5432/test",
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    60,
)
MARIADB = Service(
    "MariaDB",
    "RAGLINE_TEST_MARIADB_URL",
    "mysql+pymysql://root@127.0.0.1:3306/test",
    "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    60,
)


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _amqp_answers(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:  # kombu raises whatever its transport does
        return False


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _mariadb_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/") or None,
            connect_timeout=2,
        )
    except pymysql.Error:
        return False
    conn.close()
    return True


_CHECKS: dict[str, Callable[[str], bool]] = {
    REDIS.name: _redis_answers,
    RABBITMQ.name: _amqp_answers,
    POSTGRES.name: _postgres_answers,
    MARIADB.name: _mariadb_answers,
}
_up: set[str] = set()


def ensure(service: Service) -> str:
    """The service's URL, once it answers. At its local default and as root, a service
    that is down is started; anywhere else, an error says where it was looked for."""
    url = service.url
    answers = _CHECKS[service.name]
    if url in _up or answers(url):
        _up.add(url)
        return url
    if url != service.default or os.geteuid() != 0:
        raise RuntimeError(
            f"{service.name} does not answer at {url} (set {service.env} to where it runs)"
        )
    started = subprocess.run(
        service.start, shell=True, capture_output=True, text=True, timeout=service.timeout
    )
    deadline = time.monotonic() + service.timeout
    while time.monotonic() < deadline:
        if answers(url):
            _up.add(url)
            return url
        time.sleep(0.5)
    raise RuntimeError(
        f"{service.name} does not answer at {url}, {service.timeout:.0f} s after "
        f"`{service.start}` (exit {started.returncode}): {started.stderr.strip()[-500:]}"
    )


def ensure_redis() -> str:
    return ensure(REDIS)


def ensure_amqp() -> str:
    return ensure(RABBITMQ)


def ensure_postgres() -> str:
    return ensure(POSTGRES)


def ensure_mariadb() -> str:
    return ensure(MARIADB)


def libpq_url(url: str) -> str:
    """``url`` without a SQLAlchemy driver name (``postgresql+psycopg://`` → ``postgresql://``),
    as libpq and psycopg take it."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def sqlalchemy_url(url: str) -> str:
    """``url`` with the driver this project installs (psycopg 3 for PostgreSQL)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme == "postgresql" else url


# The test modules that use Redis. Each gets its own database in 1..15 (0 is left to
# whatever else runs on the machine): its name's CRC-32 modulo 15, moved on to the next
# free number when an earlier module in this list holds it. Append, never reorder.
REDIS_MODULES = ("test_tenancy", "test_celery", "test_beat", "test_stream", "test_edge")


def _redis_dbs() -> dict[str, int]:
    taken: dict[str, int] = {}
    for module in REDIS_MODULES:
        db = zlib.crc32(module.encode()) % 15 + 1
        while db in taken.values():
            db = db % 15 + 1
        taken[module] = db
    return taken


def redis_db(module: str) -> int:
    """The Redis database number that belongs to test module ``module`` (its last
    dotted part is enough)."""
    name = module.rsplit(".", 1)[-1]
    dbs = _redis_dbs()
    if name not in dbs:
        raise LookupError(f"add {name!r} to REDIS_MODULES in {__name__} to give it a database")
    return dbs[name]


def redis_url(module: str) -> str:
    """Redis, with the database of ``module``."""
    return f"{ensure_redis().rstrip('/')}/{redis_db(module)}"


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def amqp_vhost_url(module: str) -> str:
    """RabbitMQ, in a virtual host of ``module``'s own (``ragline-test-<module without test_>``),
    created with ``rabbitmqctl`` where it does not exist yet. Where it cannot be
    (no ``rabbitmqctl``, not this machine's broker), the configured URL itself."""
    base = ensure_amqp()
    name = module.rsplit(".", 1)[-1].removeprefix("test_")
    vhost = "ragline-test-" + name.replace("_", "-")
    url = with_vhost(base, vhost)
    if _amqp_answers(url):
        return url
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or urlsplit(base).hostname not in {"127.0.0.1", "localhost", "::1"}:
        return base
    user = urlsplit(base).username or "guest"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]):
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return base
    return url if _amqp_answers(url) else base
