"""The language-model contract: complete a chat, or stream it.

    completion = llm.complete([Message("user", "Say hi")], max_tokens=20, temperature=0)
    completion.text, completion.usage.total_tokens

    with llm.stream(messages, max_tokens=200, temperature=0) as stream:
        for delta in stream:          # text as it is generated
            print(delta, end="")
    stream.completion                 # the whole text and the provider's token usage

Closing a stream early (leaving the ``with`` block) closes the connection, which
stops the generation upstream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the provider counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    provider: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None


class Stream(Protocol):
    """Text deltas of a generation; ``completion`` is set once they are exhausted."""

    completion: Completion | None

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Stream: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ClosingStream:
    """``with stream: ...`` closes it on the way out, however the block ends.
    Subclasses define ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LLM(Protocol):
    """A chat model. Raises ``LLMUnavailable`` for failures worth trying elsewhere
    (timeouts, connection errors, 429 and 5xx answers) and ``LLMRequestError`` for
    requests the provider refuses as such."""

    @property
    def name(self) -> str: ...

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Completion: ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Stream: ...
