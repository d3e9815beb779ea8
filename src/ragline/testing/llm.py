"""What every language-model client (``ragline.answer.llm.LLM``) must do, as a pytest
suite to subclass. The subclass provides ``make_llm``: a factory that starts a server
of the client's kind and returns the client, a handle on the server (``LLMServer``)
and how many requests a call makes before it gives up on a transient error::

    from ragline.testing.llm import LLMContract, LLMUnderTest, MakeLLM

    class TestMyClient(LLMContract):
        @pytest.fixture
        def make_llm(self, servers: ExitStack) -> MakeLLM:
            def make(name: str) -> LLMUnderTest:
                server = servers.enter_context(MyFakeServer())   # stopped after the test
                client = MyClient(server.url, name=name, max_retries=1)
                return LLMUnderTest(client, server, attempts=2)
            return make

The suite checks that a completion comes back with its text and usage; that a stream
yields the same text in pieces, then its completion, and that closing it early stops
the generation upstream; that transient failures (a 503, a refused connection) are
retried and then raised as ``LLMUnavailable``; that refused requests (400, 401) are
raised as ``LLMRequestError`` at once; and that, inside a ``FailoverLLM``, a client
that is down hands over to the next and has its circuit opened. Test against a real
server speaking the provider's API, never by patching the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal, Protocol

import pytest

from ragline.answer.llm import LLM, Message
from ragline.answer.llm.failover import FailoverLLM
from ragline.errors import LLMRequestError, LLMUnavailable

HELLO = [Message("system", "Be brief."), Message("user", "Say hello to the contract.")]
TEXT = "Hello from the contract suite [1]."

Call = Literal["complete", "stream"]


class LLMServer(Protocol):
    """The server behind a client under test, which the suite makes misbehave."""

    @property
    def requests(self) -> int:
        """Requests received so far, whatever they were answered with."""
        ...

    @property
    def tokens_sent(self) -> int:
        """Pieces of streamed text written to clients so far."""
        ...

    def answer(self, text: str, *, token_delay: float = 0.0) -> None:
        """Answer every request with ``text`` from now on: whole, or streamed word by
        word (``token_delay`` seconds apart), with the tokens' usage."""

    def fail(self, status: int, *, times: int | None = None) -> None:
        """Answer the next ``times`` requests (every one when None) with HTTP ``status``."""

    def down(self) -> None:
        """Refuse connections until ``up()``."""

    def up(self) -> None:
        """Accept connections again."""


@dataclass(frozen=True, slots=True)
class LLMUnderTest:
    llm: LLM
    server: LLMServer
    # Requests one call makes to a server that keeps failing transiently, retries and
    # every provider included; at least 2, so that the suite sees a retry.
    attempts: int


MakeLLM = Callable[[str], LLMUnderTest]


def _ask(llm: LLM, call: Call) -> str:
    """The text of one answer, through ``complete`` or through ``stream``."""
    if call == "complete":
        return llm.complete(HELLO, max_tokens=50, temperature=0).text
    with llm.stream(HELLO, max_tokens=50, temperature=0) as stream:
        return "".join(stream)


class LLMContract:
    """Subclass it as ``Test…`` and override the ``make_llm`` fixture."""

    @pytest.fixture
    def servers(self) -> Iterator[ExitStack]:
        """Where ``make_llm`` enters the servers it starts: they stop after the test."""
        with ExitStack() as stack:
            yield stack

    @pytest.fixture
    def make_llm(self, servers: ExitStack) -> MakeLLM:
        """A factory of clients named as asked, each with a server of its own."""
        raise NotImplementedError("a subclass of LLMContract provides the make_llm fixture")

    @pytest.fixture
    def subject(self, make_llm: MakeLLM) -> LLMUnderTest:
        subject = make_llm("contract")
        assert subject.attempts >= 2, "configure at least one retry: the suite checks them"
        subject.server.answer(TEXT)
        return subject

    def test_a_completion_has_the_text_and_its_usage(self, subject: LLMUnderTest) -> None:
        completion = subject.llm.complete(HELLO, max_tokens=50, temperature=0)
        assert completion.text == TEXT
        assert completion.provider
        assert completion.usage is not None
        assert completion.usage.prompt_tokens > 0
        assert completion.usage.completion_tokens > 0
        assert subject.server.requests == 1

    def test_a_stream_yields_the_text_in_pieces_then_its_completion(
        self, subject: LLMUnderTest
    ) -> None:
        with subject.llm.stream(HELLO, max_tokens=50, temperature=0) as stream:
            pieces = list(stream)
        assert len(pieces) > 1, "the text arrives as it is written, not at the end"
        assert "".join(pieces) == TEXT
        assert stream.completion is not None
        assert stream.completion.text == TEXT
        assert stream.completion.usage is not None
        assert stream.completion.usage.completion_tokens > 0
        assert subject.server.requests == 1

    def test_closing_a_stream_stops_the_generation(self, subject: LLMUnderTest) -> None:
        words = 300
        subject.server.answer(" ".join(["word"] * words), token_delay=0.01)
        with subject.llm.stream(HELLO, max_tokens=500, temperature=0) as stream:
            pieces = iter(stream)
            first = [next(pieces) for _ in range(5)]
        # Left the block: the stream is closed, while its iterator is still held (so
        # that nothing but close() can have ended the connection).
        time.sleep(0.5)
        sent = subject.server.tokens_sent
        time.sleep(0.5)
        assert subject.server.tokens_sent == sent, "the server stopped sending"
        assert len(first) <= sent < words
        del pieces

    @pytest.mark.parametrize("call", ["complete", "stream"])
    def test_a_server_error_is_retried_then_unavailable(
        self, subject: LLMUnderTest, call: Call
    ) -> None:
        subject.server.fail(503)
        with pytest.raises(LLMUnavailable):
            _ask(subject.llm, call)
        assert subject.server.requests == subject.attempts

    @pytest.mark.parametrize("call", ["complete", "stream"])
    def test_a_passing_server_error_is_retried_away(
        self, subject: LLMUnderTest, call: Call
    ) -> None:
        subject.server.fail(503, times=subject.attempts - 1)
        assert _ask(subject.llm, call) == TEXT
        assert subject.server.requests == subject.attempts

    @pytest.mark.parametrize("call", ["complete", "stream"])
    def test_a_refused_connection_is_unavailable(self, subject: LLMUnderTest, call: Call) -> None:
        subject.server.down()
        with pytest.raises(LLMUnavailable):
            _ask(subject.llm, call)
        subject.server.up()
        assert _ask(subject.llm, call) == TEXT, "the client recovers with its server"

    @pytest.mark.parametrize("status", [400, 401])
    @pytest.mark.parametrize("call", ["complete", "stream"])
    def test_a_refused_request_is_raised_at_once(
        self, subject: LLMUnderTest, call: Call, status: int
    ) -> None:
        subject.server.fail(status)
        with pytest.raises(LLMRequestError):
            _ask(subject.llm, call)
        assert subject.server.requests == 1, "a refused request is not retried"

    @pytest.mark.parametrize("call", ["complete", "stream"])
    def test_failover_moves_on_when_the_client_is_down(self, make_llm: MakeLLM, call: Call) -> None:
        first, second = make_llm("first"), make_llm("second")
        first.server.down()
        second.server.answer("From the second provider.")
        chain = FailoverLLM([first.llm, second.llm])
        assert _ask(chain, call) == "From the second provider."
        assert second.server.requests == 1

    def test_failover_opens_the_circuit_of_a_failing_client(self, make_llm: MakeLLM) -> None:
        now = [0.0]
        first, second = make_llm("first"), make_llm("second")
        first.server.fail(503)
        second.server.answer("From the second provider.")
        chain = FailoverLLM([first.llm, second.llm], failures=2, cooldown=30, clock=lambda: now[0])
        for call in ("complete", "stream", "complete", "stream", "complete"):
            assert _ask(chain, call) == "From the second provider."
        assert first.server.requests == 2 * first.attempts, "skipped once its circuit opened"
        assert chain.breakers[first.llm.name].state == "open"

        first.server.answer("From the first provider.")
        assert _ask(chain, "complete") == "From the second provider.", "still resting"
        now[0] = 31.0  # the cool-down is over: one trial, which succeeds
        assert _ask(chain, "stream") == "From the first provider."
        assert chain.breakers[first.llm.name].state == "closed"
