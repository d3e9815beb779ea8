"""A chain of language models tried in order, each behind a circuit breaker.

    llm = FailoverLLM([primary, backup], failures=3, cooldown=30)
    llm.complete(messages, max_tokens=300, temperature=0)   # the first that answers

A provider that fails ``failures`` times in a row is skipped for ``cooldown`` seconds
(its circuit is open); then one request may try it (half-open): success closes the
circuit, failure opens it for another cool-down. Only transient failures
(``LLMUnavailable``) move on to the next provider; a refused request is raised as is.
A stream fails over only until its first token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ragline.answer.llm.base import LLM, ClosingStream, Completion, Message, Stream
from ragline.errors import LLMRequestError, LLMUnavailable
from ragline.logs import get_logger

log = get_logger(__name__)

State = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    failures: int = 3
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: State = "closed"
    _consecutive: int = 0
    _opened_at: float = 0.0
    _trial_running: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self) -> bool:
        """Whether a request may go to the provider now."""
        with self._lock:
            if self.state == "open" and self.clock() - self._opened_at >= self.cooldown:
                self.state = "half_open"
                self._trial_running = False
            if self.state == "half_open":
                if self._trial_running:
                    return False
                self._trial_running = True
                return True
            return self.state == "closed"

    def succeeded(self) -> None:
        with self._lock:
            self.state = "closed"
            self._consecutive = 0
            self._trial_running = False

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self.state == "half_open" or self._consecutive >= self.failures:
                self.state = "open"
                self._opened_at = self.clock()
            self._trial_running = False


class FailoverLLM:
    def __init__(
        self,
        providers: Sequence[LLM],
        *,
        failures: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("a failover chain needs at least one provider")
        self.providers = list(providers)
        self.breakers = {
            p.name: CircuitBreaker(failures=failures, cooldown=cooldown, clock=clock)
            for p in self.providers
        }

    @property
    def name(self) -> str:
        return " > ".join(p.name for p in self.providers)

    def _candidates(self) -> Iterator[LLM]:
        for provider in self.providers:
            if self.breakers[provider.name].allow():
                yield provider
            else:
                log.info("llm_skipped", provider=provider.name, reason="circuit open")

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        errors: list[str] = []
        for provider in self._candidates():
            breaker = self.breakers[provider.name]
            try:
                completion = provider.complete(
                    messages, max_tokens=max_tokens, temperature=temperature
                )
            except LLMUnavailable as e:
                breaker.failed()
                errors.append(str(e))
                log.warning("llm_failover", provider=provider.name, error=str(e))
                continue
            except LLMRequestError:
                breaker.succeeded()  # it answered: the request, not the provider, is at fault
                raise
            breaker.succeeded()
            return completion
        raise LLMUnavailable(_none_answered(errors))

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> _FailoverStream:
        return _FailoverStream(self, messages, max_tokens, temperature)


class _FailoverStream(ClosingStream):
    """Opens the first provider that starts streaming; a failure before the first
    token moves on to the next."""

    def __init__(
        self,
        chain: FailoverLLM,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
    ) -> None:
        self.chain = chain
        self.messages = messages
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.completion: Completion | None = None
        self._current: Stream | None = None

    def __iter__(self) -> Iterator[str]:
        errors: list[str] = []
        for provider in self.chain._candidates():
            breaker = self.chain.breakers[provider.name]
            started = False
            try:
                self._current = provider.stream(
                    self.messages, max_tokens=self.max_tokens, temperature=self.temperature
                )
                for delta in self._current:
                    started = True
                    yield delta
            except LLMUnavailable as e:
                breaker.failed()
                if started:
                    raise
                errors.append(str(e))
                log.warning("llm_failover", provider=provider.name, error=str(e))
                continue
            breaker.succeeded()
            self.completion = self._current.completion
            return
        raise LLMUnavailable(_none_answered(errors))

    def close(self) -> None:
        if self._current is not None:
            self._current.close()


def _none_answered(errors: list[str]) -> str:
    if not errors:
        return "every language model is resting after repeated failures (circuit open)"
    return "no language model answered: " + "; ".join(errors)
