"""Two administrators: the operator (the command line on the host, or an operator key)
sets each tenant's policy and reads the audit log; a tenant's admin configures its
sources within that policy, and can neither read another tenant's nor change its own."""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ragline.auth import Principal, create_key
from ragline.cli import app
from ragline.config import Settings
from ragline.errors import ConfigurationError, Forbidden, OutsideAllowance
from ragline.operator import audit_events, change_policy
from ragline.sources.build import build_context
from ragline.sources.store import SourceSpec, create_source
from tests.integration.service import Client, client_for, serve_in_thread

runner = CliRunner()
CLI_ACTOR = f"cli:{getpass.getuser()}"


def fresh(name: str) -> str:
    """A tenant no other test has seen (the audit log and policies are never emptied)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def wiki(name: str, token_env: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "confluence",
        "collection": "wiki",
        "config": {"base_url": "https://wiki.example.com", "space": "ENG", "token_env": token_env},
    }


_ids: dict[str, int] = {}


def keyed(url: str, engine: Engine, tenant: str, role: Any) -> Client:
    key = create_key(engine, tenant=tenant, role=role)
    _ids[key.secret] = key.id
    return Client(url, key.secret)


def put(client: Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(client.url + path, headers=client.headers, json=body, timeout=30)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    with serve_in_thread(settings.model_copy(update={"rate_limit_burst": 10_000})) as url:
        yield url


def test_a_tenant_admin_gets_403_from_every_operator_route_and_for_a_files_source(
    api: str, engine: Engine, tmp_path: Path
) -> None:
    tenant = fresh("acme")
    admin = client_for(api, engine, tenant, "admin")
    for response in (
        admin.get("/v1/operator/tenants"),
        admin.get(f"/v1/operator/tenants/{tenant}/policy"),
        admin.get(f"/v1/operator/tenants/{fresh('other')}/policy"),
        admin.get("/v1/operator/audit"),
        admin.get("/v1/operator/audit", params={"tenant": tenant}),
        put(admin, f"/v1/operator/tenants/{tenant}/policy", {"allowance": {"env": ["X"]}}),
    ):
        assert response.status_code == 403, (response.request.url, response.text)
        assert "operator" in response.json()["detail"]

    files = {"name": "disk", "kind": "files", "collection": "c", "config": {"path": str(tmp_path)}}
    refused = admin.post("/v1/sources", json=files)
    assert refused.status_code == 403
    assert "only the operator" in refused.json()["detail"]
    assert str(tmp_path) not in refused.json()["detail"]
    assert admin.get("/v1/sources").json()["sources"] == []

    # Its own policy it may read, to know what it may configure.
    own = admin.get("/v1/policy")
    assert own.status_code == 200
    assert own.json()["allowance"]["env"] == []
    assert client_for(api, engine, tenant, "writer").get("/v1/policy").status_code == 403


def test_the_operator_sets_a_policy_and_only_that_tenant_may_use_it(
    api: str, engine: Engine, tmp_path: Path
) -> None:
    a, b, home = fresh("tenant-a"), fresh("tenant-b"), fresh("ops")
    operator = keyed(api, engine, home, "operator")
    admin_a = keyed(api, engine, a, "admin")
    admin_b = keyed(api, engine, b, "admin")

    policy = {"allowance": {"kinds": ["confluence"], "env": ["WIKI_TOKEN"]}, "redact_pii": True}
    set_ = put(operator, f"/v1/operator/tenants/{a}/policy", policy)
    assert set_.status_code == 200, set_.text
    assert set_.json()["allowance"]["env"] == ["WIKI_TOKEN"]
    assert operator.get(f"/v1/operator/tenants/{a}/policy").json() == set_.json()
    assert a in operator.get("/v1/operator/tenants").json()["tenants"]
    for bad in ({"env": ["RAGLINE_DATABASE_URL"]}, {"kinds": ["ftp"]}, {"networks": ["10.0/99"]}):
        refused = put(operator, f"/v1/operator/tenants/{a}/policy", {"allowance": bad})
        assert refused.status_code == 422, (bad, refused.text)

    # A's admin sees its policy, adds a source naming the allowed variable, and nothing else.
    assert admin_a.get("/v1/policy").json() == set_.json()
    added = admin_a.post("/v1/sources", json=wiki("docs", "WIKI_TOKEN"))
    assert added.status_code == 201, added.text
    for body, words in (
        (wiki("db", "RAGLINE_DATABASE_URL"), "RAGLINE_DATABASE_URL"),
        (wiki("home", "HOME"), "tenant allow"),
        (
            {"name": "crm", "kind": "sql", "collection": "c", "config": {"url_env": "WIKI_TOKEN"}},
            "sql sources",
        ),
    ):
        refused = admin_a.post("/v1/sources", json=body)
        assert refused.status_code == 403, refused.text
        assert words in refused.json()["detail"]
    # B's admin cannot name A's variable, nor read A's policy.
    refused_b = admin_b.post("/v1/sources", json=wiki("docs", "WIKI_TOKEN"))
    assert refused_b.status_code == 403
    assert "WIKI_TOKEN" in refused_b.json()["detail"]
    assert admin_b.get("/v1/policy").json()["allowance"]["env"] == []
    assert admin_b.get(f"/v1/operator/tenants/{a}/policy").status_code == 403

    # The operator key adds a files source in its own tenant, syncs and removes it.
    files = {"name": "disk", "kind": "files", "collection": "c", "config": {"path": str(tmp_path)}}
    assert operator.post("/v1/sources", json=files).status_code == 201
    assert operator.post("/v1/sources/disk/sync").status_code == 202
    assert admin_a.delete("/v1/sources/docs").status_code == 204

    log = operator.get("/v1/operator/audit", params={"tenant": a}).json()["events"]
    assert [(e["action"], e["actor"]) for e in log] == [
        ("source.remove", f"key:{_ids[admin_a.key]}"),
        ("source.add", f"key:{_ids[admin_a.key]}"),
        ("policy.set", f"key:{_ids[operator.key]}"),
        ("key.create", CLI_ACTOR),
    ]
    policy_set = log[2]["details"]
    assert policy_set["before"]["allowance"]["env"] == []
    assert policy_set["after"]["allowance"]["env"] == ["WIKI_TOKEN"]
    assert log[1]["details"]["kind"] == "confluence"
    own = operator.get("/v1/operator/audit", params={"tenant": home, "action": "source."}).json()
    assert [e["action"] for e in own["events"]] == ["source.sync", "source.add"]
    assert admin_a.get("/v1/operator/audit", params={"tenant": a}).status_code == 403


def test_a_stored_source_of_a_kind_no_longer_allowed_is_not_built(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    tenant = fresh("shrunk")
    with engine.begin() as conn:
        wiki_source = create_source(conn, tenant=tenant, spec=SourceSpec(**wiki("w", "T")))
        files = create_source(
            conn,
            tenant=tenant,
            spec=SourceSpec(name="f", kind="files", collection="c", config={"path": str(tmp_path)}),
        )
    assert build_context(wiki_source, settings, engine)[2].tenant == tenant
    change_policy(
        engine,
        Principal.operator(tenant),
        tenant,
        lambda p: p.model_copy(update={"allowance": p.allowance.model_copy(update={"kinds": ()})}),
    )
    with pytest.raises(OutsideAllowance, match="confluence sources"):
        build_context(wiki_source, settings, engine)
    assert build_context(files, settings, engine)[2].source_id == files.id


def test_only_the_command_line_mints_operator_keys_and_nobody_mints_above_their_role(
    engine: Engine,
) -> None:
    tenant = fresh("keys")
    admin = Principal(tenant=tenant, role="admin", key_id=1)
    operator_key = Principal(tenant=tenant, role="operator", key_id=2)
    for by in (admin, operator_key):
        with pytest.raises(Forbidden, match="keys create --role operator"):
            create_key(engine, tenant=tenant, role="operator", by=by)
    with pytest.raises(Forbidden):
        create_key(engine, tenant=fresh("other"), role="reader", by=admin)
    with pytest.raises(Forbidden):
        create_key(engine, tenant=tenant, role="admin", by=Principal(tenant, "writer", 3))
    made = create_key(engine, tenant=tenant, role="writer", by=admin)
    assert create_key(engine, tenant=tenant, role="operator").role == "operator"
    events = audit_events(engine, Principal.operator(tenant), tenant=tenant, action="key.create")
    assert [(e.actor, e.details["role"]) for e in events] == [
        (CLI_ACTOR, "operator"),
        ("key:1", "writer"),
    ]
    assert made.secret not in json.dumps([e.details for e in events])
    with pytest.raises(Forbidden):
        audit_events(engine, admin)
    with pytest.raises(ConfigurationError, match="own settings"):
        change_policy(
            engine,
            Principal.operator(tenant),
            tenant,
            lambda p: p.model_copy(
                update={"allowance": p.allowance.model_copy(update={"env": ("RAGLINE_HOME",)})}
            ),
        )


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_tenant_allow_show_disallow_and_audit_from_the_command_line(engine: Engine) -> None:
    tenant = fresh("cli")
    shown = json.loads(cli("tenant", "show", tenant, "--json"))
    assert shown["allowance"]["env"] == []
    assert shown["allowance"]["public_hosts"] is True

    allowed = json.loads(
        cli(
            *("tenant", "allow", tenant, "--host", "wiki.internal", "--env", "WIKI_TOKEN"),
            *("--env", "CRM_URL", "--network", "10.20.0.0/16", "--database"),
            *("postgresql://reader@crm:5432/crm", "--folder", "/srv/share", "--kind", "files"),
            *("--no-public-hosts", "--ambient-credentials", "--redact-pii", "--json"),
        )
    )
    allowance = allowed["allowance"]
    assert allowance["hosts"] == ["wiki.internal"]
    assert allowance["env"] == ["WIKI_TOKEN", "CRM_URL"]
    assert allowance["networks"] == ["10.20.0.0/16"]
    assert allowance["databases"] == ["postgresql://reader@crm:5432/crm"]
    assert allowance["folders"] == ["/srv/share"]
    assert allowance["public_hosts"] is False
    assert allowance["ambient_credentials"] is True
    assert allowed["redact_pii"] is True
    assert json.loads(cli("tenant", "show", tenant, "--json")) == allowed
    assert tenant in json.loads(cli("tenant", "list", "--json"))

    narrowed = json.loads(
        cli(
            *("tenant", "disallow", tenant, "--env", "WIKI_TOKEN", "--kind", "sql"),
            *("--ambient-credentials", "--json"),
        )
    )
    assert narrowed["allowance"]["env"] == ["CRM_URL"]
    assert "sql" not in narrowed["allowance"]["kinds"]
    assert narrowed["allowance"]["ambient_credentials"] is False
    assert narrowed["allowance"]["hosts"] == ["wiki.internal"]

    assert "ragline's own" in cli("tenant", "allow", tenant, "--env", "RAGLINE_HOME", code=78)
    assert "address block" in cli("tenant", "allow", tenant, "--network", "ten", code=78)
    assert "--kind" in cli("tenant", "allow", tenant, "--kind", "ftp", code=2)

    events = json.loads(cli("audit", "--tenant", tenant, "--json"))
    assert [(e["action"], e["actor"]) for e in events] == [("policy.set", CLI_ACTOR)] * 2
    assert events[0]["details"]["after"]["allowance"]["env"] == ["CRM_URL"]
    assert events[1]["details"]["before"]["allowance"]["env"] == []
    human = cli("audit", "--tenant", tenant, "--action", "policy.", "--limit", "1")
    assert "policy.set" in human
    assert CLI_ACTOR in human
