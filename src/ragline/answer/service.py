"""Asking a question: check it, retrieve, answer with citations — or say why not.

    answerer = Answerer.from_settings(settings, searcher)
    answer = answerer.ask("How do I calibrate the oxygen probe?", tenant="acme")
    answer.mode          # generative | extractive | refused | clarify
    answer.citations     # [Citation(n=1, doc_id=..., chunk_id=..., ...)]

    with answerer.stream("How do I calibrate the oxygen probe?", tenant="acme") as s:
        for event in s:  # status, citations, token..., done
            ...

- An empty question, or one of one or two words, gets a request for a whole question.
- When the closest passage is less similar to the question than
  ``answer_min_similarity``, the answer is that the knowledge base does not hold it.
- With language models configured (``llm_providers``), they write the answer from the
  passages, citing them as ``[n]``; every sentence keeps only the citations whose
  passage supports it, a sentence left without one is dropped, and an answer that
  lost sentences (or has no citation) is marked ``unsupported``. If no
  model answers, or none is configured, the answer quotes the passages' best
  sentences instead (``extractive``).
- When the tenant's policy (or ``RAGLINE_PII_REDACTION``) says so, personal data in
  what goes to the model is replaced by placeholders and restored in its answer
  (``ragline.answer.redaction``).

``stream`` is the answer flow (``ragline.answer.flow``); ``ask`` runs the same flow to
its end, so caching, conversations and citations behave the same through both.
"""

from __future__ import annotations

from ragline.answer.cache import AnswerCache
from ragline.answer.conversation import Conversations
from ragline.answer.flow import AnswerEvent, AnswerStream
from ragline.answer.llm import LLM
from ragline.answer.llm.failover import FailoverLLM
from ragline.answer.llm.openai import OpenAICompatible
from ragline.answer.memory import Memory
from ragline.answer.pii import Redactor
from ragline.answer.redaction import RedactingLLM, redacts
from ragline.config import Settings
from ragline.domain import Answer, Filter
from ragline.search.hybrid import Searcher

__all__ = ["AnswerEvent", "AnswerStream", "Answerer", "get_llm"]


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
        self.cache = AnswerCache(searcher.engine, settings.answer_cache_ttl)
        self.conversations = Conversations(self.memory, llm, window=settings.conversation_turns)

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
        None; NotFound when it is not one of the tenant's): ``stream``, drained."""
        return self.stream(
            question,
            tenant=tenant,
            conversation_id=conversation_id,
            search_filter=search_filter,
            k=k,
        ).drain()

    def stream(
        self,
        question: str,
        *,
        tenant: str,
        conversation_id: str | None = None,
        search_filter: Filter | None = None,
        k: int | None = None,
    ) -> AnswerStream:
        """The answer as events: ``status`` (retrieving, generating), ``citations`` (the
        numbered passages, before the first token), ``token``s and ``done`` (the final
        answer). ``close()`` stops the generation upstream. The conversation is read
        (and the question made standalone) before this returns. When the tenant's
        answers are redacted, everything sent to the model goes through one
        ``Redactor``, and what it writes is restored before it is checked."""
        llm, conversations, redactor = self.llm, self.conversations, None
        if llm is not None and redacts(self.searcher.engine, self.settings, tenant):
            redactor = Redactor()
            llm = RedactingLLM(llm, redactor)
            conversations = Conversations(self.memory, llm, window=self.conversations.window)
        asked = conversations.begin(tenant, question, conversation_id)
        return AnswerStream(
            asked,
            searcher=self.searcher,
            settings=self.settings,
            llm=llm,
            cache=self.cache,
            conversations=conversations,
            search_filter=search_filter,
            k=k,
            redactor=redactor,
        )
