"""Answers held to their passages: a model's text keeps only the sentences its
passages support, each with its citations; without a model, the passages' best
sentences are quoted.

    checker = SentenceChecker(hits, embedder, min_similarity=0.25)   # fed the stream
    answer = generated_answer(completion, checker, hits, trace_id=t)
    answer.removed_citations, answer.unsupported
    answer = extractive_answer(question, hits, embedder, sentences=3, trace_id=t)

The checker (``ragline.answer.checking``) removes markers that point at no passage,
or at one that does not support their sentence, and drops sentences left without a
citation. A generated answer is ``unsupported`` when the model wrote anything that
was dropped: what remains is supported, but the model did not keep to its sources
(an injected instruction, a guess). An answer with nothing left is the refusal,
still marked ``unsupported``. A model's own refusal becomes a ``refused`` answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ragline.answer.checking import SentenceChecker
from ragline.answer.extractive import extract
from ragline.answer.llm import Completion
from ragline.answer.prompt import REFUSAL, is_refusal
from ragline.domain import Answer, AnswerMode, Citation, Hit
from ragline.embedding.base import Embedder
from ragline.logs import get_logger

log = get_logger(__name__)


def generated_answer(
    completion: Completion, checker: SentenceChecker, hits: Sequence[Hit], *, trace_id: str
) -> Answer:
    """The answer from a checker that has seen the whole of ``completion``'s text."""
    usage = (
        {
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
            "total_tokens": completion.usage.total_tokens,
        }
        if completion.usage
        else None
    )
    if not checker.text and is_refusal(checker.raw):
        return Answer(
            REFUSAL, AnswerMode.REFUSED, [], trace_id, provider=completion.provider, usage=usage
        )
    log.info(
        "answer_generated",
        trace_id=trace_id,
        provider=completion.provider,
        cited=len(checker.cited),
        removed_citations=checker.removed,
        dropped_sentences=checker.dropped,
        usage=usage,
    )
    if not checker.text:
        return Answer(
            REFUSAL,
            AnswerMode.REFUSED,
            [],
            trace_id,
            removed_citations=checker.removed,
            unsupported=True,
            dropped_sentences=checker.dropped,
            provider=completion.provider,
            usage=usage,
        )
    return Answer(
        checker.text,
        AnswerMode.GENERATIVE,
        citations(hits, checker.cited),
        trace_id,
        removed_citations=checker.removed,
        unsupported=checker.dropped > 0,
        dropped_sentences=checker.dropped,
        provider=completion.provider,
        usage=usage,
    )


def extractive_answer(
    question: str, hits: Sequence[Hit], embedder: Embedder, *, sentences: int, trace_id: str
) -> Answer:
    """The passages' sentences closest to the question, quoted with their citations;
    a refusal when none is close enough."""
    text, cited = extract(question, hits, embedder, max_sentences=sentences)
    if not text:
        return Answer(REFUSAL, AnswerMode.REFUSED, [], trace_id)
    return Answer(text, AnswerMode.EXTRACTIVE, citations(hits, cited), trace_id)


def citations(hits: Sequence[Hit], cited: Iterable[int]) -> list[Citation]:
    """The citations of the 1-based passage numbers ``cited``."""
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
