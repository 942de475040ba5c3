"""The block reader (glue/blocks.py): cutting an object into blocks never changes what a whole-file
parse says, line numbers, counts and verdicts included, whatever the block and chunk sizes."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue.blocks import InvalidGzip, ObjectReader, gunzip_chunks, iter_blocks, text_chunks
from glue.convert import convert_bytes, convert_stream
from glue.lines import BOM, ParsedFile, parse_lines
from glue.parts import TaskParts
from glue.storage import Storage


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _parse_blocks(data: bytes, block_bytes: int, chunk: int) -> tuple[ParsedFile, list]:
    """What the blocks say, merged into one ParsedFile (and the blocks, to look at)."""
    merged = ParsedFile()
    blocks = list(iter_blocks(_chunks(data, chunk), block_bytes))
    for b in blocks:
        p = parse_lines(b.data, first_line=b.first_line, bom=b.first)
        merged.lines += p.lines
        merged.blank += p.blank
        merged.valid += p.valid
        merged.valid_line_numbers += p.valid_line_numbers
        merged.quarantined += p.quarantined
        merged.exact = merged.exact or p.exact
    return merged, blocks


def _same(a: ParsedFile, b: ParsedFile) -> None:
    assert (a.lines, a.blank, a.valid, a.valid_line_numbers, a.quarantined, a.exact) == (
        b.lines,
        b.blank,
        b.valid,
        b.valid_line_numbers,
        b.quarantined,
        b.exact,
    )


MIXED = (
    BOM + b'{"a": 1}\r\n'
    b"\r\n"
    b"{'bad': 1}\n"
    b'{"b": "two"}\r\n'
    b"   \n"
    b'{"c": 12345678901234567890}\n' + BOM + b'{"after_bom": true}\n'
    b"[1]\n"
    b'{"last": "no newline"}'
)


@pytest.mark.parametrize("block_bytes", [1, 5, 11, 16, 23, 40, 1 << 20])
@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_blocks_agree_with_the_whole_file(block_bytes, chunk):
    # Line numbers across block boundaries, CRLF pairs at every cut position, blank and bad lines,
    # a BOM only skipped at the start, a long integer, and a last line without newline.
    whole = parse_lines(MIXED)
    merged, blocks = _parse_blocks(MIXED, block_bytes, chunk)
    _same(merged, whole)
    assert whole.lines == 9 and whole.valid_line_numbers == [1, 4, 6, 9]
    assert [q.line_number for q in whole.quarantined] == [3, 7, 8]  # the mid-file BOM line stays invalid
    assert b"".join(b.data for b in blocks) == MIXED
    assert blocks[0].first and not any(b.first for b in blocks[1:]) and blocks[-1].last
    for b in blocks[:-1]:
        assert b.data.endswith(b"\n")  # a cut is after LF: a CRLF pair is never split


def test_line_numbers_carry_across_blocks():
    data = b"".join(b'{"i": %d}\n' % i for i in range(1, 1001))
    merged, blocks = _parse_blocks(data, block_bytes=1000, chunk=97)
    assert len(blocks) > 10
    assert merged.valid_line_numbers == list(range(1, 1001))
    assert [b.first_line for b in blocks][:2] == [1, blocks[0].data.count(b"\n") + 1]
    assert all(len(b.data) <= 1000 + 97 for b in blocks)  # at most a block plus one chunk


def test_a_line_longer_than_a_block_stays_whole():
    long = b'{"x": "' + b"y" * 5000 + b'"}'
    data = b'{"a": 1}\n' + long + b'\n{"b": 2}\n'
    merged, blocks = _parse_blocks(data, block_bytes=100, chunk=64)
    _same(merged, parse_lines(data))
    assert any(long in b.data for b in blocks)
    assert merged.valid_line_numbers == [1, 2, 3]


def test_no_trailing_newline_and_empty_object():
    merged, blocks = _parse_blocks(b'{"a": 1}\n{"a": 2}', block_bytes=4, chunk=3)
    assert (merged.lines, merged.valid_line_numbers) == (2, [1, 2])
    assert list(iter_blocks([])) and next(iter(iter_blocks([]))).data == b""  # one empty block


def test_multi_member_gzip_with_padding_streams_in_bounded_pieces():
    text = b"".join(b'{"i": %d, "pad": "%s"}\n' % (i, b"z" * 50) for i in range(2000))
    half = len(text) // 2
    raw = gzip.compress(text[:half]) + b"\x00\x00\x00" + gzip.compress(text[half:]) + b"\x00"
    for chunk in (1, 13, 4096, len(raw)):
        pieces = list(gunzip_chunks(_chunks(raw, chunk), "f.gz", out_max=1000))
        assert b"".join(pieces) == text == gzip.decompress(raw)
        assert max(len(p) for p in pieces) <= 1000  # a gzip bomb cannot allocate more than out_max at once
    reader = ObjectReader(io.BytesIO(raw), read_bytes=100)
    assert b"".join(text_chunks(reader, "F.NDJSON.GZ")) == text and reader.bytes == len(raw)
    assert b"".join(text_chunks(ObjectReader(io.BytesIO(b"plain\n")), "f.ndjson")) == b"plain\n"
    assert b"".join(gunzip_chunks([], "empty.gz")) == gzip.decompress(b"") == b""


@pytest.mark.parametrize(
    "raw",
    [
        # mtime=0: the bytes are in the test ids, which every xdist worker must collect alike
        gzip.compress(b'{"a": 1}\n' * 100, mtime=0)[:-5],  # truncated
        gzip.compress(b'{"a": 1}\n', mtime=0) + b"garbage",  # trailing bytes that are not a member
        b"not gzip at all",
        b"\x00\x00",
        b"\x1f",
        zlib.compress(b'{"a": 1}\n'),  # zlib, not gzip
    ],
    ids=["truncated", "trailing-garbage", "not-gzip", "two-nuls", "one-byte", "zlib"],
)
def test_invalid_gzip_is_refused_like_gzip_decompress(raw):
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(raw)
    with pytest.raises(InvalidGzip, match="f.gz: not a valid gzip stream"):
        b"".join(gunzip_chunks(_chunks(raw, 3), "f.gz"))


def _stream(tmp_path, uri: str, raw: bytes, block_mb: float, monkeypatch) -> tuple[pa.Table, list, object]:
    import glue.blocks as blocks

    monkeypatch.setattr(blocks, "BLOCK_BYTES", int(block_mb * 1024 * 1024))
    monkeypatch.setattr(blocks, "READ_BYTES", 4096)
    storage = Storage()
    with TaskParts(storage, 0, str(tmp_path / "d"), str(tmp_path / "q"), "snappy", "m", None, 1 << 30) as parts:
        counts, schema = convert_stream(uri, io.BytesIO(raw), None, "m", parts)
    tables = [pq.read_table(p.uri) for p in parts.parts]
    bad = []
    if parts.quarantine_file:
        text = Path(parts.quarantine_file).read_text(encoding="utf-8")
        bad = [json.loads(x) for x in text.splitlines()]
    return (pa.concat_tables(tables) if tables else None), bad, counts


def test_convert_stream_small_file_equals_convert_bytes(tmp_path, monkeypatch):
    raw = gzip.compress(MIXED)
    table, bad, counts = _stream(tmp_path, "f.ndjson.gz", raw, 32, monkeypatch)
    want, want_bad, want_counts = convert_bytes("f.ndjson.gz", raw, None, "m")
    assert counts == want_counts
    assert table.to_pylist() == want.select(table.column_names).to_pylist()
    assert [(b["line_number"], b["reason"]) for b in bad] == [(q.line_number, q.reason) for q in want_bad]


def test_convert_stream_many_blocks_keeps_every_line(tmp_path, monkeypatch):
    lines = [b'{"i": %d}' % i if i % 7 else b"bad %d" % i for i in range(1, 3001)]
    raw = b"\r\n".join(lines)
    table, bad, counts = _stream(tmp_path, "f.ndjson", raw, 0.005, monkeypatch)  # ~5 KB blocks
    assert (counts.lines, counts.rows, counts.quarantined, counts.bytes) == (3000, 3000 - 428, 428, len(raw))
    assert table.column("_source_line").to_pylist() == [i for i in range(1, 3001) if i % 7]
    assert table.column("i").to_pylist() == [i for i in range(1, 3001) if i % 7]
    assert [b["line_number"] for b in bad] == list(range(7, 3001, 7))


def test_gzip_broken_after_the_first_block_keeps_earlier_rows(tmp_path, monkeypatch):
    text = b"".join(b'{"i": %d}\n' % i for i in range(1, 5001))
    raw = gzip.compress(text)[:-20]
    table, bad, counts = _stream(tmp_path, "f.gz", raw, 0.005, monkeypatch)
    assert counts.reconciles() and counts.quarantined == 1 and counts.rows > 0 and counts.bytes == len(raw)
    assert bad[0]["line_number"] == counts.rows + 1 == counts.lines
    assert bad[0]["reason"].startswith("invalid_gzip:") and "the rest of the object" in bad[0]["reason"]
    # broken before a first block is complete: set aside whole, exactly as convert_bytes does
    table, bad, counts = _stream(tmp_path / "small", "g.gz", raw, 32, monkeypatch)
    assert table is None and (counts.lines, counts.quarantined, counts.bytes) == (1, 1, len(raw))
    assert bad[0]["line_number"] == 1 and "the whole object is set aside" in bad[0]["reason"]
