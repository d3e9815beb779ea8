"""Structured logging: structlog to stderr, as JSON lines or for a console.

from ragline.logs import configure_logging, get_logger

configure_logging(get_settings())
log = get_logger(__name__).bind(source="docs", doc_id="a.md")
log.info("document_indexed", chunks=12)

The console renderer writes text as it is; so that nothing logged (a header, a file
name, an error from a remote server) can move the cursor, recolour or rewrite a
terminal, or forge a line, control characters in text are written as escapes
(``\x1b``, ``\n``) first. Tracebacks keep their line breaks.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from ragline.config import Settings


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    renderer: list[Any] = (
        [structlog.processors.JSONRenderer()]
        if settings.log_format == "json"
        else [escape_controls, structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the standard library; keep them quiet unless asked.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)


# C0 and C1 control characters, DEL included, as Python writes them in a string literal.
_ESCAPES = {code: ascii(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))}
_TRACEBACK_ESCAPES = {code: escape for code, escape in _ESCAPES.items() if chr(code) not in "\n\t"}


def escape_controls(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: control characters in the event's text written as escapes."""
    clean: dict[str, Any] = {}
    for key, value in event_dict.items():
        if isinstance(value, str):
            table = _TRACEBACK_ESCAPES if key in ("exception", "stack") else _ESCAPES
            value = value.translate(table)
        clean[str(key).translate(_ESCAPES)] = value
    return clean


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger writing to the current ``sys.stderr``, looked up for each logger rather
    than once, so that a stream replaced (and closed) by a caller is never kept."""
    return structlog.PrintLogger(file=sys.stderr)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def ensure_logging(settings: Settings) -> None:
    """Configure logging from ``settings`` unless the application already did."""
    if not structlog.is_configured():
        configure_logging(settings)
