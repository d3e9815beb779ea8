"""The LLM contract (``ragline.testing.llm``) applied to every client ragline ships: the
OpenAI-compatible client in its OpenAI and Azure forms, and the failover chain, each
against a local server speaking the chat-completions API."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from pydantic import SecretStr

from ragline.answer.llm import Message
from ragline.answer.llm.failover import FailoverLLM
from ragline.answer.llm.openai import OpenAICompatible
from ragline.config import ProviderConfig
from ragline.errors import LLMRequestError
from ragline.retry import Backoff
from ragline.testing.llm import LLMContract, LLMUnderTest, MakeLLM
from tests.integration.openai_server import Behaviour, OpenAIServer

FAST = Backoff(first=0.01, cap=0.05)
KEY = "sk-contract"
HELLO = [Message("user", "hello")]


def openai_client(server: OpenAIServer, name: str, *, key: str = KEY) -> OpenAICompatible:
    config = ProviderConfig(
        name=name, base_url=server.url, model="m", timeout=5, api_key=SecretStr(key)
    )
    return OpenAICompatible(config, max_retries=1, backoff=FAST)


def azure_client(server: OpenAIServer, name: str, *, key: str = KEY) -> OpenAICompatible:
    config = ProviderConfig(
        name=name,
        kind="azure",
        base_url=server.origin,
        model="answers-deployment",
        api_version="2024-06-01",
        timeout=5,
        api_key=SecretStr(key),
    )
    return OpenAICompatible(config, max_retries=1, backoff=FAST)


def start(servers: ExitStack) -> OpenAIServer:
    return servers.enter_context(OpenAIServer(Behaviour(api_key=KEY)))


class TestOpenAICompatible(LLMContract):
    @pytest.fixture
    def make_llm(self, servers: ExitStack) -> MakeLLM:
        def make(name: str) -> LLMUnderTest:
            server = start(servers)
            return LLMUnderTest(openai_client(server, name), server, attempts=2)

        return make

    def test_requests_take_the_openai_form(self, servers: ExitStack) -> None:
        server = start(servers)
        openai_client(server, "p").complete(HELLO, max_tokens=5, temperature=0)
        assert server.behaviour.paths == ["/v1/chat/completions"]
        assert server.behaviour.bodies[0]["model"] == "m"
        with pytest.raises(LLMRequestError, match="401"):
            openai_client(server, "p", key="wrong").complete(HELLO, max_tokens=5, temperature=0)
        assert server.requests == 2


class TestAzureOpenAI(LLMContract):
    @pytest.fixture
    def make_llm(self, servers: ExitStack) -> MakeLLM:
        def make(name: str) -> LLMUnderTest:
            server = start(servers)
            return LLMUnderTest(azure_client(server, name), server, attempts=2)

        return make

    def test_requests_take_the_azure_form(self, servers: ExitStack) -> None:
        server = start(servers)
        azure_client(server, "az").complete(HELLO, max_tokens=5, temperature=0)
        assert server.behaviour.paths == [
            "/openai/deployments/answers-deployment/chat/completions?api-version=2024-06-01"
        ]
        assert "model" not in server.behaviour.bodies[0], "the deployment names the model"
        with pytest.raises(LLMRequestError, match="401"):
            azure_client(server, "az", key="wrong").complete(HELLO, max_tokens=5, temperature=0)


class TestFailoverLLM(LLMContract):
    """A chain of two clients of one server: a call that keeps failing tries both."""

    @pytest.fixture
    def make_llm(self, servers: ExitStack) -> MakeLLM:
        def make(name: str) -> LLMUnderTest:
            server = start(servers)
            chain = FailoverLLM(
                [openai_client(server, f"{name}-a"), azure_client(server, f"{name}-b")],
                failures=10,
            )
            return LLMUnderTest(chain, server, attempts=4)

        return make
