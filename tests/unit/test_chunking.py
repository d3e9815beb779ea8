from __future__ import annotations

import itertools

import pytest

from ragline.config import Settings
from ragline.domain import Block, Chunk, DocType, ParsedDocument
from ragline.embedding.local import HFTokenCounter
from ragline.ingest.chunking import PROFILES, Chunker, ChunkProfile
from ragline.ingest.text import sha256_text
from ragline.modelspec import model_path

WINDOW = 254  # MiniLM: 256 positions less [CLS] and [SEP]


@pytest.fixture(scope="module")
def tokenizer() -> HFTokenCounter:
    return HFTokenCounter(model_path(Settings()) / "tokenizer.json")


@pytest.fixture(scope="module")
def chunker(tokenizer: HFTokenCounter) -> Chunker:
    return Chunker(tokenizer, window=WINDOW)


def sentences(n: int, topic: str = "sonde") -> str:
    return " ".join(
        f"Sentence {i} explains how the {topic} behaves in cold water." for i in range(n)
    )


def doc(
    *blocks: Block, title: str = "Manual", doc_type: DocType = DocType.MARKDOWN
) -> ParsedDocument:
    return ParsedDocument(title=title, doc_type=doc_type, blocks=list(blocks))


def test_tokenizer_counts_past_the_preset_truncation(tokenizer: HFTokenCounter) -> None:
    text = "water " * 400
    assert tokenizer.count(text) == 400  # tokenizer.json truncates at 128 unless disabled


def test_token_split_covers_the_text(tokenizer: HFTokenCounter) -> None:
    text = sentences(30)
    pieces = tokenizer.split(text, 50)
    assert all(tokenizer.count(p) <= 50 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_every_chunk_fits_the_window(chunker: Chunker, tokenizer: HFTokenCounter) -> None:
    long_word = "x" * 5000
    document = doc(
        Block(sentences(200), ("Long section",)),
        Block(long_word, ("Blob",)),
        Block("\n".join(f"line {i} of a log file" for i in range(400)), ("Log",)),
    )
    chunks = list(chunker.split(document))
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.token_count == tokenizer.count(chunk.embed_text) <= WINDOW
        assert chunk.sha256 == sha256_text(chunk.embed_text)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_no_text_is_lost(chunker: Chunker) -> None:
    text = sentences(120)
    chunks = list(chunker.split(doc(Block(text, ("A",)))))
    covered = " ".join(c.text for c in chunks)
    for i in range(120):
        assert f"Sentence {i} explains" in covered


def test_chunks_carry_their_section_and_title(chunker: Chunker) -> None:
    document = doc(
        Block(sentences(12, "probe"), ("Install", "Cables")),
        Block(sentences(12, "modem"), ("Network",)),
    )
    chunks = list(chunker.split(document))
    assert {c.section for c in chunks} == {("Install", "Cables"), ("Network",)}
    cables = next(c for c in chunks if c.section == ("Install", "Cables"))
    assert cables.embed_text.startswith("Manual > Install > Cables\n\n")
    assert "modem" not in cables.text  # sections above the minimum never share a chunk


def test_consecutive_chunks_of_a_section_overlap(chunker: Chunker) -> None:
    chunks = list(chunker.split(doc(Block(sentences(60), ("S",)))))
    assert len(chunks) >= 3
    for first, second in itertools.pairwise(chunks):
        last_sentence = first.text.rsplit(". ", 1)[-1]
        assert last_sentence in second.text


def test_small_sections_are_merged_not_indexed_alone(
    chunker: Chunker, tokenizer: HFTokenCounter
) -> None:
    document = doc(
        Block("Short intro.", ("Intro",)),
        Block(sentences(6), ("Body",)),
        Block("Tiny note.", ("Note",)),
        Block(sentences(6, "modem"), ("More",)),
    )
    chunks = list(chunker.split(document))
    minimum = PROFILES[DocType.MARKDOWN].min_tokens
    assert all(tokenizer.count(c.text) >= minimum for c in chunks)
    joined = "\n".join(c.text for c in chunks)
    assert "Short intro." in joined
    assert "Tiny note." in joined


def test_a_tiny_document_is_still_one_chunk(chunker: Chunker) -> None:
    chunks = list(chunker.split(doc(Block("Only this."))))
    assert [c.text for c in chunks] == ["Only this."]


def test_tables_stay_whole_when_they_fit(chunker: Chunker) -> None:
    table = "Part | Torque\nM8 | 12 Nm\nM10 | 20 Nm"
    document = doc(Block(sentences(15), ("Specs",)), Block(table, ("Specs",), kind="table"))
    assert any(table in c.text for c in chunker.split(document))


def test_long_tables_repeat_their_header(chunker: Chunker) -> None:
    rows = "\n".join(f"sensor-{i} | {i * 3} mA | {i % 7} mV offset" for i in range(200))
    table = "Sensor | Current | Offset\n" + rows
    chunks = list(chunker.split(doc(Block(table, ("Power",), kind="table"))))
    assert len(chunks) > 2
    assert all(c.text.startswith("Sensor | Current | Offset") for c in chunks)
    assert sum(c.text.count("sensor-") for c in chunks) >= 200


def test_profile_sizes_are_respected(tokenizer: HFTokenCounter) -> None:
    profile = ChunkProfile("small", max_tokens=60, overlap_tokens=0, min_tokens=5)
    chunks: list[Chunk] = list(
        Chunker(tokenizer, window=WINDOW).split(doc(Block(sentences(40), ("S",))), profile)
    )
    assert all(tokenizer.count(c.text) <= 60 for c in chunks)
    assert len(chunks) >= 8


def test_pdf_chunks_know_their_page(chunker: Chunker) -> None:
    document = doc(
        Block(sentences(20), ("Page 1",), page=1),
        Block(sentences(20, "cable"), ("Page 2",), page=2),
        doc_type=DocType.PDF,
    )
    pages = {(c.section, c.page) for c in chunker.split(document)}
    assert pages == {(("Page 1",), 1), (("Page 2",), 2)}
