from __future__ import annotations

import io
import json
import sys

import pytest

from ragline.config import Settings
from ragline.logs import configure_logging, get_logger


def test_logs_go_to_the_current_stderr_even_after_a_replaced_one_was_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        configure_logging(Settings(log_level="info", log_format="json"))
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        get_logger("test").info("first_event", n=1)
        assert json.loads(first.getvalue())["event"] == "first_event"
        first.close()  # as a CLI test runner does with the stream it lent
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        get_logger("test").info("second_event")
        assert json.loads(second.getvalue())["event"] == "second_event"
    finally:
        configure_logging(Settings())
