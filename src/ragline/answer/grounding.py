"""Answers held to their passages: a model's text keeps only the citations its passages
support; without a model, the passages' best sentences are quoted.

    answer = generated_answer(completion, hits, embedder, min_similarity=0.25, trace_id=t)
    answer.removed_citations, answer.unsupported
    answer = extractive_answer(question, hits, embedder, sentences=3, trace_id=t)

Markers that point at no passage are removed and counted, and so are markers whose
passage is not close enough to the sentence they close (``min_similarity``, cosine
of the two embeddings); a generated answer left without a citation is marked
``unsupported``. A model's refusal becomes a ``refused`` answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ragline.answer.extractive import extract
from ragline.answer.llm import Completion
from ragline.answer.prompt import REFUSAL, check_citations, claims, is_refusal
from ragline.domain import Answer, AnswerMode, Citation, Hit
from ragline.embedding.base import Embedder
from ragline.logs import get_logger

log = get_logger(__name__)


def generated_answer(
    completion: Completion,
    hits: Sequence[Hit],
    embedder: Embedder,
    *,
    min_similarity: float,
    trace_id: str,
) -> Answer:
    usage = (
        {
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
            "total_tokens": completion.usage.total_tokens,
        }
        if completion.usage
        else None
    )
    supported = supported_claims(completion.text, hits, embedder, min_similarity)
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
        citations(hits, cited),
        trace_id,
        removed_citations=removed,
        unsupported=not cited,
        provider=completion.provider,
        usage=usage,
    )


def supported_claims(
    text: str, hits: Sequence[Hit], embedder: Embedder, min_similarity: float
) -> set[tuple[int, str]]:
    """The (source, claim) pairs of a generated answer where the claim is close enough
    to its cited passage: a weak model must not make ragline cite a passage for
    something it does not say."""
    pairs = set(claims(text, len(hits)))
    if not pairs:
        return set()
    sentences = sorted({claim for _, claim in pairs if claim})
    cited = sorted({n for n, _ in pairs})
    vectors = embedder.embed(sentences + [hits[n - 1].text for n in cited])
    claim_vector = dict(zip(sentences, vectors[: len(sentences)], strict=True))
    passage_vector = dict(zip(cited, vectors[len(sentences) :], strict=True))
    return {
        (n, claim)
        for n, claim in pairs
        if claim and float(claim_vector[claim] @ passage_vector[n]) >= min_similarity
    }


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
