"""One way to retry: capped exponential backoff with jitter, honouring a server's
Retry-After. Clients (language models, embedders, wikis, webhooks) and loops that
reconnect (queue consumers, job retries) all take their delays from here::

    policy = Backoff(first=0.5, cap=30)
    policy.delay(attempt=3)                                  # about 2 s, jittered

    response = send_with_retries(
        lambda: client.post(url, json=body),
        attempts=5,
        backoff=policy,
        transient=lambda e: isinstance(e, httpx.TransportError),
    )

``send_with_retries`` retries a request that raised a transient error or answered
429 or 5xx, waiting what the response's Retry-After asks (capped) or the backoff;
the last response (or error) is the caller's to interpret.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class HasStatus(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> object: ...


R = TypeVar("R", bound=HasStatus)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of ``first * 2**(attempt-1)`` seconds, capped at ``cap``, with full
    jitter over their upper half (so that many clients do not retry in step)."""

    first: float = 0.5
    cap: float = 30.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (1-based)."""
        base = float(min(self.cap, self.first * 2 ** max(0, attempt - 1)))
        if not self.jitter:
            return base
        jittered: float = random.uniform(base / 2, base)
        return jittered


def retry_after(headers: object, *, cap: float) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), capped; None
    when there is no such header or it cannot be read."""
    get = getattr(headers, "get", None)
    value = get("Retry-After") if callable(get) else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(cap, seconds))


def call_with_retries(
    call: Callable[[], T],
    *,
    attempts: int,
    backoff: Backoff,
    transient: Callable[[BaseException], bool],
    on_retry: Callable[[int, BaseException | None, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, again after a transient error, ``attempts`` times at most; the last
    error is raised as it was."""
    return _retrying(
        attempts,
        retry_if_exception(transient),
        lambda state: backoff.delay(state.attempt_number),
        on_retry,
        sleep,
    )(call)


def send_with_retries(
    send: Callable[[], R],
    *,
    attempts: int,
    backoff: Backoff,
    transient: Callable[[BaseException], bool],
    statuses: frozenset[int] = RETRY_STATUSES,
    on_retry: Callable[[int, BaseException | None, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """``send()`` an HTTP request, again after a transient error or a response whose
    status is in ``statuses``, ``attempts`` times at most. Returns the last response
    (retried or not: the caller judges it) or raises the last error."""

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = retry_after(outcome.result().headers, cap=backoff.cap)
            if asked is not None:
                return asked
        return backoff.delay(state.attempt_number)

    condition = retry_if_exception(transient) | retry_if_result(
        lambda response: response.status_code in statuses
    )
    return _retrying(attempts, condition, wait, on_retry, sleep)(send)


def _retrying(
    attempts: int,
    condition: object,
    wait: Callable[[RetryCallState], float],
    on_retry: Callable[[int, BaseException | None, float], None] | None,
    sleep: Callable[[float], None],
) -> Retrying:
    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        error = state.outcome.exception() if state.outcome.failed else None
        on_retry(state.attempt_number, error, state.next_action.sleep)

    return Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        retry=condition,  # type: ignore[arg-type]
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
        retry_error_callback=_last_result,
    )


def _last_result(state: RetryCallState) -> object:
    """After the last attempt, its outcome as it is: the response, or the error."""
    assert state.outcome is not None
    return state.outcome.result()
