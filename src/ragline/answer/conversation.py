"""A question within its conversation: made standalone from the recent turns before it
is answered, then recorded, and the turns that leave the recent window summarised.

    conversations = Conversations(memory, llm, window=5)
    asked = conversations.begin("acme", "how long does it last?", conversation_id)
    asked.query     # "how long does the oxygen sensing cap last": made standalone
    answer = conversations.finish(asked, answer)    # recorded as the next turn

``begin`` raises NotFound for a conversation that is not the tenant's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragline.answer.llm import LLM
from ragline.answer.memory import Memory
from ragline.answer.rewrite import rewrite, summarise
from ragline.domain import Answer
from ragline.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Asked:
    """One question being answered."""

    tenant: str
    conversation: uuid.UUID
    question: str
    query: str  # the question made standalone, for retrieval and the model
    earlier: int  # turns before this one read from the conversation (at most the window)

    @property
    def follows_up(self) -> bool:
        return self.earlier > 0


class Conversations:
    def __init__(self, memory: Memory, llm: LLM | None, *, window: int) -> None:
        self.memory = memory
        self.llm = llm
        self.window = window

    def begin(self, tenant: str, question: str, conversation_id: str | None) -> Asked:
        """The conversation (a new one when ``conversation_id`` is None) and the question
        made standalone from its recent turns and summary."""
        question = " ".join(question.split())
        conversation = self.memory.conversation(tenant, conversation_id)
        history = (
            self.memory.recent_turns(tenant, conversation, self.window)
            if conversation_id is not None
            else []
        )
        summary = self.memory.summary(tenant, conversation)[0] if history else ""
        query = rewrite(question, history, self.llm, summary)
        if query != question:
            log.info("question_rewritten", question=question, query=query)
        return Asked(tenant, conversation, question, query, len(history))

    def finish(
        self, asked: Asked, answer: Answer, notes: Mapping[str, Any] | None = None
    ) -> Answer:
        """Record ``answer`` as the conversation's next turn (with ``notes`` on its
        trace); returns it with its conversation id set."""
        answer.conversation_id = str(asked.conversation)
        self.memory.record(
            asked.tenant, asked.conversation, asked.question, asked.query, answer, notes
        )
        self._summarise(asked)
        return answer

    def _summarise(self, asked: Asked) -> None:
        """Fold the turns that leave the recent window into the conversation's summary,
        so that a long conversation keeps its subject without sending every turn."""
        if asked.earlier < self.window:
            return  # with this turn, the conversation still fits the recent window
        summary, covered, leaving = self.memory.unsummarised(
            asked.tenant, asked.conversation, keep=self.window
        )
        if leaving:
            updated = summarise(summary, leaving, self.llm)
            covers = covered + len(leaving)
            self.memory.set_summary(asked.tenant, asked.conversation, updated, covers)
