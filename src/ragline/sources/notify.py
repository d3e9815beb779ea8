"""Run reports to webhooks: a summary for a Slack-compatible incoming webhook, the
whole report as JSON for a generic one.

    notifier = Notifier.from_settings(settings)
    notifier.run_finished(report)       # never raises

Reports are posted only when ``RAGLINE_ENV`` is one of ``RAGLINE_NOTIFY_ENVIRONMENTS``,
so a laptop or a staging copy does not page the production channel. Delivery is
retried with backoff on connection errors, 5xx and 429 answers; a webhook that stays
down is logged, and the run it reports on is unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from ragline.config import Settings
from ragline.logs import get_logger
from ragline.retry import Backoff, send_with_retries

log = get_logger(__name__)

_MAX_LISTED_FAILURES = 5


class Notifier:
    def __init__(
        self,
        *,
        slack_url: str | None,
        webhook_url: str | None,
        enabled: bool,
        attempts: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.slack_url = slack_url
        self.webhook_url = webhook_url
        self.enabled = enabled
        self.attempts = attempts
        self.timeout = timeout
        self.backoff = backoff
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        return cls(
            slack_url=settings.notify_slack_url,
            webhook_url=settings.notify_webhook_url,
            enabled=settings.env in settings.notify_environments,
            attempts=settings.notify_attempts,
            timeout=settings.notify_timeout,
        )

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.slack_url or self.webhook_url)

    def run_finished(self, run: dict[str, Any]) -> dict[str, bool]:
        """Post ``run`` (a run report as ``ragline runs --json`` shows it) to each
        configured webhook. Returns whether each delivery succeeded; never raises."""
        if not self.active:
            return {}
        delivered: dict[str, bool] = {}
        if self.slack_url:
            delivered["slack"] = self._post(self.slack_url, slack_message(run), "slack")
        if self.webhook_url:
            delivered["webhook"] = self._post(
                self.webhook_url, {"event": "sync_run.finished", "run": run}, "webhook"
            )
        return delivered

    def _post(self, url: str, body: dict[str, Any], target: str) -> bool:
        try:
            response = send_with_retries(
                lambda: httpx.post(url, json=body, timeout=self.timeout),
                attempts=self.attempts,
                backoff=Backoff(first=self.backoff, cap=30.0),
                transient=lambda e: isinstance(e, httpx.HTTPError),
                statuses=frozenset({429, 500, 502, 503, 504}),
                sleep=self.sleep,
            )
        except httpx.HTTPError as e:
            problem = f"{type(e).__name__}: {e}"
        else:
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                log.warning("notify_refused", target=target, problem=problem)
                return False
        log.warning("notify_failed", target=target, problem=problem, attempts=self.attempts)
        return False


def slack_message(run: dict[str, Any]) -> dict[str, Any]:
    """A run report as a Slack message: a one-line summary (``text``, also what
    notifications show) and the failed items, if any."""
    status = run.get("status", "?")
    icon = ":white_check_mark:" if status == "succeeded" else ":x:"
    counts = ", ".join(
        f"{run.get(key, 0)} {key}" for key in ("added", "updated", "unchanged", "deleted", "failed")
    )
    seconds = run.get("seconds")
    took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    text = (
        f"{icon} ragline sync of {run.get('source_name') or run.get('source')} "
        f"({run.get('tenant')}/{run.get('collection')}) {status}{took}: {counts}"
    )
    lines = [text]
    errors = run.get("errors") or []
    for error in errors[:_MAX_LISTED_FAILURES]:
        where = f"`{error['doc_id']}`: " if error.get("doc_id") else ""
        lines.append(f"• {where}{error.get('reason', '')}")
    if len(errors) > _MAX_LISTED_FAILURES:
        lines.append(f"… and {len(errors) - _MAX_LISTED_FAILURES} more")
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }
