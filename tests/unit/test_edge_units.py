"""The edge's pieces on their own: the validation answer that never fails to render,
the JSON body checks, and console logs free of control characters."""

from __future__ import annotations

import io
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from ragline.api.errors import install
from ragline.api.jsonbody import MAX_DEPTH, refusal
from ragline.config import Settings
from ragline.logs import configure_logging, get_logger


class Body(BaseModel):
    name: str
    tags: dict[str, int] = {}


def validating_app() -> TestClient:
    app = FastAPI()
    install(app)

    @app.post("/things")
    def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret path /srv/ragline/home")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"name": 1e400}',
        b'{"name": "x", "tags": {"\\ud800": "a"}}',
    ],
)
def test_validation_errors_render_whatever_the_input(body: bytes) -> None:
    answer = validating_app().post(
        "/things", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["msg"]


def test_unexpected_errors_answer_500_without_their_cause() -> None:
    answer = validating_app().get("/boom")
    assert answer.status_code == 500
    assert "request id" in answer.json()["detail"]
    assert "/srv" not in answer.text
    assert "Traceback" not in answer.text


def test_json_depth_is_measured_outside_strings() -> None:
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert refusal(deep) is not None
    assert refusal(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is None
    assert refusal(b'{"a": "' + b"[{" * 5000 + b'"}') is None  # brackets in a string
    assert refusal(b'{"a": "\\"[[[[", "b": [1]}') is None  # an escaped quote
    assert refusal(b"[" * 5000) is None  # not JSON: the parser says so
    assert refusal(b'{"a": [1, 2.5, "\\ud83d\\ude00"]}') is None


def test_console_logs_write_control_characters_as_escapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        configure_logging(Settings(log_level="info", log_format="console"))
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        get_logger("test").info(
            "request\x1b[2J", request_id="a\x1b]0;owned\x07b", header="\x9b31mred\nforged=1"
        )
        line = stream.getvalue()
        assert line.count("\n") == 1
        assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in line)
        assert "\\x1b]0;owned\\x07b" in line
        assert "x9b31mred" in line
    finally:
        configure_logging(Settings())
