"""What a tenant's sources may reach: addresses in every spelling, hosts, URL prefixes,
redirects, DNS answers checked as connections are made, environment variables,
folders and databases."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from ragline.config import Settings
from ragline.errors import OutsideAllowance
from ragline.netguard import NetGuard
from ragline.reach import Allowance, internal, literal_address

WHAT = "test source"


class Recorder(BaseHTTPRequestHandler):
    """Answers 200, or redirects to ``?to=``; records each request's path and Host."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, self.headers.get("Host", "")))
        if "to=" in self.path:
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def refused(allowance: Allowance, url: str) -> str:
    with pytest.raises(OutsideAllowance) as caught:
        NetGuard(allowance, WHAT).check_url(url)
    return str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1:8080/",
        "http://localhost/",
        "http://localhost./",
        "http://LOCALHOST../admin",
        "http://public@127.0.0.1/",
        "http://wiki.example.com:80@127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:a00:1::]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_internal_addresses_are_refused_in_every_spelling(url: str) -> None:
    message = refused(Allowance(), url)
    assert url in message
    assert "ragline tenant allow" in message


def test_a_refusal_names_what_the_tenant_wrote_never_the_resolved_address() -> None:
    message = refused(Allowance(), "http://localhost:9/")
    assert "localhost" in message
    assert "127.0.0.1" not in message
    assert "::1" not in message


def test_address_classification() -> None:
    assert literal_address("2130706433") == literal_address("127.0.0.1")
    assert literal_address("0x7f.1") == literal_address("127.0.0.1")
    assert literal_address("[::1]") is not None
    assert literal_address("deadbeef") is None
    assert literal_address("example.com.") is None
    for text in ("93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"):
        address = literal_address(text)
        assert address is not None, text
        assert not internal(address), text


def test_hosts_networks_and_prefixes_allow_what_they_name_only() -> None:
    by_host = Allowance(public_hosts=False, hosts=("localhost", "*.corp.test:8443"))
    assert NetGuard(by_host, WHAT).check_url("http://localhost:5000/")
    assert by_host.host_allowed("wiki.corp.test", 8443)
    assert not by_host.host_allowed("wiki.corp.test", 443)
    assert not by_host.host_allowed("corp.test.evil.com", 8443)
    assert not by_host.host_allowed("evilcorp.test", 8443)
    refused(by_host, "http://127.0.0.1:5000/")  # the name is allowed, not its address

    by_network = Allowance(public_hosts=False, networks=("127.0.0.0/8",))
    assert NetGuard(by_network, WHAT).check_url("http://127.0.0.2/")
    refused(by_network, "http://[::1]/")

    by_prefix = Allowance(public_hosts=False, url_prefixes=("http://127.0.0.1:8090/wiki/",))
    assert by_prefix.prefix_allows("http://127.0.0.1:8090/wiki/rest/api/space")
    assert NetGuard(by_prefix, WHAT).check_url("http://127.0.0.1:8090/wiki")
    for outside in (
        "http://127.0.0.1:8090/admin",
        "http://127.0.0.1:8090/wiki/../admin",
        "http://127.0.0.1:8090/wikipedia",
        "http://127.0.0.1:8091/wiki/",
        "https://127.0.0.1:8090/wiki/",
        "http://127.0.0.1:8090@169.254.169.254/wiki/",
    ):
        assert not by_prefix.prefix_allows(outside), outside
        refused(by_prefix, outside)


def test_a_public_host_needs_public_hosts() -> None:
    refused(Allowance(public_hosts=False), "https://93.184.216.34/")
    assert NetGuard(Allowance(), WHAT).check_url("https://93.184.216.34/")


def test_redirects_are_followed_only_inside_the_allowance(server: int) -> None:
    prefix = f"http://127.0.0.1:{server}/wiki/"
    guard = NetGuard(Allowance(public_hosts=False, url_prefixes=(prefix,)), WHAT)
    with httpx.Client(transport=guard.transport(), follow_redirects=True) as client:
        assert client.get(f"{prefix}a?to=/wiki/b").status_code == 200
        with pytest.raises(OutsideAllowance):
            client.get(f"{prefix}a?to=/admin")
        with pytest.raises(OutsideAllowance):
            client.get(f"{prefix}a?to=http://localhost:{server}/wiki/c")
    assert [path for path, _ in Recorder.seen] == [
        "/wiki/a?to=/wiki/b",
        "/wiki/b",
        "/wiki/a?to=/admin",
        f"/wiki/a?to=http://localhost:{server}/wiki/c",
    ]


def test_dns_answers_are_checked_as_the_connection_is_made(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver answering a public address for the check, then 127.0.0.1 for the
    connection (rebinding): the connection is refused and the server hears nothing."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    guard = NetGuard(Allowance(), WHAT)
    with (
        httpx.Client(transport=guard.transport()) as client,
        pytest.raises(OutsideAllowance) as caught,
    ):
        client.get(f"http://rebind.test:{server}/secret")
    assert "127.0.0.1" not in str(caught.value)
    assert Recorder.seen == []


def test_the_connection_goes_to_the_checked_address_and_keeps_the_host_name(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "wiki.corp.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    guard = NetGuard(Allowance(public_hosts=False, networks=("127.0.0.0/8",)), WHAT)
    with httpx.Client(transport=guard.transport()) as client:
        assert client.get(f"http://wiki.corp.test:{server}/page").status_code == 200
    assert Recorder.seen == [("/page", f"wiki.corp.test:{server}")]


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(embedding_api_key_env="EMBEDDER_KEY")
    monkeypatch.setenv("WIKI_TOKEN", "t0ken")
    monkeypatch.setenv("EMBEDDER_KEY", "service-key")
    allowance = Allowance(env=("WIKI_TOKEN", "EMBEDDER_KEY", "RAGLINE_DATABASE_URL"))
    assert allowance.secret("WIKI_TOKEN", WHAT, settings) == "t0ken"
    assert allowance.secret(None, WHAT, settings) is None
    for own in ("RAGLINE_DATABASE_URL", "ragline_api_key", "EMBEDDER_KEY"):
        with pytest.raises(OutsideAllowance, match="belongs to the service"):
            allowance.secret(own, WHAT, settings)
    with pytest.raises(OutsideAllowance, match=r"tenant allow TENANT --env HOME"):
        Allowance().secret("HOME", WHAT, settings)


def test_folders_are_resolved_and_links_followed(tmp_path: Path) -> None:
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    (shared / "escape").symlink_to(private)
    allowance = Allowance(folders=(str(shared),))
    assert allowance.folder(str(shared / "docs"), WHAT) == shared.resolve() / "docs"
    for outside in (private, shared / "escape", shared / ".." / "private", Path("/etc")):
        with pytest.raises(OutsideAllowance) as caught:
            allowance.folder(str(outside), WHAT)
        assert str(private.resolve()) not in str(caught.value) or str(outside) == str(private)
    with pytest.raises(OutsideAllowance):
        Allowance().folder(str(shared), WHAT)


def test_buckets() -> None:
    Allowance().check_bucket("anything", WHAT)
    Allowance(buckets=("handbooks",)).check_bucket("handbooks", WHAT)
    with pytest.raises(OutsideAllowance, match="--bucket payroll"):
        Allowance(buckets=("handbooks",)).check_bucket("payroll", WHAT)


def test_databases(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://app@db.internal:5432/ragline")
    guard = NetGuard(Allowance(), WHAT)
    for url in (
        f"postgresql+psycopg://postgres@/ragline?host={tmp_path}/pgdata",
        "postgresql+psycopg://postgres@/ragline",
        "postgresql://reader@localhost/crm",
        "mysql+pymysql://root@127.0.0.1/mysql",
        "sqlite:////etc/passwd.db",
    ):
        with pytest.raises(OutsideAllowance) as caught:
            guard.database(url, settings)
        assert str(tmp_path) not in str(caught.value).replace(url, "")
    own = NetGuard(Allowance(hosts=("db.internal",)), WHAT)
    with pytest.raises(OutsideAllowance, match="own database"):
        own.database("postgresql+psycopg://other@db.internal/ragline", settings)

    socket_url = f"postgresql+psycopg://postgres@/ragline?host={tmp_path}/pgdata"
    allowed = NetGuard(Allowance(databases=(socket_url.replace("+psycopg", ""),)), WHAT)
    assert allowed.database(socket_url, settings).connect_args == {}

    pinned = NetGuard(Allowance(public_hosts=False, hosts=("localhost",)), WHAT).database(
        "postgresql+psycopg://reader@localhost:5433/crm", settings
    )
    assert pinned.connect_args["hostaddr"] in ("127.0.0.1", "::1")
    mysql = NetGuard(Allowance(networks=("127.0.0.0/8",)), WHAT).database(
        "mysql+pymysql://reader@127.0.0.1/crm", settings
    )
    assert mysql.url.host == "127.0.0.1"
