"""The OpenAI-compatible client and the failover chain, against real local HTTP servers
that speak the chat-completions API."""

from __future__ import annotations

import pytest

from ragline.answer.llm import Message
from ragline.answer.llm.failover import CircuitBreaker, FailoverLLM
from ragline.answer.llm.openai import OpenAICompatible
from ragline.config import ProviderConfig
from ragline.errors import LLMRequestError, LLMUnavailable
from ragline.retry import Backoff
from tests.integration.openai_server import Behaviour, openai_server

HELLO = [Message("system", "Be brief."), Message("user", "hello there")]


def client(url: str, name: str = "p", *, timeout: float = 5, retries: int = 0) -> OpenAICompatible:
    config = ProviderConfig(name=name, base_url=url, model="m", timeout=timeout)
    return OpenAICompatible(config, max_retries=retries, backoff=Backoff(first=0.01, cap=0.05))


def test_completion_with_usage_and_the_request_sent() -> None:
    with openai_server() as (url, server):
        completion = client(url).complete(HELLO, max_tokens=20, temperature=0)
    assert completion.text == "You said: hello there"
    assert completion.provider == "p"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4  # as the server counted them
    assert completion.usage.total_tokens == 8
    body = server.bodies[0]
    assert body["model"] == "m"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 20
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_streaming_yields_tokens_then_the_completion() -> None:
    with openai_server() as (url, _), client(url).stream(HELLO, max_tokens=20, temperature=0) as s:
        deltas = list(s)
    assert deltas == ["You ", "said: ", "hello ", "there"]
    assert s.completion is not None
    assert s.completion.text == "You said: hello there"
    assert s.completion.usage is not None
    assert s.completion.usage.completion_tokens == 4


def test_transient_errors_are_retried_and_refusals_are_not() -> None:
    with openai_server(Behaviour(fail_first=2)) as (url, server):
        assert client(url, retries=2).complete(HELLO, max_tokens=5, temperature=0).text
        assert server.requests == 3
    with openai_server(Behaviour(fail_status=401)) as (url, server):
        with pytest.raises(LLMRequestError, match="401"):
            client(url, retries=2).complete(HELLO, max_tokens=5, temperature=0)
        assert server.requests == 1


def test_a_second_provider_takes_over_on_errors_and_timeouts() -> None:
    with (
        openai_server(Behaviour(fail_status=500)) as (broken, _),
        openai_server(Behaviour(delay=2)) as (slow, _),
        openai_server() as (good, server),
    ):
        chain = FailoverLLM(
            [client(broken, "broken"), client(slow, "slow", timeout=0.3), client(good, "good")]
        )
        assert chain.complete(HELLO, max_tokens=5, temperature=0).provider == "good"
        with chain.stream(HELLO, max_tokens=5, temperature=0) as stream:
            assert "".join(stream) == "You said: hello there"
        assert stream.completion is not None
        assert stream.completion.provider == "good"
        assert server.requests == 2


def test_the_circuit_opens_after_repeated_failures_then_tries_half_open() -> None:
    now = [0.0]
    with (
        openai_server(Behaviour(fail_status=503)) as (bad, bad_server),
        openai_server() as (
            good,
            _,
        ),
    ):
        chain = FailoverLLM(
            [client(bad, "bad"), client(good, "good")],
            failures=2,
            cooldown=30,
            clock=lambda: now[0],
        )
        for _ in range(5):
            assert chain.complete(HELLO, max_tokens=5, temperature=0).provider == "good"
        assert bad_server.requests == 2, "skipped once its circuit opened"
        assert chain.breakers["bad"].state == "open"

        now[0] = 31.0  # cool-down over: one trial request
        chain.complete(HELLO, max_tokens=5, temperature=0)
        assert bad_server.requests == 3
        assert chain.breakers["bad"].state == "open"

        bad_server.fail_status = None
        now[0] = 62.0
        assert chain.complete(HELLO, max_tokens=5, temperature=0).provider == "bad"
        assert chain.breakers["bad"].state == "closed"


def test_when_every_provider_fails_the_error_says_so() -> None:
    with openai_server(Behaviour(fail_status=502)) as (url, _):
        chain = FailoverLLM([client(url, "only")], failures=1)
        with pytest.raises(LLMUnavailable, match="only: HTTP 502"):
            chain.complete(HELLO, max_tokens=5, temperature=0)
        with pytest.raises(LLMUnavailable, match="circuit open"):
            chain.complete(HELLO, max_tokens=5, temperature=0)


def test_half_open_admits_one_trial_at_a_time() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=lambda: now[0])
    breaker.failed()
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    assert not breaker.allow(), "a second request waits for the trial's outcome"
    breaker.succeeded()
    assert breaker.allow()


def test_keys_come_from_the_variable_the_configuration_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret")
    config = ProviderConfig(name="x", base_url="http://h/v1", model="m", api_key_env="TEST_LLM_KEY")
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(config)
    assert "api_key" not in config.model_dump()
    monkeypatch.delenv("TEST_LLM_KEY")
    with pytest.raises(ValueError, match="TEST_LLM_KEY"):
        ProviderConfig(name="x", base_url="http://h/v1", model="m", api_key_env="TEST_LLM_KEY")
