from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ragline.config import Settings


def test_settings_come_from_ragline_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAGLINE_HOME", str(tmp_path))
    monkeypatch.setenv("RAGLINE_SEARCH_MODE", "lexical")
    monkeypatch.setenv("RAGLINE_RRF_K", "30")
    settings = Settings()
    assert (settings.home, settings.search_mode, settings.rrf_k) == (tmp_path, "lexical", 30)
    assert settings.database_url is None


def test_both_weights_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_DENSE_WEIGHT", "0")
    monkeypatch.setenv("RAGLINE_LEXICAL_WEIGHT", "0")
    with pytest.raises(ValidationError, match="cannot both be 0"):
        Settings()


def test_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_SEARCH_MODE", "fuzzy")
    with pytest.raises(ValidationError):
        Settings()
