"""The connector contract (``ragline.testing.connector``) applied to the connectors:
files in a folder, a PostgreSQL table, a Confluence space (the local server speaking
its REST API) and an S3 bucket (moto)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.ingest.connectors.confluence import ConfluenceConfig, ConfluenceSource
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.connectors.kinds import Profiles, SourceContext
from ragline.ingest.connectors.s3.source import KeyFilter, S3Source
from ragline.ingest.connectors.sql_table import SqlConfig, SqlTableSource
from ragline.testing.connector import COLLECTION, ConnectorContract, ConnectorHarness
from tests import services
from tests.integration.confluence_server import Wiki, confluence_server
from tests.integration.s3_server import moto_server, s3_client
from tests.integration.sources_util import local_allowance

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def markdown(key: str, text: str) -> bytes:
    return f"# {key.title()}\n\n{text}\n".encode()


# -- files ---------------------------------------------------------------------------


class FileHarness:
    incremental = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir()
        self.clock = 1_700_000_000

    def _path(self, key: str) -> Path:
        return self.root / "notes" / f"{key}.md"

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        self.clock += 10  # every write a later mtime, whatever the file system's resolution
        os.utime(path, (self.clock, self.clock))

    def source(self) -> FileSource:
        return FileSource(self.root)

    def add(self, key: str, text: str) -> str:
        self._write(key, markdown(key, text))
        return f"notes/{key}.md"

    def edit(self, key: str, text: str) -> None:
        self._write(key, markdown(key, text))

    def delete(self, key: str) -> None:
        self._path(key).unlink()

    def corrupt(self, key: str) -> None:
        self._write(key, b"")  # an empty file


class TestFileSource(ConnectorContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ConnectorHarness:
        return FileHarness(tmp_path / "folder")


# -- a PostgreSQL table ----------------------------------------------------------------


class SqlHarness:
    incremental = True

    def __init__(self, db: Engine, table: str, context: SourceContext) -> None:
        self.db = db
        self.table = table
        self.context = context
        self.ids: dict[str, int] = {}
        self.clock = T0

    def _put(self, key: str, body: str | None) -> None:
        self.clock += dt.timedelta(minutes=10)
        row_id = self.ids.setdefault(key, len(self.ids) + 1)
        with self.db.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {self.table} WHERE id = :id"), {"id": row_id})
            conn.execute(
                sa.text(
                    f"INSERT INTO {self.table} (id, title, body, updated_at) "
                    "VALUES (:id, :title, :body, :updated_at)"
                ),
                {"id": row_id, "title": key.title(), "body": body, "updated_at": self.clock},
            )

    def source(self) -> SqlTableSource:
        config = SqlConfig(
            url=self.db.url.render_as_string(hide_password=False),
            table=self.table,
            id_column="id",
            title_columns=["title"],
            text_columns=["body"],
            updated_column="updated_at",
            format="markdown",
            lookback_seconds=60,
        )
        return SqlTableSource(config, self.context)

    def add(self, key: str, text: str) -> str:
        self._put(key, text)
        return str(self.ids[key])

    def edit(self, key: str, text: str) -> None:
        self._put(key, text)

    def delete(self, key: str) -> None:
        with self.db.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {self.table} WHERE id = :id"), {"id": self.ids[key]})

    def corrupt(self, key: str) -> None:
        self._put(key, None)  # a row without text: a title alone


class TestSqlTableSource(ConnectorContract):
    @pytest.fixture
    def harness(
        self, settings: Settings, engine: Engine, postgres_url: str
    ) -> Iterator[ConnectorHarness]:
        db = sa.create_engine(services.sqlalchemy_url(postgres_url))
        table = f"contract_{uuid.uuid4().hex[:8]}"
        try:
            with db.begin() as conn:
                conn.execute(
                    sa.text(
                        f"CREATE TABLE {table} (id integer PRIMARY KEY, title varchar(200) "
                        "NOT NULL, body text, updated_at timestamptz NOT NULL)"
                    )
                )
        except sa.exc.OperationalError as e:
            pytest.fail(f"the postgresql server of this machine is not running: {e}")
        context = SourceContext(
            name=f"sql:{table}",
            source_id=uuid.uuid4(),
            tenant=settings.tenant,
            collection=COLLECTION,
            settings=settings,
            engine=engine,
            profiles=Profiles(),
            allowance=local_allowance(),
        )
        yield SqlHarness(db, table, context)
        with db.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        db.dispose()


# -- a Confluence space ----------------------------------------------------------------


class ConfluenceHarness:
    incremental = True
    token = "pat-contract"

    def __init__(self, wiki: Wiki, site: str) -> None:
        self.wiki = wiki
        self.site = site
        self.ids: dict[str, str] = {}
        self.opened: list[ConfluenceSource] = []

    def source(self) -> ConfluenceSource:
        config = ConfluenceConfig(
            base_url=self.site, space="ENG", token_env="TEST_CONFLUENCE_TOKEN"
        )
        source = ConfluenceSource(config, token=self.token)
        self.opened.append(source)
        return source

    def add(self, key: str, text: str) -> str:
        page = self.wiki.add_page("ENG", key.title(), f"<p>{text}</p>")
        self.ids[key] = page.id
        return page.id

    def edit(self, key: str, text: str) -> None:
        self.wiki.edit(self.ids[key], f"<p>{text}</p>")

    def delete(self, key: str) -> None:
        self.wiki.delete(self.ids[key])

    def corrupt(self, key: str) -> None:
        self.wiki.edit(self.ids[key], "")  # a page without a body


class TestConfluenceSource(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Iterator[ConnectorHarness]:
        wiki = Wiki(token=ConfluenceHarness.token, max_limit=2)  # batches of two pages
        wiki.spaces["ENG"] = "Engineering"
        with confluence_server(wiki) as site:
            harness = ConfluenceHarness(wiki, site)
            yield harness
            for source in harness.opened:
                source.close()


# -- an S3 bucket ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


class S3Harness:
    incremental = False

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def source(self) -> S3Source:
        return S3Source(self.client, self.bucket, keys=KeyFilter("docs/"), page_size=2)

    def add(self, key: str, text: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=f"docs/{key}.md", Body=markdown(key, text))
        return f"docs/{key}.md"

    def edit(self, key: str, text: str) -> None:
        self.add(key, text)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"docs/{key}.md")

    def corrupt(self, key: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"docs/{key}.md", Body=b"")


class TestS3Source(ConnectorContract):
    @pytest.fixture
    def harness(self, s3_endpoint: str) -> ConnectorHarness:
        client = s3_client(s3_endpoint)
        bucket = f"contract-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        return S3Harness(client, bucket)
