"""Asking a question: check it, retrieve, answer with citations — or say why not.

    answerer = Answerer.from_settings(settings, searcher)
    answer = answerer.ask("How do I calibrate the oxygen probe?", tenant="acme")
    answer.mode          # generative | extractive | refused | clarify
    answer.citations     # [Citation(n=1, doc_id=..., chunk_id=..., ...)]

- An empty question, or one of one or two words, gets a request for a whole question.
- When the closest passage is less similar to the question than
  ``answer_min_similarity``, the answer is that the knowledge base does not hold it.
- With language models configured (``llm_providers``), they write the answer from the
  passages, citing them as ``[n]``; markers that point at no passage are removed and
  counted, and an answer left without a citation is marked ``unsupported``. If no
  model answers, or none is configured, the answer quotes the passages' best
  sentences instead (``extractive``).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ragline.answer.extractive import extract
from ragline.answer.llm import LLM, Completion, Stream
from ragline.answer.llm.base import ClosingStream
from ragline.answer.llm.failover import FailoverLLM
from ragline.answer.llm.openai import OpenAICompatible
from ragline.answer.memory import Memory
from ragline.answer.prompt import (
    PROMPT_VERSION,
    REFUSAL,
    build_messages,
    check_citations,
    claims,
    is_refusal,
)
from ragline.answer.rewrite import rewrite, summarise
from ragline.config import Settings
from ragline.domain import Answer, AnswerMode, Citation, Filter, Hit
from ragline.errors import LLMUnavailable
from ragline.logs import get_logger
from ragline.search.hybrid import Searcher

log = get_logger(__name__)

CLARIFY_EMPTY = "Please ask a question, for example: how do I calibrate the oxygen sensor?"


def get_llm(settings: Settings) -> LLM | None:
    """The configured models as a failover chain; None when there are none."""
    if not settings.llm_providers:
        return None
    clients = [
        OpenAICompatible(config, max_retries=settings.llm_max_retries)
        for config in settings.llm_providers
    ]
    return FailoverLLM(
        clients,
        failures=settings.llm_circuit_failures,
        cooldown=settings.llm_circuit_cooldown,
    )


class Answerer:
    def __init__(self, searcher: Searcher, settings: Settings, llm: LLM | None = None) -> None:
        self.searcher = searcher
        self.settings = settings
        self.llm = llm
        self.memory = Memory(searcher.engine)

    @classmethod
    def from_settings(cls, settings: Settings, searcher: Searcher | None = None) -> Answerer:
        return cls(searcher or Searcher.from_settings(settings), settings, get_llm(settings))

    def ask(
        self,
        question: str,
        *,
        tenant: str,
        conversation_id: str | None = None,
        search_filter: Filter | None = None,
        k: int | None = None,
    ) -> Answer:
        """Answer ``question`` within ``conversation_id`` (a new conversation when
        None; NotFound when it is not one of the tenant's)."""
        trace_id = uuid.uuid4().hex
        turn = self._begin(question, tenant, conversation_id)
        prepared = self._prepare(turn.query, tenant, search_filter, k, trace_id, turn.follows_up)
        if isinstance(prepared, Answer):
            return self._finish(turn, prepared)
        query, hits = prepared
        if self.llm is not None:
            key = self._cache_key(query, search_filter, hits)
            cached = self._cached(turn.tenant, key, trace_id)
            if cached is not None:
                return self._finish(turn, cached)
            try:
                completion = self.llm.complete(
                    build_messages(query, hits),
                    max_tokens=self.settings.llm_max_tokens,
                    temperature=self.settings.llm_temperature,
                )
                answer = self._generated(completion, hits, trace_id)
                self._remember(turn.tenant, key, answer)
                return self._finish(turn, answer)
            except LLMUnavailable as e:
                log.warning("answer_falls_back_to_extractive", trace_id=trace_id, error=str(e))
        return self._finish(turn, self._extract(query, hits, trace_id))

    def _cache_key(self, query: str, search_filter: Filter | None, hits: Sequence[Hit]) -> str:
        """Exact-match key: the question as asked of the model, its filters, the prompt,
        the models, and the passages retrieved (ids and text). Re-indexing a document
        gives its chunks new ids, so an answer never outlives a change to the passages
        it was made from; a question that differs in any word (Q3, Q4) is another key."""
        assert self.llm is not None
        material = [
            " ".join(query.lower().split()),
            repr(search_filter or Filter()),
            PROMPT_VERSION,
            self.llm.name,
            self.settings.llm_temperature,
            self.settings.llm_max_tokens,
            [(hit.chunk_id, hashlib.sha256(hit.text.encode()).hexdigest()) for hit in hits],
        ]
        return hashlib.sha256(json.dumps(material, default=str).encode()).hexdigest()

    def _cached(self, tenant: str, key: str, trace_id: str) -> Answer | None:
        if not self.settings.answer_cache_ttl:
            return None
        found = self.memory.cached(tenant, key, self.settings.answer_cache_ttl)
        if found is None:
            return None
        log.info("answer_cache_hit", trace_id=trace_id)
        return Answer(
            found["answer"],
            AnswerMode(found["mode"]),
            [Citation(**c) for c in found["citations"]],
            trace_id,
            removed_citations=found["removed_citations"],
            unsupported=found["unsupported"],
            provider=found["provider"],
            cached=True,
        )

    def _remember(self, tenant: str, key: str, answer: Answer) -> None:
        """Cache a generated answer that cites its sources (refusals and uncited
        answers are cheap to redo, or should be)."""
        if (
            self.settings.answer_cache_ttl
            and answer.mode is AnswerMode.GENERATIVE
            and not answer.unsupported
        ):
            self.memory.cache(tenant, key, answer.as_dict(), self.settings.answer_cache_ttl)

    def _begin(self, question: str, tenant: str, conversation_id: str | None) -> _Turn:
        """The conversation and its recent turns, and the question made standalone."""
        question = " ".join(question.split())
        conversation = self.memory.conversation(tenant, conversation_id)
        history = (
            self.memory.recent_turns(tenant, conversation, self.settings.conversation_turns)
            if conversation_id is not None
            else []
        )
        summary = self.memory.summary(tenant, conversation)[0] if history else ""
        query = rewrite(question, history, self.llm, summary)
        if query != question:
            log.info("question_rewritten", question=question, query=query)
        return _Turn(tenant, conversation, question, query, len(history))

    def _finish(self, turn: _Turn, answer: Answer) -> Answer:
        answer.conversation_id = str(turn.conversation)
        self.memory.record(turn.tenant, turn.conversation, turn.question, turn.query, answer)
        self._summarise(turn)
        return answer

    def _summarise(self, turn: _Turn) -> None:
        """Fold the turns that leave the recent window into the conversation's summary,
        so that a long conversation keeps its subject without sending every turn."""
        if turn.earlier < self.settings.conversation_turns:
            return  # with this turn, the conversation still fits the recent window
        summary, covered, leaving = self.memory.unsummarised(
            turn.tenant, turn.conversation, keep=self.settings.conversation_turns
        )
        if leaving:
            updated = summarise(summary, leaving, self.llm)
            self.memory.set_summary(turn.tenant, turn.conversation, updated, covered + len(leaving))

    def stream(
        self,
        question: str,
        *,
        tenant: str,
        conversation_id: str | None = None,
        search_filter: Filter | None = None,
        k: int | None = None,
    ) -> AnswerStream:
        """The same answer as ``ask``, as events: ``status`` (retrieving, generating),
        ``citations`` (the numbered passages, before the first token), ``token``s and
        ``done`` (the final answer). ``close()`` stops the generation upstream."""
        turn = self._begin(question, tenant, conversation_id)
        return AnswerStream(self, turn, search_filter, k)

    def _prepare(
        self,
        question: str,
        tenant: str,
        search_filter: Filter | None,
        k: int | None,
        trace_id: str,
        follows_up: bool,
    ) -> Answer | tuple[str, list[Hit]]:
        """The final answer when the question needs none from a model (empty, vague,
        not covered by the knowledge base); else the question and its passages. A short
        question that follows others was made standalone before it came here."""
        if not question:
            return Answer(CLARIFY_EMPTY, AnswerMode.CLARIFY, [], trace_id)
        if len(question.split()) <= 2 and not follows_up:
            return Answer(
                f"Could you ask a whole question? “{question}” alone could mean many "
                f"things: say what you want to know about it.",
                AnswerMode.CLARIFY,
                [],
                trace_id,
            )
        hits = self.searcher.search(
            question,
            k=k or self.settings.answer_k,
            mode="hybrid",
            search_filter=search_filter,
            tenant=tenant,
        )
        support = max((h.similarity for h in hits if h.similarity is not None), default=None)
        if support is None or support < self.settings.answer_min_similarity:
            log.info("answer_refused", trace_id=trace_id, tenant=tenant, support=support)
            return Answer(REFUSAL, AnswerMode.REFUSED, [], trace_id)
        return question, hits

    def _generated(self, completion: Completion, hits: Sequence[Hit], trace_id: str) -> Answer:
        usage = (
            {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "total_tokens": completion.usage.total_tokens,
            }
            if completion.usage
            else None
        )
        supported = self._supported_claims(completion.text, hits)
        text, cited, removed = check_citations(
            completion.text, len(hits), lambda n, claim: (n, claim) in supported
        )
        if is_refusal(text):
            return Answer(
                REFUSAL, AnswerMode.REFUSED, [], trace_id, provider=completion.provider, usage=usage
            )
        log.info(
            "answer_generated",
            trace_id=trace_id,
            provider=completion.provider,
            cited=len(cited),
            removed_citations=removed,
            usage=usage,
        )
        return Answer(
            text,
            AnswerMode.GENERATIVE,
            _citations(hits, cited),
            trace_id,
            removed_citations=removed,
            unsupported=not cited,
            provider=completion.provider,
            usage=usage,
        )

    def _supported_claims(self, text: str, hits: Sequence[Hit]) -> set[tuple[int, str]]:
        """The (source, claim) pairs of a generated answer where the claim is close
        enough to its cited passage (``citation_min_similarity``): a weak model must
        not make ragline cite a passage for something it does not say."""
        pairs = set(claims(text, len(hits)))
        if not pairs:
            return set()
        sentences = sorted({claim for _, claim in pairs if claim})
        cited = sorted({n for n, _ in pairs})
        vectors = self.searcher.embedder.embed(sentences + [hits[n - 1].text for n in cited])
        claim_vector = dict(zip(sentences, vectors[: len(sentences)], strict=True))
        passage_vector = dict(zip(cited, vectors[len(sentences) :], strict=True))
        threshold = self.settings.citation_min_similarity
        return {
            (n, claim)
            for n, claim in pairs
            if claim and float(claim_vector[claim] @ passage_vector[n]) >= threshold
        }

    def _extract(self, question: str, hits: Sequence[Hit], trace_id: str) -> Answer:
        text, cited = extract(
            question,
            hits,
            self.searcher.embedder,
            max_sentences=self.settings.extractive_sentences,
        )
        if not text:
            return Answer(REFUSAL, AnswerMode.REFUSED, [], trace_id)
        return Answer(text, AnswerMode.EXTRACTIVE, _citations(hits, cited), trace_id)


@dataclass(frozen=True, slots=True)
class _Turn:
    tenant: str
    conversation: uuid.UUID
    question: str
    query: str  # the question made standalone, for retrieval and the model
    earlier: int  # turns before this one read from the conversation (at most the window)

    @property
    def follows_up(self) -> bool:
        return self.earlier > 0


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    kind: Literal["status", "citations", "token", "done", "error"]
    data: Any


class AnswerStream(ClosingStream):
    """Events of one answer, produced as they happen (see ``Answerer.stream``)."""

    def __init__(
        self,
        answerer: Answerer,
        turn: _Turn,
        search_filter: Filter | None,
        k: int | None,
    ) -> None:
        self.answerer = answerer
        self.turn = turn
        self.search_filter = search_filter
        self.k = k
        self.trace_id = uuid.uuid4().hex
        self._llm_stream: Stream | None = None
        self._closed = False

    def __iter__(self) -> Iterator[AnswerEvent]:
        answerer = self.answerer
        turn = self.turn
        yield AnswerEvent(
            "status",
            {
                "stage": "retrieving",
                "trace_id": self.trace_id,
                "conversation_id": str(turn.conversation),
            },
        )
        prepared = answerer._prepare(
            turn.query, turn.tenant, self.search_filter, self.k, self.trace_id, turn.follows_up
        )
        if isinstance(prepared, Answer):
            yield AnswerEvent("done", answerer._finish(turn, prepared).as_dict())
            return
        question, hits = prepared
        sources = _citations(hits, range(1, len(hits) + 1))
        yield AnswerEvent("citations", [c.as_dict() for c in sources])
        answer: Answer | None = None
        key = answerer._cache_key(question, self.search_filter, hits) if answerer.llm else ""
        cached = answerer._cached(turn.tenant, key, self.trace_id) if key else None
        if cached is not None:
            yield AnswerEvent("token", {"text": cached.answer})
            yield AnswerEvent("done", answerer._finish(turn, cached).as_dict())
            return
        if answerer.llm is not None:
            yield AnswerEvent("status", {"stage": "generating"})
            started = False
            try:
                self._llm_stream = answerer.llm.stream(
                    build_messages(question, hits),
                    max_tokens=answerer.settings.llm_max_tokens,
                    temperature=answerer.settings.llm_temperature,
                )
                for delta in self._llm_stream:
                    started = True
                    yield AnswerEvent("token", {"text": delta})
                completion = self._llm_stream.completion
                assert completion is not None
                answer = answerer._generated(completion, hits, self.trace_id)
                answerer._remember(turn.tenant, key, answer)
            except LLMUnavailable as e:
                if started or self._closed:
                    raise
                log.warning("answer_falls_back_to_extractive", trace_id=self.trace_id, error=str(e))
        if answer is None:
            answer = answerer._extract(question, hits, self.trace_id)
            # Quoted sentences arrive one by one, each with its citation marker.
            pieces = re.split(r"(?<=\]) ", answer.answer)
            for n, piece in enumerate(pieces, start=1):
                yield AnswerEvent("token", {"text": piece if n == len(pieces) else piece + " "})
        yield AnswerEvent("done", answerer._finish(turn, answer).as_dict())

    def close(self) -> None:
        """Stop: closes the connection to the model, which stops its generation."""
        self._closed = True
        if self._llm_stream is not None:
            self._llm_stream.close()


def _citations(hits: Sequence[Hit], cited: Iterable[int]) -> list[Citation]:
    return [
        Citation(
            n=n,
            doc_id=hits[n - 1].doc_id,
            chunk_id=hits[n - 1].chunk_id,
            title=hits[n - 1].title,
            section=hits[n - 1].section,
            url=hits[n - 1].uri,
            text=hits[n - 1].text,
        )
        for n in cited
    ]
