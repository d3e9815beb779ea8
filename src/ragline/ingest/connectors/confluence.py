"""The pages of one Confluence space (Cloud or Data Center, REST API v1), synced
incrementally by their last-modified time.

    config = ConfluenceConfig(base_url="https://wiki.example.com", space="ENG",
                              token_env="CONFLUENCE_TOKEN")
    source = get_kind("confluence").build(config, context)   # reads $CONFLUENCE_TOKEN
    changes = source.changes({})        # every page of the space, the first time
    changes = source.changes(state)     # pages modified since the saved watermark
    items = list(source.list())         # every current page: finds deleted ones
    html = source.read(items[0])        # the page, rendered, as an HTML document

Pages are found with CQL (``/rest/api/content/search``), following ``_links.next``
from one batch of results to the next; a link is resolved against ``base_url``, so the
token is never sent to another host. Data Center takes a personal access token as
``Authorization: Bearer``; Cloud takes an API token with the account's email as
``username`` (basic auth), and its ``base_url`` ends in ``/wiki``.

An incremental sync asks for the pages modified at or after the watermark (the newest
``version.when`` seen) less ``lookback_seconds``. CQL reads its dates, to the minute,
in a time zone of Confluence's own (the server's or the user's profile on Data Center,
the site's on Cloud): ``timezone`` names it; by default the date is written in the
offset of Confluence's own timestamps, which is right on Data Center. Cloud writes its
timestamps in UTC, so a Cloud site on another zone needs ``timezone``.
Deleted pages are found by a full sync: the listing is every current page of the
space, and the pipeline tombstones the pages it no longer holds.

A page's etag is its version number, so a page seen again costs no read. Bodies are
fetched one page at a time, rendered (``body.view``: macros expanded), only for pages
whose version moved; a listing holds no bodies. What macros pull in from elsewhere (an
included page, a Jira query) is refreshed when the page itself gets a new version.

A new version that only re-renders the page changes nothing in the index: before the
HTML parser sees a body, every attribute but ``href``, ``colspan`` and ``rowspan`` is
dropped (macro and anchor ids, ``data-*``, classes, styles), as are comments, anchor
targets and tables of contents, and runs of whitespace outside ``<pre>`` become one
space. Dropping classes and ids also keeps the parser's boilerplate rules from taking
page content for navigation (Confluence gives a heading "Menu" the id ``Page-Menu``).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragline.errors import ConfigurationError, IngestError, SourceUnavailable
from ragline.ingest.chunking import ChunkProfile
from ragline.ingest.connectors.base import Changes, SourceItem
from ragline.ingest.connectors.confluence_pages import page_document
from ragline.ingest.connectors.kinds import Kind, SourceContext
from ragline.logs import get_logger
from ragline.netguard import NetGuard
from ragline.retry import Backoff, send_with_retries

log = get_logger(__name__)

_API = "/rest/api"
_LIST_EXPAND = "version,space,ancestors"
_READ_EXPAND = "body.view,version"
_CQL_DATE = "%Y-%m-%d %H:%M"
_RETRIES = 3  # answers 429 and 503 are retried this many times, after Retry-After
_MAX_WAIT = 30.0


class ConfluenceConfig(BaseModel):
    """One space of a Confluence site."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        description="The site: https://wiki.example.com (Data Center) or "
        "https://<site>.atlassian.net/wiki (Cloud)."
    )
    space: str = Field(min_length=1, description="The space key, e.g. ENG.")
    token_env: str = Field(
        min_length=1,
        description="Environment variable holding a personal access token (Data Center) "
        "or an API token (Cloud, with username).",
    )
    username: str | None = Field(
        default=None, description="Cloud: the account's email; the token is then a password."
    )
    cql: str | None = Field(
        default=None, description='Extra CQL filter on the pages, e.g. label = "public".'
    )
    page_size: int = Field(default=50, ge=1, le=250, description="Pages asked per request.")
    lookback_seconds: int = Field(
        default=300, ge=0, description="How far before the watermark an incremental sync looks."
    )
    timezone: str | None = Field(
        default=None,
        description="Time zone CQL reads dates in (IANA name); default: the offset of "
        "Confluence's timestamps.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per request.")

    @field_validator("base_url")
    @classmethod
    def _site(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        if value.endswith(_API):
            raise ValueError(f"give the site's URL, without {_API}")
        return value

    @field_validator("cql")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is not None and re.search(r"\border\s+by\b", value, re.IGNORECASE):
            raise ValueError("a filter only: the source orders the pages itself")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(
                    f"unknown time zone {value!r} (use a name like Europe/Paris)"
                ) from e
        return value


class ConfluenceSource:
    def __init__(
        self,
        config: ConfluenceConfig,
        *,
        token: str,
        name: str | None = None,
        profile: ChunkProfile | None = None,
        guard: NetGuard | None = None,
    ) -> None:
        self.config = config
        self.name = name or f"confluence:{config.base_url}/{config.space}"
        self.profile = profile
        auth = httpx.BasicAuth(config.username, token) if config.username else None
        headers = {"Accept": "application/json"}
        if auth is None:
            headers["Authorization"] = f"Bearer {token}"
        # Every request, redirects included, and every connection checked by the guard.
        transport = guard.transport() if guard is not None else None
        self._client = httpx.Client(
            base_url=config.base_url,
            auth=auth,
            headers=headers,
            timeout=config.timeout,
            transport=transport,
            trust_env=guard is None,
            follow_redirects=guard is not None,
            max_redirects=5,
        )
        self._newest: dt.datetime | None = None

    def list(self) -> Iterator[SourceItem]:
        self._check_space()
        self._newest = None
        yield from self._search(self._cql(since=None))

    def changes(self, state: dict[str, Any]) -> Changes:
        self._check_space()
        watermark = _parse_when(state.get("watermark"))
        self._newest = watermark
        since = None
        if watermark is not None:
            since = watermark - dt.timedelta(seconds=self.config.lookback_seconds)
            if self.config.timezone:
                since = since.astimezone(zoneinfo.ZoneInfo(self.config.timezone))
        return Changes(items=list(self._search(self._cql(since=since))))

    def checkpoint(self) -> dict[str, Any]:
        return {"watermark": self._newest.isoformat()} if self._newest is not None else {}

    def read(self, item: SourceItem) -> bytes:
        page = self._get(
            f"{_API}/content/{quote(item.doc_id, safe='')}",
            {"expand": _READ_EXPAND},
            what=f"page {item.doc_id}",
            page=item.doc_id,
        )
        title = str(page.get("title") or item.doc_id)
        body = ((page.get("body") or {}).get("view") or {}).get("value") or ""
        document = page_document(title, str(body))
        if document is None:
            raise IngestError(f"page {item.doc_id} ({title!r}) has no text: its body is empty")
        return document.encode("utf-8")

    def close(self) -> None:
        self._client.close()

    def _cql(self, *, since: dt.datetime | None) -> str:
        clauses = [f"space = {_quoted(self.config.space)}", "type = page"]
        if since is not None:
            clauses.append(f'lastmodified >= "{since.strftime(_CQL_DATE)}"')
        if self.config.cql:
            clauses.append(f"({self.config.cql})")
        # A stable order: an edit during a listing does not move pages across batches.
        return " and ".join(clauses) + " order by created asc"

    def _search(self, cql: str) -> Iterator[SourceItem]:
        """Every page ``cql`` finds, batch after batch, each once."""
        url: str | None = f"{_API}/content/search"
        params: dict[str, Any] | None = {
            "cql": cql,
            "limit": self.config.page_size,
            "expand": _LIST_EXPAND,
        }
        seen: set[str] = set()
        followed: set[str] = set()
        while url is not None:
            answer = self._get(url, params, what=f"the pages of space {self.config.space}")
            links = answer.get("_links") or {}
            base = str(links.get("base") or self.config.base_url).rstrip("/")
            results = answer.get("results")
            if not isinstance(results, list):
                raise SourceUnavailable(
                    f"Confluence's search answer has no results list; check base_url "
                    f"({self.config.base_url})"
                )
            for page in results:
                item = self._item(page, base)
                if item.doc_id not in seen:
                    seen.add(item.doc_id)
                    yield item
            url, params = self._next(links.get("next")), None
            if url is not None:
                if url in followed:
                    raise SourceUnavailable(f"Confluence's search links back to {url}")
                followed.add(url)
        log.debug("confluence_listed", space=self.config.space, pages=len(seen))

    def _next(self, link: object) -> str | None:
        """The next batch's URL: a link relative to the site, or one within it."""
        if not link:
            return None
        url = str(link)
        if url.startswith("/"):
            return url
        if url.startswith(self.config.base_url + "/"):
            return url[len(self.config.base_url) :]
        raise SourceUnavailable(f"Confluence's search links outside {self.config.base_url}: {url}")

    def _item(self, page: Any, base: str) -> SourceItem:
        if not isinstance(page, dict) or not page.get("id"):
            raise SourceUnavailable(
                f"Confluence's search answered a result without an id: {page!r}"
            )
        page_id = str(page["id"])
        title = str(page.get("title") or page_id)
        version = page.get("version") or {}
        number = version.get("number")
        when = _parse_when(version.get("when"))
        if when is not None and (self._newest is None or when > self._newest):
            self._newest = when
        webui = (page.get("_links") or {}).get("webui")
        uri = f"{base}{webui}" if webui else f"{base}/pages/viewpage.action?pageId={page_id}"
        by = version.get("by") or {}
        modifier = by.get("displayName") or by.get("publicName") or by.get("username")
        metadata: dict[str, Any] = {
            "space": (page.get("space") or {}).get("key") or self.config.space,
            "page_id": page_id,
            "version": number,
            "ancestors": [
                str(a["title"])
                for a in page.get("ancestors") or []
                if isinstance(a, dict) and a.get("title")
            ],
            "last_modified_by": modifier,
        }
        return SourceItem(
            doc_id=page_id,
            name=f"{title.replace('/', '-')}.html",
            uri=uri,
            etag=str(number) if number is not None else None,
            modified=when,
            metadata={key: value for key, value in metadata.items() if value is not None},
            profile=self.profile,
        )

    def _check_space(self) -> None:
        """Fail before listing when the space is not there: an empty listing of a
        mistyped key would otherwise delete every page indexed from the space."""
        self._get(
            f"{_API}/space/{quote(self.config.space, safe='~')}",
            None,
            what=f"space {self.config.space}",
            space=True,
        )

    def _get(
        self,
        url: str,
        params: dict[str, Any] | None,
        *,
        what: str,
        page: str | None = None,
        space: bool = False,
    ) -> dict[str, Any]:
        """The JSON object at ``url``; Confluence being down or refusing the
        credentials stops the run, a page that is gone or restricted fails alone."""
        site = self.config.base_url
        try:
            response = send_with_retries(
                lambda: self._client.get(url, params=params),
                attempts=_RETRIES + 1,
                backoff=Backoff(first=1.0, cap=_MAX_WAIT),
                transient=lambda e: False,
                statuses=frozenset({429, 503}),
            )
        except httpx.TimeoutException as e:
            raise SourceUnavailable(
                f"Confluence at {site} did not answer within {self.config.timeout:g} s ({what})"
            ) from e
        except httpx.HTTPError as e:
            raise SourceUnavailable(
                f"cannot reach Confluence at {site}: {e}; check base_url and the network"
            ) from e
        status = response.status_code
        if status == 401:
            user = "a valid personal access token"
            if self.config.username:
                user = f"an API token of {self.config.username}"
            raise SourceUnavailable(
                f"Confluence at {site} refused the credentials (HTTP 401): check that the "
                f"environment variable {self.config.token_env} holds {user}, not expired"
            )
        if page is not None and status in (400, 403, 404):
            reason = {
                400: f"cannot be read ({_message(response)})",
                403: "is restricted from the token's user",
                404: "no longer exists",
            }[status]
            raise IngestError(f"page {page} {reason} (HTTP {status})")
        if space and status in (403, 404):
            raise SourceUnavailable(
                f"space {self.config.space} does not exist at {site}, or the token's user "
                f"cannot view it (HTTP {status}); check the space key and its permissions"
            )
        if status == 400:
            raise ConfigurationError(
                f"Confluence refused the search of space {self.config.space} (HTTP 400: "
                f"{_message(response)}); check the source's cql"
            )
        if status != 200:
            raise SourceUnavailable(
                f"Confluence at {site} answered HTTP {status} for {what}: {_message(response)}"
            )
        try:
            data = response.json()
        except ValueError as e:
            raise SourceUnavailable(
                f"Confluence at {site} did not answer JSON for {what}; check base_url "
                "(Cloud: https://<site>.atlassian.net/wiki)"
            ) from e
        if not isinstance(data, dict):
            raise SourceUnavailable(
                f"Confluence at {site} answered {what} with {type(data).__name__}"
            )
        return data


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_when(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        log.warning("confluence_bad_timestamp", value=value)
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:300]
    return response.reason_phrase


def _build(config: ConfluenceConfig, context: SourceContext) -> ConfluenceSource:
    what = f"confluence source {context.name}"
    token = context.allowance.secret(config.token_env, what, context.settings)
    guard = NetGuard(context.allowance, what)
    guard.check_url(config.base_url)
    if not token:
        raise ConfigurationError(
            f"confluence source {context.name}: the environment variable {config.token_env} "
            "is empty; set it to the access token"
        )
    return ConfluenceSource(
        config,
        token=token,
        name=context.name,
        profile=context.profiles.for_category("page"),
        guard=guard,
    )


KIND = Kind(
    name="confluence",
    config=ConfluenceConfig,
    build=_build,
    summary="The pages of one Confluence space (Cloud or Data Center), rendered.",
)
