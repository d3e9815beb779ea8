"""Follow-up questions made standalone, so that retrieval finds what they are about.

    rewrite("how long does it last?", history, llm)
    # -> "how long does the oxygen sensing cap last" (by the model), or, without one,
    # -> "how do I replace the oxygen sensing cap how long does it last?"

A question is a follow-up when it leans on what came before: a pronoun ("it",
"they", "that"...), an opening "and" / "what about", or only a few words. A language
model, when configured, rewrites it from the recent turns; without one (or when no
model answers) the previous standalone query is put in front of it, which carries
the subject the pronoun stands for into the search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragline.answer.llm import LLM, Message
from ragline.answer.memory import Turn
from ragline.errors import LLMError
from ragline.logs import get_logger

log = get_logger(__name__)

_LEANS_BACK = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|him|his|she|her|"
    r"there|then|one|ones|same|former|latter)\b"
    r"|^\s*(and|but|also|or|so|what about|how about|and what)\b",
    re.IGNORECASE,
)
_SHORT = 4
_MAX_QUERY_CHARS = 500

REWRITE_SYSTEM = """You turn the user's last question into one standalone search query \
for a knowledge base, using the conversation only to resolve what the question refers \
to. Keep the user's words where you can. Reply with the query alone, on one line, \
without quotes or explanation."""


def is_follow_up(question: str) -> bool:
    return bool(_LEANS_BACK.search(question)) or len(question.split()) <= _SHORT


def rewrite(question: str, history: Sequence[Turn], llm: LLM | None, summary: str = "") -> str:
    if not history or not question or not is_follow_up(question):
        return question
    if llm is not None:
        messages = [Message("system", REWRITE_SYSTEM)]
        if summary:
            messages.append(Message("system", f"Earlier in the conversation: {summary}"))
        for turn in history:
            messages.append(Message("user", turn.question))
            messages.append(Message("assistant", turn.answer[:600]))
        messages.append(Message("user", question))
        try:
            text = llm.complete(messages, max_tokens=64, temperature=0).text
        except LLMError as e:
            log.warning("rewrite_failed", error=str(e))
        else:
            lines = text.strip().strip('"').splitlines()
            query = " ".join(lines[0].split()) if lines else ""
            if query and len(query) <= _MAX_QUERY_CHARS:
                return query
    return f"{history[-1].query} {question}"


SUMMARY_SYSTEM = """You keep a short running summary of a conversation between a user \
and a knowledge-base assistant: the subjects, products, versions, names and numbers \
the user asked about, so that later questions can be understood. Reply with the \
updated summary alone, at most five sentences."""

_MAX_SUMMARY_CHARS = 1500


def summarise(summary: str, turns: Sequence[Turn], llm: LLM | None) -> str:
    """Fold ``turns`` into ``summary``: by the model when there is one, else by keeping
    the standalone queries asked (the subjects), newest last, within a bound."""
    if llm is not None:
        listing = "\n".join(f"User: {t.question}\nAssistant: {t.answer[:400]}" for t in turns)
        messages = [
            Message("system", SUMMARY_SYSTEM),
            Message("user", f"Summary so far:\n{summary or '(none)'}\n\nNew turns:\n{listing}"),
        ]
        try:
            text = " ".join(llm.complete(messages, max_tokens=200, temperature=0).text.split())
        except LLMError as e:
            log.warning("summary_failed", error=str(e))
        else:
            if text:
                return text[:_MAX_SUMMARY_CHARS]
    asked = "; ".join(t.query for t in turns)
    combined = f"{summary}; {asked}" if summary else f"Asked about: {asked}"
    return combined[-_MAX_SUMMARY_CHARS:]
