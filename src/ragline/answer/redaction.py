"""Personal data kept from a remote model: a language model wrapped so that what it is
sent is redacted and what it writes is restored, with one ``Redactor`` per answer.

    if redacts(engine, settings, "acme"):
        llm = RedactingLLM(llm, Redactor())
    llm.complete([Message("user", "mail ann@example.com")], max_tokens=50, temperature=0)
    # the model reads "mail <EMAIL_1>"; its "<EMAIL_1>" comes back as "ann@example.com"
    llm.redactor.counts        # {"email": 1}: values replaced, by kind (never the values)

Every message is redacted (the question, the passages, the conversation's turns and
summary in the rewrite and summary prompts), so a value gets the same placeholder in
all of them; streamed text is restored as it arrives, a placeholder cut across two
deltas being held back until it is whole. Whether a tenant's answers are redacted is
its policy's ``redact_pii``, or ``RAGLINE_PII_REDACTION`` when the policy does not say.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from sqlalchemy.engine import Engine

from ragline.answer.llm.base import LLM, ClosingStream, Completion, Message, Stream
from ragline.answer.pii import Redactor
from ragline.config import Settings
from ragline.db.tenancy import tenant_scope
from ragline.tenants import get_policy


def redacts(engine: Engine, settings: Settings, tenant: str) -> bool:
    """Whether what ``tenant``'s answers send to a model is redacted."""
    with tenant_scope(engine, tenant) as conn:
        chosen = get_policy(conn, tenant).redact_pii
    return settings.pii_redaction if chosen is None else chosen


class RedactingLLM:
    """``llm``, seen through ``redactor``: an ``LLM`` itself."""

    def __init__(self, llm: LLM, redactor: Redactor) -> None:
        self.llm = llm
        self.redactor = redactor

    @property
    def name(self) -> str:
        return self.llm.name

    def _redact(self, messages: Sequence[Message]) -> list[Message]:
        return [Message(m.role, self.redactor.redact(m.content)) for m in messages]

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        completion = self.llm.complete(
            self._redact(messages), max_tokens=max_tokens, temperature=temperature
        )
        return dataclasses.replace(completion, text=self.redactor.restore(completion.text))

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Stream:
        inner = self.llm.stream(
            self._redact(messages), max_tokens=max_tokens, temperature=temperature
        )
        return _RestoringStream(inner, self.redactor)


class _RestoringStream(ClosingStream):
    def __init__(self, inner: Stream, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        restorer = self.redactor.restorer()
        for delta in self.inner:
            text = restorer.feed(delta)
            if text:
                yield text
        tail = restorer.flush()
        if tail:
            yield tail
        done = self.inner.completion
        if done is not None:
            self.completion = dataclasses.replace(done, text=self.redactor.restore(done.text))

    def close(self) -> None:
        self.inner.close()
