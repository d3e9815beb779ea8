"""The answer to one question, as the events it is made of. This is the only answer
flow: ``Answerer.ask`` drains it, ``POST /v1/ask/stream`` and ``ragline ask`` relay it.

    with answerer.stream("how do I calibrate the probe?", tenant="acme") as stream:
        for event in stream:    # AnswerEvent("status" | "citations" | "token" | "done", …)
            ...
    stream.answer               # the final Answer, once the events are exhausted

Events, in order: ``status`` {"stage": "retrieving", "trace_id", "conversation_id"};
then, unless the question needs no passages (clarify, refused), ``citations`` (the
numbered passages) and, with a language model, ``status`` {"stage": "generating"};
``token`` {"text"} pieces of the answer (a generated answer sentence by sentence,
each given out once complete and checked, a cached answer whole, an extractive
answer sentence by sentence); ``done`` (the final answer, ``Answer.as_dict()``).
The tokens, put together, are the final answer's text: a generated sentence is held
back until it is complete, its citations checked and the sentence dropped when none
supports it (``ragline.answer.checking``), exactly as in the final answer; when
nothing is left, the refusal is the one token.

A model that fails before its first token leaves the answer to the extractive
answerer; one that fails after it fails the answer (``LLMUnavailable``), since its
words were already given. ``close()`` stops the generation upstream.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ragline.answer.cache import AnswerCache, cache_key
from ragline.answer.checking import SentenceChecker
from ragline.answer.conversation import Asked, Conversations
from ragline.answer.grounding import citations, extractive_answer, generated_answer
from ragline.answer.llm import LLM, Stream
from ragline.answer.llm.base import ClosingStream
from ragline.answer.prompt import REFUSAL, build_messages
from ragline.config import Settings
from ragline.domain import Answer, AnswerMode, Filter, Hit
from ragline.errors import LLMUnavailable
from ragline.logs import get_logger
from ragline.search.hybrid import Searcher

log = get_logger(__name__)

CLARIFY_EMPTY = "Please ask a question, for example: how do I calibrate the oxygen sensor?"

EventKind = Literal["status", "citations", "token", "done", "error"]


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """One event of an answer; ``data`` is ready for JSON (see the module's docstring)."""

    kind: EventKind
    data: Any


_Events = Generator[AnswerEvent, None, Answer]


class Counting(Protocol):
    """What redacted the model's input: values replaced, by kind."""

    @property
    def counts(self) -> dict[str, int]: ...


class AnswerStream(ClosingStream):
    """Events of one answer, produced as they happen; ``answer`` is set with ``done``."""

    def __init__(
        self,
        asked: Asked,
        *,
        searcher: Searcher,
        settings: Settings,
        llm: LLM | None,
        cache: AnswerCache,
        conversations: Conversations,
        search_filter: Filter | None = None,
        k: int | None = None,
        redactor: Counting | None = None,
    ) -> None:
        self.asked = asked
        self.searcher = searcher
        self.settings = settings
        self.llm = llm
        self.cache = cache
        self.conversations = conversations
        self.search_filter = search_filter
        self.k = k
        self.redactor = redactor
        self.trace_id = uuid.uuid4().hex
        self.dropped_sentences = 0  # sentences of the model's text without support
        self.answer: Answer | None = None
        self._llm_stream: Stream | None = None
        self._closed = False

    def __iter__(self) -> Iterator[AnswerEvent]:
        yield AnswerEvent(
            "status",
            {
                "stage": "retrieving",
                "trace_id": self.trace_id,
                "conversation_id": str(self.asked.conversation),
            },
        )
        answer = yield from self._answer()
        self.answer = self.conversations.finish(self.asked, answer, self._trace_notes())
        yield AnswerEvent("done", self.answer.as_dict())

    def _trace_notes(self) -> dict[str, Any]:
        """What the answer's trace keeps beside the answer: sentences dropped, and the
        values redacted before the model saw them, counted by kind."""
        notes: dict[str, Any] = {}
        if self.dropped_sentences:
            notes["dropped_sentences"] = self.dropped_sentences
        if self.redactor is not None:
            notes["redacted"] = {kind: n for kind, n in self.redactor.counts.items() if n}
        return notes

    def drain(self) -> Answer:
        """Run the flow to its end, dropping the events; the final answer."""
        with self:
            for _ in self:
                pass
        if self.answer is None:  # cannot be: the flow ends with ``done`` or raises
            raise RuntimeError("the answer was closed before it was complete")
        return self.answer

    def close(self) -> None:
        """Stop: closes the connection to the model, which stops its generation."""
        self._closed = True
        if self._llm_stream is not None:
            self._llm_stream.close()

    def _answer(self) -> _Events:
        query = self.asked.query
        clarify = self._clarify(query)
        if clarify is not None:
            return clarify
        hits = self.searcher.search(
            query,
            k=self.k or self.settings.answer_k,
            mode="hybrid",
            search_filter=self.search_filter,
            tenant=self.asked.tenant,
        )
        support = max((h.similarity for h in hits if h.similarity is not None), default=None)
        if support is None or support < self.settings.answer_min_similarity:
            log.info(
                "answer_refused", trace_id=self.trace_id, tenant=self.asked.tenant, support=support
            )
            return Answer(REFUSAL, AnswerMode.REFUSED, [], self.trace_id)
        sources = citations(hits, range(1, len(hits) + 1))
        yield AnswerEvent("citations", [c.as_dict() for c in sources])
        if self.llm is not None:
            key = cache_key(
                query,
                self.search_filter,
                hits,
                model=self.llm.name,
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
            )
            cached = self.cache.get(self.asked.tenant, key, self.trace_id)
            if cached is not None:
                log.info("answer_cache_hit", trace_id=self.trace_id)
                yield AnswerEvent("token", {"text": cached.answer})
                return cached
            generated = yield from self._generate(self.llm, query, hits)
            if generated is not None:
                self.cache.put(self.asked.tenant, key, generated)
                return generated
        extracted = extractive_answer(
            query,
            hits,
            self.searcher.embedder,
            sentences=self.settings.extractive_sentences,
            trace_id=self.trace_id,
        )
        # Quoted sentences arrive one by one, each with its citation marker.
        pieces = re.split(r"(?<=\]) ", extracted.answer)
        for n, piece in enumerate(pieces, start=1):
            yield AnswerEvent("token", {"text": piece if n == len(pieces) else piece + " "})
        return extracted

    def _clarify(self, query: str) -> Answer | None:
        """A request for a whole question, when this one is empty or too vague to search
        for (a short question that follows others was made standalone already)."""
        if not query:
            return Answer(CLARIFY_EMPTY, AnswerMode.CLARIFY, [], self.trace_id)
        if len(query.split()) <= 2 and not self.asked.follows_up:
            return Answer(
                f"Could you ask a whole question? “{query}” alone could mean many "
                f"things: say what you want to know about it.",
                AnswerMode.CLARIFY,
                [],
                self.trace_id,
            )
        return None

    def _generate(
        self, llm: LLM, query: str, hits: list[Hit]
    ) -> Generator[AnswerEvent, None, Answer | None]:
        """The model's answer, its text streamed as tokens; None when no model answered
        before writing anything (the caller falls back to quoting the passages)."""
        yield AnswerEvent("status", {"stage": "generating"})
        checker = SentenceChecker(
            hits, self.searcher.embedder, min_similarity=self.settings.citation_min_similarity
        )
        started = False
        try:
            self._llm_stream = llm.stream(
                build_messages(query, hits),
                max_tokens=self.settings.llm_max_tokens,
                temperature=self.settings.llm_temperature,
            )
            for delta in self._llm_stream:
                started = True
                checked = checker.feed(delta)
                if checked:
                    yield AnswerEvent("token", {"text": checked})
            completion = self._llm_stream.completion
            if completion is None:
                raise LLMUnavailable(f"{llm.name}: the stream ended without its completion")
        except LLMUnavailable as e:
            if started or self._closed:
                raise
            log.warning("answer_falls_back_to_extractive", trace_id=self.trace_id, error=str(e))
            return None
        last = checker.finish()
        if last:
            yield AnswerEvent("token", {"text": last})
        self.dropped_sentences = checker.dropped
        answer = generated_answer(completion, checker, hits, trace_id=self.trace_id)
        if not checker.text:  # the refusal, in place of what was dropped
            yield AnswerEvent("token", {"text": answer.answer})
        return answer
