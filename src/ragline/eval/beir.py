"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

dataset = BeirDataset(Path("scifact"))
source = dataset.source()                 # a Source: one JSON record per document
queries, qrels = dataset.queries("test"), dataset.qrels("test")
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragline.errors import ConfigurationError, SourceUnavailable
from ragline.ingest.connectors.base import SourceItem

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class BeirDataset:
    path: Path

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def _file(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        if not path.is_file():
            raise ConfigurationError(
                f"{path} not found: a BEIR dataset folder holds corpus.jsonl, queries.jsonl "
                "and qrels/<split>.tsv"
            )
        return path

    def source(self) -> BeirCorpusSource:
        return BeirCorpusSource(self._file("corpus.jsonl"))

    def queries(self, split: str) -> dict[str, str]:
        """The queries judged in ``split``, by id."""
        judged = self.qrels(split)
        queries: dict[str, str] = {}
        with self._file("queries.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    if record["_id"] in judged:
                        queries[record["_id"]] = record["text"]
        return queries

    def qrels(self, split: str) -> Qrels:
        qrels: Qrels = {}
        with self._file("qrels", f"{split}.tsv").open(encoding="utf-8", newline="") as f:
            rows = csv.reader(f, delimiter="\t")
            header = next(rows, None)
            if header is None:
                return qrels
            for row in rows:
                if len(row) >= 3:
                    qrels.setdefault(row[0], {})[row[1]] = int(row[2])
        return qrels


class BeirCorpusSource:
    """The corpus as a source: each line a document, ``title`` + ``text``, id ``_id``."""

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus.resolve()
        self.name = f"beir:{self.corpus}"
        self._lines: dict[str, bytes] = {}

    def list(self) -> Iterator[SourceItem]:
        try:
            with self.corpus.open("rb") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        doc_id = str(record["_id"])
                    except (ValueError, KeyError) as e:
                        raise SourceUnavailable(
                            f"{self.corpus}:{number} is not a BEIR corpus record: {e}"
                        ) from e
                    self._lines[doc_id] = line
                    yield SourceItem(
                        doc_id=doc_id,
                        name=f"{doc_id}.json",
                        uri=f"{self.corpus.as_uri()}#{doc_id}",
                        etag=hashlib.sha256(line).hexdigest(),
                        size=len(line),
                    )
        except OSError as e:
            raise SourceUnavailable(f"cannot read {self.corpus}: {e.strerror}") from e

    def read(self, item: SourceItem) -> bytes:
        return self._lines[item.doc_id]
