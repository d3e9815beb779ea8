"""A local HTTP server speaking the part of the Confluence REST API (v1) that ragline
uses, with Data Center's JSON shapes, for testing the connector against real HTTP::

    wiki = Wiki(token="s3cret")
    page = wiki.add_page("ENG", "Runbooks", "<p>Where the runbooks live.</p>")
    with confluence_server(wiki) as base_url:   # http://127.0.0.1:PORT/wiki
        ...
        wiki.edit(page.id, "<p>Moved.</p>")      # a new version, modified now

Endpoints: ``GET /rest/api/space/{key}``, ``GET /rest/api/content/{id}`` and ``GET
/rest/api/content/search`` with CQL (``and`` of ``space``, ``type``, ``label``,
``title`` equality and ``lastmodified``/``created`` comparisons, dates read in the
wiki's time zone to the minute; ``order by``), ``limit`` capped at ``max_limit`` and
batches linked by ``_links.next`` relative to ``_links.base``. Fields are returned
only when ``expand`` asks for them (``body.view``, ``version``, ``space``,
``ancestors``), as Confluence does. Every request must carry ``Authorization: Bearer
<token>`` (or basic auth with ``username``). The wiki records the searches and page
reads it answered, and can be told to throttle (429) or to fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

from tests.integration.json_handler import JsonHandler

CONTEXT = "/wiki"
_AND = re.compile(r"\s+and\s+(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", re.IGNORECASE)
_CLAUSE = re.compile(r'^(\w+)\s*(>=|<=|!=|=|>|<)\s*("(?:[^"\\]|\\.)*"|[\w~.-]+)$')
_ORDER = re.compile(r"\s+order\s+by\s+(\w+)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


class CqlError(ValueError):
    pass


@dataclass
class Page:
    id: str
    space: str
    title: str
    body: str
    created: dt.datetime
    when: dt.datetime
    parent: str | None = None
    version: int = 1
    author: str = "Ada Lovelace"
    labels: list[str] = field(default_factory=list)


@dataclass
class Wiki:
    token: str
    username: str | None = None  # basic auth (Cloud) instead of a bearer token
    tz: dt.tzinfo = dt.UTC  # the zone of timestamps and of CQL dates
    public_base: str | None = None  # ``_links.base``; the server's own URL when None
    max_limit: int = 25
    spaces: dict[str, str] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)
    throttle: int = 0  # answer this many requests with 429 first
    fail_status: int | None = None  # answer every request with this status
    searches: list[str] = field(default_factory=list)  # the CQL of each search request
    reads: list[str] = field(default_factory=list)  # ids of the pages read one by one
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(65537))

    def add_page(
        self,
        space: str,
        title: str,
        body: str,
        *,
        parent: Page | None = None,
        when: dt.datetime | None = None,
        labels: list[str] | None = None,
    ) -> Page:
        when = _milliseconds(when or dt.datetime.now(dt.UTC))
        with self.lock:
            self.spaces.setdefault(space, space.title())
            page = Page(
                id=str(next(self._ids)),
                space=space,
                title=title,
                body=body,
                created=when,
                when=when,
                parent=parent.id if parent else None,
                labels=labels or [],
            )
            self.pages[page.id] = page
        return page

    def edit(
        self,
        page_id: str,
        body: str,
        *,
        title: str | None = None,
        when: dt.datetime | None = None,
        author: str | None = None,
    ) -> Page:
        """Save a new version of a page."""
        with self.lock:
            page = self.pages[page_id]
            page.body = body
            page.title = title or page.title
            page.version += 1
            page.when = _milliseconds(when or dt.datetime.now(dt.UTC))
            page.author = author or page.author
        return page

    def delete(self, page_id: str) -> None:
        with self.lock:
            del self.pages[page_id]

    def webui(self, page: Page) -> str:
        return f"/display/{page.space}/{quote_plus(page.title)}"

    def timestamp(self, when: dt.datetime) -> str:
        return when.astimezone(self.tz).isoformat(timespec="milliseconds")

    def ancestors(self, page: Page) -> list[Page]:
        chain: list[Page] = []
        parent = page.parent
        while parent is not None and parent in self.pages:
            chain.insert(0, self.pages[parent])
            parent = self.pages[parent].parent
        return chain

    def content(self, page: Page, expand: set[str], base: str) -> dict[str, Any]:
        """A page as Confluence shows it, with the fields ``expand`` asks for."""
        data: dict[str, Any] = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "_links": {
                "webui": self.webui(page),
                "tinyui": f"/x/{page.id}",
                "self": f"{base}/rest/api/content/{page.id}",
            },
            "_expandable": {
                key: "" for key in ("body", "version", "space", "ancestors") if key not in expand
            },
        }
        if "version" in expand:
            data["version"] = {
                "by": {
                    "type": "known",
                    "username": page.author.split()[0].lower(),
                    "displayName": page.author,
                },
                "when": self.timestamp(page.when),
                "number": page.version,
                "minorEdit": False,
                "message": "",
            }
        if "space" in expand:
            data["space"] = {
                "id": 98305,
                "key": page.space,
                "name": self.spaces[page.space],
                "type": "global",
                "_links": {"webui": f"/display/{page.space}"},
            }
        if "ancestors" in expand:
            data["ancestors"] = [
                {"id": a.id, "type": "page", "status": "current", "title": a.title}
                for a in self.ancestors(page)
            ]
        if "body.view" in expand:
            data["body"] = {"view": {"value": page.body, "representation": "view"}}
        return data

    def search(self, cql: str) -> list[Page]:
        """The pages ``cql`` finds, in its order (creation order by default)."""
        order = _ORDER.search(cql)
        where = cql[: order.start()] if order else cql
        tests = [self._clause(part) for part in _AND.split(where.strip()) if part]
        found = [p for p in self.pages.values() if all(test(p) for test in tests)]
        if order:
            key = order.group(1).lower()
            if key not in ("created", "lastmodified", "title"):
                raise CqlError(f"cannot order by {key}")
            found.sort(
                key=lambda p: (
                    p.title if key == "title" else (p.created if key == "created" else p.when)
                ),
                reverse=(order.group(2) or "asc").lower() == "desc",
            )
        return found

    def _clause(self, text: str) -> Any:
        text = text.strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        match = _CLAUSE.match(text)
        if match is None:
            raise CqlError(f"Could not parse cql : {text}")
        name, op, raw = match.group(1).lower(), match.group(2), match.group(3)
        value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
        if name in ("lastmodified", "created"):
            at = self._date(value)
            compare = {
                ">=": lambda a: a >= at,
                ">": lambda a: a > at,
                "<=": lambda a: a <= at,
                "<": lambda a: a < at,
            }.get(op)
            if compare is None:
                raise CqlError(f"operator {op} is not supported for {name}")
            return lambda p: compare(p.when if name == "lastmodified" else p.created)
        if op != "=":
            raise CqlError(f"operator {op} is not supported for {name}")
        fields = {
            "space": lambda p: p.space == value,
            "type": lambda p: value == "page",
            "label": lambda p: value in p.labels,
            "title": lambda p: p.title == value,
        }
        if name not in fields:
            raise CqlError(f"unknown field {name}")
        return fields[name]

    def _date(self, value: str) -> dt.datetime:
        for pattern in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
            try:
                return dt.datetime.strptime(value, pattern).replace(tzinfo=self.tz)
            except ValueError:
                continue
        raise CqlError(f"cannot parse date {value!r}")


def _milliseconds(when: dt.datetime) -> dt.datetime:
    """Confluence keeps times to the millisecond."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


class _Handler(JsonHandler):
    server: _Server

    def do_GET(self) -> None:
        wiki = self.server.wiki
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if not self._authorised():
            self._json(401, {"statusCode": 401, "message": "Authentication required"})
            return
        with wiki.lock:
            if wiki.throttle:
                wiki.throttle -= 1
                self._json(429, {"message": "Rate limited"}, {"Retry-After": "0"})
                return
        if wiki.fail_status is not None:
            self._json(wiki.fail_status, {"statusCode": wiki.fail_status, "message": "failing"})
            return
        if not url.path.startswith(CONTEXT + "/rest/api/"):
            self._json(404, {"statusCode": 404, "message": f"no route {url.path}"})
            return
        route = url.path[len(CONTEXT) + len("/rest/api/") :]
        base = wiki.public_base or f"http://{self.headers['Host']}{CONTEXT}"
        expand = set(query.get("expand", "").split(",")) - {""}
        with wiki.lock:
            if route == "content/search":
                self._search(wiki, query, expand, base)
            elif route.startswith("content/") and route.count("/") == 1:
                page = wiki.pages.get(route.split("/")[1])
                wiki.reads.append(route.split("/")[1])
                if page is None:
                    message = f"No content found with id: ContentId{{id={route.split('/')[1]}}}"
                    self._json(404, {"statusCode": 404, "message": message})
                else:
                    self._json(200, wiki.content(page, expand, base))
            elif route.startswith("space/") and route.count("/") == 1:
                key = route.split("/")[1]
                if key not in wiki.spaces:
                    self._json(404, {"statusCode": 404, "message": f"No space with key : {key}"})
                else:
                    self._json(200, {"id": 98305, "key": key, "name": wiki.spaces[key]})
            else:
                self._json(404, {"statusCode": 404, "message": f"no route {url.path}"})

    def _search(self, wiki: Wiki, query: dict[str, str], expand: set[str], base: str) -> None:
        cql = query.get("cql", "")
        wiki.searches.append(cql)
        try:
            found = wiki.search(cql)
        except CqlError as e:
            self._json(400, {"statusCode": 400, "message": str(e)})
            return
        start = int(query.get("start", "0"))
        limit = min(int(query.get("limit", "25")), wiki.max_limit)
        batch = found[start : start + limit]
        links = {
            "base": base,
            "context": CONTEXT,
            "self": f"{base}/rest/api/content/search?{urlencode(query)}",
        }
        if start + limit < len(found):
            following = {**query, "limit": str(limit), "start": str(start + limit)}
            links["next"] = f"/rest/api/content/search?{urlencode(following)}"
        self._json(
            200,
            {
                "results": [wiki.content(page, expand, base) for page in batch],
                "start": start,
                "limit": limit,
                "size": len(batch),
                "_links": links,
            },
        )

    def _authorised(self) -> bool:
        wiki = self.server.wiki
        header = self.headers.get("Authorization", "")
        if wiki.username is None:
            return header == f"Bearer {wiki.token}"
        expected = base64.b64encode(f"{wiki.username}:{wiki.token}".encode()).decode()
        return header == f"Basic {expected}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    wiki: Wiki


@contextmanager
def confluence_server(wiki: Wiki) -> Iterator[str]:
    """Serves ``wiki``; yields the site's URL (``http://127.0.0.1:PORT/wiki``)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.wiki = wiki
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{CONTEXT}"
    finally:
        server.shutdown()
        server.server_close()
