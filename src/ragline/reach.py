"""What a tenant's sources may reach, as the operator decided.

The operator (the command line on the service's machine, or an operator key) sets an
``Allowance`` per tenant; a tenant's admin configures sources inside it and nothing
else. By default a tenant's sources reach public hosts only, name no environment
variable, and use no credentials of the service's own::

    allowance = Allowance(hosts=("wiki.internal",), env=("WIKI_TOKEN",))
    token = allowance.secret("WIKI_TOKEN", "confluence source wiki", settings)
    allowance.check_bucket("handbooks", "s3 source hr")
    root = allowance.folder("/srv/shared/acme", "files source notes")   # resolved

Loopback, private, link-local and other non-public addresses are refused unless the
operator names the host (``hosts``), a URL prefix (``url_prefixes``) or the block
(``networks``); ``ragline.netguard`` applies this to connections as they are made.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ragline.config import Settings
from ragline.errors import OutsideAllowance
from ragline.secrets import secret

# The kinds a tenant's admin may configure unless the operator says otherwise. A
# ``files`` source reads the service's own disk: only the operator may configure one.
TENANT_KINDS: tuple[str, ...] = ("confluence", "s3", "sql", "stream")


class Allowance(BaseModel):
    """Where one tenant's sources may reach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: tuple[str, ...] = Field(
        default=TENANT_KINDS,
        description="Kinds of source the tenant's admin may configure (files is the "
        "operator's alone, whatever this says).",
    )
    public_hosts: bool = Field(
        default=True,
        description="Whether sources may reach any host whose every address is public.",
    )
    hosts: tuple[str, ...] = Field(
        default=(),
        description="Host names sources may reach even at a loopback, private or link-local "
        "address: 'wiki.internal', '*.corp.example', 'db.internal:5432'.",
    )
    url_prefixes: tuple[str, ...] = Field(
        default=(),
        description="URLs sources may reach when they begin with one of these, whatever the "
        "address: 'http://10.0.0.5:8090/confluence/'.",
    )
    networks: tuple[str, ...] = Field(
        default=(),
        description="Address blocks sources may reach although private: '10.20.0.0/16'.",
    )
    databases: tuple[str, ...] = Field(
        default=(),
        description="Database URLs (without password) an sql source may connect to, "
        "including a Unix socket or the service's own database: "
        "'postgresql://reader@crm-db:5432/crm'.",
    )
    buckets: tuple[str, ...] = Field(
        default=("*",),
        description="S3 buckets sources may read ('*': any the credentials can).",
    )
    folders: tuple[str, ...] = Field(
        default=(),
        description="Directories the tenant's files sources may read (set up by the operator).",
    )
    env: tuple[str, ...] = Field(
        default=(),
        description="Environment variables a source may name for a secret (never RAGLINE_*, "
        "nor a variable ragline's own settings name).",
    )
    ambient_credentials: bool = Field(
        default=False,
        description="Whether an S3 source without credential variables may use the service's "
        "own AWS credentials (instance profile, AWS_* variables).",
    )

    def secret(self, variable: str | None, what: str, settings: Settings) -> str | None:
        """The value of the environment variable ``variable`` (None when none is named),
        if the operator lets this tenant's sources read it; ``OutsideAllowance`` otherwise.
        ragline's own variables (``RAGLINE_*`` and those its settings name) are never
        readable, whatever ``env`` says."""
        if not variable:
            return None
        if variable.upper().startswith("RAGLINE_") or variable in own_variables(settings):
            raise OutsideAllowance(
                f"{what}: the environment variable {variable} belongs to the service itself; "
                "a source may not read it: put the source's secret in a variable of its own"
            )
        if variable not in self.env:
            raise OutsideAllowance(
                f"{what}: the environment variable {variable} is not one this tenant's "
                "sources may read; ask the operator to allow it "
                f"(ragline tenant allow TENANT --env {variable})"
            )
        return secret(variable, what)

    def check_bucket(self, bucket: str, what: str) -> None:
        """Refuse an S3 bucket the operator has not allowed."""
        if "*" not in self.buckets and bucket not in self.buckets:
            raise OutsideAllowance(
                f"{what}: the bucket {bucket} is not one this tenant's sources may read; ask "
                f"the operator to allow it (ragline tenant allow TENANT --bucket {bucket})"
            )

    def folder(self, path: str, what: str) -> Path:
        """``path`` resolved (symbolic links followed) when it lies inside one of
        ``folders``; ``OutsideAllowance`` naming ``path`` as written otherwise, whether
        or not it exists."""
        resolved = Path(path).expanduser().resolve()
        if not self.contains(resolved):
            raise OutsideAllowance(
                f"{what}: {path} is not inside a folder this tenant's sources may read; ask "
                "the operator to allow one (ragline tenant allow TENANT --folder DIRECTORY)"
            )
        return resolved

    def contains(self, resolved: Path) -> bool:
        """Whether the resolved path ``resolved`` lies inside one of ``folders``."""
        return any(resolved.is_relative_to(Path(f).resolve()) for f in self.folders if f)

    # -- the network -----------------------------------------------------------------

    def host_allowed(self, host: str, port: int | None) -> bool:
        """Whether ``hosts`` names ``host`` (exactly, or by a ``*.suffix``), on any port
        or on ``port`` when the entry gives one."""
        name = normal_host(host)
        for entry in self.hosts:
            pattern, entry_port = _split_port(entry)
            if entry_port is not None and entry_port != port:
                continue
            if pattern.startswith("*."):
                if name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                    return True
            elif name == pattern:
                return True
        return False

    def prefix_allows(self, url: str) -> bool:
        """Whether ``url`` begins with one of ``url_prefixes``, compared by scheme, host,
        port and path segments (a userinfo or ``..`` cannot make a URL look inside)."""
        target = _url_parts(url)
        if target is None or "/../" in target[3] + "/" or "/./" in target[3] + "/":
            return False
        for prefix in self.url_prefixes:
            wanted = _url_parts(prefix)
            if wanted is None or wanted[:3] != target[:3]:
                continue
            if (target[3] + "/").startswith(wanted[3].rstrip("/") + "/"):
                return True
        return False

    def prefix_origins(self) -> set[tuple[str, int | None]]:
        """The (host, port) of every URL prefix: hosts reached at any address, for URLs
        inside a prefix only."""
        origins = set()
        for prefix in self.url_prefixes:
            parts = _url_parts(prefix)
            if parts is not None:
                origins.add((parts[1], parts[2]))
        return origins

    def address_allowed(self, address: IPAddress) -> bool:
        """Whether a connection may go to ``address`` (of a host not named in ``hosts``):
        one inside ``networks``, or a public one when ``public_hosts``."""
        if any(address in ipaddress.ip_network(n, strict=False) for n in self.networks):
            return True
        return self.public_hosts and not internal(address)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6380, "amqp": 5672}
_DEFAULT_PORTS |= {"amqps": 5671, "pyamqp": 5672, "postgresql": 5432, "mysql": 3306}
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}$", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def own_variables(settings: Settings) -> set[str]:
    """The environment variables ragline's own settings name (API keys of its models)."""
    names = {settings.embedding_api_key_env}
    names |= {provider.api_key_env for provider in settings.llm_providers}
    return {name for name in names if name}


def internal(address: IPAddress) -> bool:
    """Whether ``address`` is not a public unicast one: loopback, private, CGNAT,
    link-local, unique-local, multicast, reserved, unspecified; an IPv4 address inside
    an IPv6 one (mapped, 6to4, NAT64) is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return internal(embedded)
    return not address.is_global or address.is_multicast or address.is_unspecified


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a resolver accepts (``[::1]``,
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1``); None for a name."""
    name = normal_host(host)
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def normal_host(host: str) -> str:
    """A host as compared: lower case, without brackets or trailing dots."""
    return host.strip().strip("[]").rstrip(".").lower()


def default_port(scheme: str) -> int | None:
    return _DEFAULT_PORTS.get(scheme.lower().split("+", 1)[0])


def _split_port(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return normal_host(host), int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return normal_host(host), int(port)
    return normal_host(entry), None


def _url_parts(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or default_port(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.scheme.lower(), normal_host(parts.hostname), port, parts.path or "/"
