"""One object as a stream of line-aligned blocks, so a task's memory does not grow with file size.

The object is read in chunks of READ_BYTES (an S3 ``StreamingBody`` or a local file), a ``.gz``
is inflated as a stream (several concatenated members, NUL padding between members, CRC and length
of every member checked by zlib, each inflate call bounded so a gzip bomb cannot allocate more
than READ_BYTES at once), and the text is cut into blocks of about BLOCK_BYTES (16 MiB) at line feeds:

- a block holds whole lines only (its last line ends with LF, except possibly the object's last);
- a line longer than a block stays whole: the block grows until that line ends;
- a CRLF pair never straddles a cut (cuts are after the LF), so the CR is dropped as for a whole file;
- ``first_line`` is the 1-based number of the block's first line; only the first block may start
  with a BOM that is skipped (a BOM at the start of a later block is a line's content).

``glue.lines.parse_lines(block.data, first_line=block.first_line, bom=block.first)`` then gives
exactly the line numbers, counts and verdicts the whole object would have given.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

# 16 MiB of NDJSON per block (README "Memory per task"). Measured on 100 MB of generated events: the
# same speed as 32 MiB blocks (Arrow's reader is at full speed from a few MiB), peak RSS 400 MB
# instead of 525 MB, and on the slow path (Python values) 0.8 GB instead of 1.4 GB. Files up to a
# block convert exactly as a whole file always did. NDJSON_PARQUET_BLOCK_MB overrides it (set on
# the driver: the job hands its value to every task).
BLOCK_BYTES = int(float(os.environ.get("NDJSON_PARQUET_BLOCK_MB", "16")) * 1024 * 1024)
READ_BYTES = 4 * 1024 * 1024
_GZIP = 16 + zlib.MAX_WBITS  # gzip wrapper only (a zlib or raw stream is not a .gz)


class InvalidGzip(ValueError):
    """A ``.gz`` object that does not inflate (truncated, corrupt, or not gzip)."""


class ObjectReader:
    """The raw chunks of one object; ``bytes`` counts what was read (compressed size for a .gz)."""

    def __init__(self, stream: BinaryIO, read_bytes: int | None = None) -> None:
        self.stream = stream
        self.read_bytes = read_bytes or READ_BYTES
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.stream.read(self.read_bytes)
            if not chunk:
                return
            self.bytes += len(chunk)
            yield chunk


def is_gzip_name(name: str) -> bool:
    return name.lower().endswith(".gz")


def gunzip_chunks(chunks: Iterable[bytes], name: str, out_max: int | None = None) -> Iterator[bytes]:
    """Inflate a (multi-member) gzip stream chunk by chunk; the same verdicts as ``gzip.decompress``
    (empty input is empty text; NULs after a member are padding; anything else must be a member).
    Each piece is at most ``out_max`` (READ_BYTES) bytes, however much a chunk inflates."""
    out_max = out_max or READ_BYTES
    inflater = zlib.decompressobj(_GZIP)
    state = "start"  # start: nothing read yet; member: inside one; between: after a member's end
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if state == "between":
                    data = data.lstrip(b"\x00")
                    if not data:
                        break
                    inflater = zlib.decompressobj(_GZIP)
                state = "member"
                while True:
                    out = inflater.decompress(data, out_max)
                    if out:
                        yield out
                    if inflater.eof:
                        data = inflater.unused_data
                        state = "between"
                        break
                    data = inflater.unconsumed_tail
                    if not data and len(out) < out_max:
                        break  # this chunk is consumed: read the next one
                if state == "member":
                    break
    except zlib.error as exc:
        raise InvalidGzip(f"{name}: not a valid gzip stream ({exc})") from None
    if state == "member":
        raise InvalidGzip(
            f"{name}: not a valid gzip stream (Compressed file ended before the end-of-stream marker was reached)"
        )


def text_chunks(reader: Iterable[bytes], name: str) -> Iterator[bytes]:
    """The object's text in chunks: inflated for ``.gz`` names, as read otherwise."""
    return gunzip_chunks(reader, name) if is_gzip_name(name) else iter(reader)


@dataclass(frozen=True)
class Block:
    data: bytes  # whole lines; the object's last block may end without LF
    first_line: int  # 1-based physical line number of the block's first line
    first: bool  # the object's first block (a leading BOM is skipped only here)
    last: bool


def iter_blocks(chunks: Iterable[bytes], block_bytes: int | None = None) -> Iterator[Block]:
    """Cut text chunks into blocks of about ``block_bytes`` at line feeds (at least one block, which
    is empty for an empty object). A block is at most ``block_bytes`` plus one chunk, unless a
    single line is longer."""
    block_bytes = block_bytes or BLOCK_BYTES
    pieces: list[bytes] = []
    size = 0
    searched = 0  # pieces[:searched] hold no LF (already looked at)
    line = 1
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        pieces.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        cut = None
        for k in range(len(pieces) - 1, searched - 1, -1):
            i = pieces[k].rfind(b"\n")
            if i >= 0:
                cut = (k, i)
                break
        if cut is None:
            searched = len(pieces)  # inside a line longer than a block: keep reading
            continue
        k, i = cut
        data = b"".join([*pieces[:k], pieces[k][: i + 1]])
        rest = pieces[k][i + 1 :]
        pieces = ([rest] if rest else []) + pieces[k + 1 :]
        size = sum(len(p) for p in pieces)
        searched = len(pieces)  # nothing after the last LF holds one
        block = Block(data, line, first, False)
        line += data.count(b"\n")
        first = False
        del data  # only the consumer holds the block while the next one is read
        yield block
        del block
    yield Block(b"".join(pieces), line, first, True)
