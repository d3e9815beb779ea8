"""Questions answered from the caller's tenant's documents, with citations; as one
JSON answer, or streamed as server-sent events."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ragline.answer.flow import AnswerEvent, AnswerStream
from ragline.api.deps import AdminDep, ReaderDep, ServicesDep
from ragline.api.schemas import (
    AskRequest,
    AskResponse,
    FeedbackList,
    FeedbackOut,
    FeedbackRequest,
    FeedbackStored,
)
from ragline.errors import RaglineError
from ragline.logs import get_logger

router = APIRouter(prefix="/v1", tags=["answers"])
log = get_logger(__name__)


@router.post("/ask", response_model=AskResponse)
def ask(body: AskRequest, principal: ReaderDep, services: ServicesDep) -> AskResponse:
    answer = services.answerer.ask(
        body.question,
        tenant=principal.tenant,
        conversation_id=body.conversation_id,
        search_filter=body.filters.to_filter(),
        k=body.k,
    )
    return AskResponse(**answer.as_dict())


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask_stream(
    body: AskRequest, principal: ReaderDep, services: ServicesDep
) -> StreamingResponse:
    """Server-sent events: ``status`` (retrieving, generating), ``citations`` (the
    numbered passages, before the first token), ``token`` (the answer sentence by
    sentence, each once checked: the tokens put together are the final answer),
    ``done`` (the final answer, as from /v1/ask) or ``error``; a comment line keeps
    the connection alive while nothing else is sent. A client that disconnects stops
    the generation."""
    stream = await run_in_threadpool(
        services.answerer.stream,
        body.question,
        tenant=principal.tenant,
        conversation_id=body.conversation_id,
        search_filter=body.filters.to_filter(),
        k=body.k,
    )
    return StreamingResponse(
        _events(stream, keepalive=services.settings.sse_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(stream: AnswerStream, *, keepalive: float) -> AsyncIterator[str]:
    """The stream's events as SSE frames. The answer is produced in a thread of its own;
    when the client goes away, this generator is closed and closes the stream."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[AnswerEvent | None] = asyncio.Queue()

    def put(event: AnswerEvent | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:  # the event loop is gone: nobody is listening
            stream.close()

    def produce() -> None:
        try:
            for event in stream:
                put(event)
        except RaglineError as e:
            put(AnswerEvent("error", {"detail": str(e)}))
        except Exception as e:
            log.error("answer_stream_failed", exc_info=e)
            put(AnswerEvent("error", {"detail": "the answer failed; see the server's log"}))
        finally:
            put(None)

    threading.Thread(target=produce, name="ragline-answer", daemon=True).start()
    try:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is None:
                return
            yield f"event: {event.kind}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n"
    finally:
        stream.close()


@router.post(
    "/feedback",
    response_model=FeedbackStored,
    responses={201: {"model": FeedbackStored}},
)
def feedback(
    body: FeedbackRequest, principal: ReaderDep, services: ServicesDep, response: Response
) -> FeedbackStored:
    """👍 (1), 👎 (-1) or neutral (0) on an answer, by its trace id; posting again for
    the same trace replaces the earlier feedback (201 the first time, then 200)."""
    created = services.answerer.memory.feedback(
        principal.tenant,
        body.trace_id,
        rating=body.rating,
        reason=body.reason,
        comment=body.comment,
    )
    response.status_code = 201 if created else 200
    return FeedbackStored(trace_id=body.trace_id, rating=body.rating, created=created)


@router.get("/feedback", response_model=FeedbackList)
def list_feedback(
    principal: AdminDep,
    services: ServicesDep,
    rating: Annotated[int | None, Query(ge=-1, le=1, description="-1, 0 or 1")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> FeedbackList:
    """Feedback with the question, answer and citations it is about, newest first."""
    rows = services.answerer.memory.list_feedback(principal.tenant, rating=rating, limit=limit)
    return FeedbackList(feedback=[FeedbackOut(**row) for row in rows])
