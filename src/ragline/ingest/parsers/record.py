"""JSON document records: ``{"title": ..., "text": ...}`` with optional ``date`` and
``metadata``. Sources whose items are rows or API objects (a benchmark corpus, a
table, a wiki page's fields) hand them over in this form.

    RecordParser().parse(b'{"title": "Sonde care", "text": "Rinse the probes."}', name="7.json")
"""

from __future__ import annotations

import json
from typing import Any

from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.parsers.markdown import parse_date
from ragline.ingest.parsers.text import paragraphs, title_from_name
from ragline.ingest.text import decode, normalize


class RecordParser:
    doc_type = DocType.RECORD

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        try:
            record: Any = json.loads(decode(data))
        except json.JSONDecodeError as e:
            raise ParseError(f"invalid JSON: {e}") from e
        except RecursionError as e:
            raise ParseError("the JSON is nested too deeply to read; flatten it") from e
        if not isinstance(record, dict):
            raise ParseError("a JSON document must be an object with a 'text' field")
        text = record.get("text", record.get("body"))
        if not isinstance(text, str):
            raise ParseError("a JSON document needs a 'text' (or 'body') string")
        body = normalize(text)
        if not body:
            raise ParseError("the document's text is empty")
        title = normalize(str(record.get("title") or "")) or title_from_name(name)
        metadata = record.get("metadata")
        return ParsedDocument(
            title=title,
            doc_type=self.doc_type,
            blocks=[Block(text=part) for part in paragraphs(body)],
            doc_date=parse_date(record["date"]) if record.get("date") else None,
            metadata=metadata if isinstance(metadata, dict) else {},
        )
