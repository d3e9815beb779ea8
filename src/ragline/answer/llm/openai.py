"""An OpenAI-compatible chat-completions client: OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp's server, LM Studio — anything that speaks ``POST /chat/completions``.

    llm = OpenAICompatible(ProviderConfig(name="local", base_url="http://localhost:8080/v1",
                                          model="smollm2"))
    llm.complete([Message("user", "Hello")], max_tokens=50, temperature=0).text

``base_url`` ends where the API's paths begin (``https://api.openai.com/v1``). Azure
takes the resource URL, the deployment as ``model`` and an ``api_version``. Transient
failures (connection errors, timeouts, 408, 409, 429, 5xx) are retried with
exponential backoff up to ``max_retries`` times, and a stream only until its first
token; anything else is raised at once. The delays come from ``ragline.retry``
(exponential, capped, jittered).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from ragline.answer.llm.base import ClosingStream, Completion, Message, Usage
from ragline.config import ProviderConfig
from ragline.errors import LLMRequestError, LLMUnavailable
from ragline.logs import get_logger
from ragline.retry import Backoff, call_with_retries

log = get_logger(__name__)

_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}
T = TypeVar("T")


class OpenAICompatible:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        max_retries: int = 2,
        backoff: Backoff | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.config = config
        self.max_retries = max_retries
        self.backoff = backoff or Backoff(first=0.5, cap=8.0)
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout))
        )

    @property
    def name(self) -> str:
        return self.config.name

    def _request(self, body: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        config = self.config
        headers = {"Content-Type": "application/json"}
        key = config.api_key.get_secret_value() if config.api_key else None
        if config.kind == "azure":
            url = (
                f"{config.base_url.rstrip('/')}/openai/deployments/{config.model}"
                f"/chat/completions?api-version={config.api_version}"
            )
            if key:
                headers["api-key"] = key
        else:
            url = f"{config.base_url.rstrip('/')}/chat/completions"
            body = {"model": config.model, **body}
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return url, headers, body

    @staticmethod
    def _body(
        messages: Sequence[Message], max_tokens: int, temperature: float, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        def on_retry(number: int, error: BaseException | None, delay: float) -> None:
            log.warning(
                "llm_retry", provider=self.name, attempt=number, delay=delay, error=str(error)
            )

        return call_with_retries(
            attempt,
            attempts=self.max_retries + 1,
            backoff=self.backoff,
            transient=lambda e: isinstance(e, LLMUnavailable),
            on_retry=on_retry,
        )

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        url, headers, body = self._request(self._body(messages, max_tokens, temperature, False))

        def attempt() -> Completion:
            try:
                response = self.client.post(url, headers=headers, json=body)
            except httpx.HTTPError as e:
                raise LLMUnavailable(f"{self.name}: {type(e).__name__}: {e}") from e
            _check(self.name, response)
            try:
                data = response.json()
                choice = data["choices"][0]
                text = choice["message"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise LLMUnavailable(f"{self.name}: malformed response: {e}") from e
            return Completion(
                text=text,
                provider=self.name,
                model=str(data.get("model") or self.config.model),
                usage=_usage(data.get("usage")),
                finish_reason=choice.get("finish_reason"),
            )

        return self._with_retries(attempt)

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> _SSEStream:
        url, headers, body = self._request(self._body(messages, max_tokens, temperature, True))

        def attempt() -> _SSEStream:
            request = self.client.build_request("POST", url, headers=headers, json=body)
            try:
                response = self.client.send(request, stream=True)
            except httpx.HTTPError as e:
                raise LLMUnavailable(f"{self.name}: {type(e).__name__}: {e}") from e
            if response.status_code >= 400:
                response.read()
                response.close()
                _check(self.name, response)
            return _SSEStream(self.name, self.config.model, response)

        return self._with_retries(attempt)


class _SSEStream(ClosingStream):
    """Server-sent events of a streamed chat completion."""

    def __init__(self, provider: str, model: str, response: httpx.Response) -> None:
        self.provider = provider
        self.model = model
        self.response = response
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        try:
            for line in self.response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    event = json.loads(payload)
                except ValueError as e:
                    raise LLMUnavailable(f"{self.provider}: malformed stream event") from e
                usage = _usage(event.get("usage")) or usage
                for choice in event.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        yield delta
        except (httpx.HTTPError, httpx.StreamError) as e:  # StreamError: closed by us
            raise LLMUnavailable(f"{self.provider}: stream broken: {e}") from e
        finally:
            self.response.close()
        self.completion = Completion(
            text="".join(parts),
            provider=self.provider,
            model=self.model,
            usage=usage,
            finish_reason=finish,
        )

    def close(self) -> None:
        self.response.close()


def _check(provider: str, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    detail = response.text[:300]
    if response.status_code in _TRANSIENT_STATUS:
        raise LLMUnavailable(f"{provider}: HTTP {response.status_code}: {detail}")
    raise LLMRequestError(f"{provider}: HTTP {response.status_code}: {detail}")


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
    )
