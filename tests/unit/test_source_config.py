"""Source configuration rules that need no database: secrets, profiles, schedules,
change sets, and the Slack summary of a run."""

from __future__ import annotations

import datetime as dt

import pytest

from ragline.errors import ConfigurationError
from ragline.ingest.connectors.base import Changes, SourceItem
from ragline.ingest.connectors.kinds import Profiles
from ragline.ingest.versions import latest_versions
from ragline.secrets import check_no_secrets
from ragline.sources.notify import slack_message
from ragline.sources.registry import get_kind
from ragline.sources.store import SourceSpec, next_time


@pytest.mark.parametrize(
    "config",
    [
        {"password": "hunter2"},
        {"access_token": "abc"},
        {"auth": {"secret_access_key": "abc"}},
        {"apikey": "abc"},
        {"url": "postgresql://app:hunter2@db/news"},
        {"events_url": "amqp://guest:guest@mq//"},
    ],
)
def test_secrets_in_clear_are_refused_with_the_way_out(config: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="_env"):
        check_no_secrets(config)


def test_names_of_variables_and_ordinary_keys_pass() -> None:
    check_no_secrets(
        {
            "token_env": "WIKI_TOKEN",
            "max_tokens": 400,
            "url": "postgresql://app@db/news",
            "password": None,
            "nested": {"secret_access_key_env": "AWS_SECRET"},
        }
    )


def test_profiles_by_category_with_defaults_and_limits() -> None:
    profiles = Profiles.parse(
        {"default": {"max_tokens": 300}, "video": {"max_tokens": 600, "overlap_tokens": 40}}
    )
    video = profiles.for_category("video")
    assert video is not None
    assert (video.max_tokens, video.overlap_tokens) == (600, 40)
    default = profiles.for_category("article")
    assert default is not None
    assert default.max_tokens == 300
    assert profiles.for_category(None) is default
    assert Profiles.parse({}).for_category("video") is None
    # Each profile's settings are part of its fingerprint, hence of the ledger version.
    assert video.fingerprint() != default.fingerprint()
    with pytest.raises(ConfigurationError, match="overlap_tokens"):
        Profiles.parse({"video": {"max_tokens": 100, "overlap_tokens": 100}})
    with pytest.raises(ConfigurationError, match="unknown settings"):
        Profiles.parse({"video": {"size": 100}})


def test_a_spec_is_checked_before_it_is_stored() -> None:
    base = {
        "name": "news",
        "kind": "sql",
        "collection": "news",
        "config": {
            "url_env": "NEWS_DB",
            "table": "articles",
            "text_columns": ["body"],
            "updated_column": "updated_at",
        },
    }
    SourceSpec(**base, schedule="*/5 * * * *").validate()
    with pytest.raises(ConfigurationError, match="cron"):
        SourceSpec(**base, schedule="hourly").validate()
    with pytest.raises(ConfigurationError, match="environments"):
        SourceSpec(**base, environments=("prod",)).validate()
    with pytest.raises(ConfigurationError, match="source name"):
        SourceSpec(**{**base, "name": "bad name!"}).validate()
    with pytest.raises(ConfigurationError, match="exactly one of table and query"):
        get_kind("sql").validate({**base["config"], "query": "SELECT 1"})
    with pytest.raises(ConfigurationError, match="unknown source kind"):
        get_kind("ftp")


def test_cron_with_seconds_and_the_next_time() -> None:
    now = dt.datetime(2026, 11, 25, 10, 7, 3, tzinfo=dt.UTC)
    assert next_time("*/5 * * * *", now) == dt.datetime(2026, 11, 25, 10, 10, tzinfo=dt.UTC)
    assert next_time("* * * * * */10", now) == dt.datetime(2026, 11, 25, 10, 7, 10, tzinfo=dt.UTC)
    assert next_time(None, now) is None


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, 0, 0, second, tzinfo=dt.UTC)


def item(doc_id: str, second: int) -> SourceItem:
    return SourceItem(doc_id=doc_id, name=f"{doc_id}.json", uri="", modified=at(second))


def test_a_change_set_keeps_the_last_version_of_each_document() -> None:
    changes = Changes(
        items=[item("a", 3), item("a", 1), item("b", 1), item("c", 5)],
        deleted={"b": at(2), "c": at(4), "d": None},
    )
    items, deleted = latest_versions(changes)
    assert [(i.doc_id, i.modified) for i in items] == [("a", at(3)), ("c", at(5))]
    assert deleted == {"b": at(2), "d": None}


def test_the_slack_summary_names_the_source_counts_and_failures() -> None:
    run = {
        "status": "failed",
        "source_name": "news",
        "tenant": "acme",
        "collection": "articles",
        "added": 2,
        "updated": 1,
        "unchanged": 10,
        "deleted": 0,
        "failed": 7,
        "seconds": 3.25,
        "errors": [{"doc_id": f"row-{n}", "reason": "the file is empty"} for n in range(7)],
    }
    message = slack_message(run)
    assert message["text"].startswith(":x: ragline sync of news (acme/articles) failed in 3.2 s")
    assert "2 added, 1 updated, 10 unchanged, 0 deleted, 7 failed" in message["text"]
    body = message["blocks"][0]["text"]["text"]
    assert "`row-0`: the file is empty" in body
    assert "… and 2 more" in body
