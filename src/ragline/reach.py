"""What a tenant's sources may reach, as the operator decided.

The operator (the command line on the service's machine, or an operator key) sets an
``Allowance`` per tenant; a tenant's admin configures sources inside it and nothing
else. By default a tenant's sources reach public hosts only, name no environment
variable, and use no credentials of the service's own::

    allowance = Allowance(hosts=("wiki.internal",), env=("WIKI_TOKEN",))
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
