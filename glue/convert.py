"""Convert the files of one Spark task: strict parse, Arrow conversion, Parquet and quarantine parts.

Runs inside a Spark task (a whole file per task, several small files per task), so it only uses
the Python standard library, pyarrow, orjson, the sibling modules and chalicelib/counts.py. Fast path: lines that passed
the strict parse go to Arrow's C++ JSON reader in one block; if Arrow refuses the block (a type
conflict, a duplicated key, a value outside an explicit schema or a key it does not declare) or
returns a different row count, the file takes the slow path: Python dicts fitted value by value
(glue/rescue.py ``fit``), so a value that does not fit its column, or a key an explicit schema does
not declare, goes to ``_rescued_data`` and its row is kept, inferred schema or explicit. Only lines
that are not JSON objects are quarantined (glue/lines.py).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.json as pj
import pyarrow.parquet as pq

from chalicelib.counts import FileCounts
from glue import isolation
from glue.blocks import InvalidGzip, ObjectReader, iter_blocks, text_chunks
from glue.lines import (
    BadLine,
    ParsedFile,
    QuarantinedLine,
    decompress,
    loads_exact,
    parse_lines,
    quarantine,
    split_lines,
)
from glue.parts import StagedPart, TaskParts
from glue.rescue import (
    INGEST_DATE,
    MANIFEST_ID,
    MAX_COLUMN_DEPTH,
    PROVENANCE,
    RESCUED,
    RESERVED,
    SOURCE_FILE,
    SOURCE_LINE,
    fit_row,
)
from glue.schema import (
    conform_table,
    has_type,
    infer_row_schema,
    type_depth,
    unify_schemas,
)
from glue.screen import may_be_inexact, screen_lines
from glue.storage import S3Config, Storage

__all__ = ["INGEST_DATE", "MANIFEST_ID", "PROVENANCE", "RESCUED", "SOURCE_FILE", "SOURCE_LINE"]
RESCUED_FIELD = pa.field(RESCUED, pa.string())
PROVENANCE_FIELDS = [
    pa.field(SOURCE_FILE, pa.string()),
    pa.field(SOURCE_LINE, pa.int64()),
    pa.field(MANIFEST_ID, pa.string()),
]
# Table output only: the manifest's date, the table's partition column (glue/table.py).
INGEST_DATE_FIELD = pa.field(INGEST_DATE, pa.date32())
COMPRESSIONS = {"snappy": "snappy", "gzip": "gzip", "zstd": "zstd", "lz4": "lz4", "brotli": "brotli", "none": "none"}


@dataclass(frozen=True)
class TaskSpec:
    index: int
    files: tuple[str, ...]
    versions: tuple[str | None, ...]  # S3 version ids from the manifest, aligned with ``files``
    manifest_id: str
    data_dir: str
    quarantine_dir: str
    compression: str
    schema: pa.Schema | None  # explicit schema (data fields only); None: infer
    s3: S3Config
    inject: isolation.InjectedFault | None = None  # tests only (glue/isolation.py INJECT)
    target_file_mb: float = 128.0  # a data part rolls over to the next once it reaches this size
    # Set by the driver so every worker uses the same sizes (0: glue.blocks / glue.parts defaults).
    block_bytes: int = 0
    flush_bytes: int = 0
    # Table output: the manifest's date (YYYY-MM-DD), written as ``_ingest_date`` in every part.
    ingest_date: str | None = None


@dataclass
class TaskResult:
    index: int
    files: list[FileCounts] = field(default_factory=list)
    # Each file's data fields in first-seen order, aligned with ``files``: the manifest decides
    # the case policy from these in manifest order, whatever task a file ran in.
    file_schemas: list[pa.Schema] = field(default_factory=list)
    # Staged data parts in write order, each with its data fields as written (inferred mode: before
    # the manifest unifies); several when the task's output passed TARGET_FILE_MB or changed schema.
    parts: list[StagedPart] = field(default_factory=list)
    quarantine_file: str | None = None
    rows: int = 0
    seconds: float = 0.0


def _read_block(buf: bytes, schema: pa.Schema | None) -> pa.Table:
    opts = pj.ReadOptions(use_threads=False, block_size=max(len(buf) + 1, 1 << 20))
    if schema is None:
        parse = pj.ParseOptions()
    else:
        # A key the schema does not declare, at any level (nested structs, list elements), makes
        # Arrow raise: the block takes the slow path, which rescues it (glue/rescue.py fit_object).
        parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    return pj.read_json(io.BytesIO(buf), read_options=opts, parse_options=parse)


def _no_temporal(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _no_temporal(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_no_temporal(t.value_type))
    return t


def _valid(table: pa.Table) -> bool:
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _fast(lines: list[bytes], schema: pa.Schema | None, errors: list[Exception] | None = None) -> pa.Table | None:
    """Arrow's reader over the strictly valid lines, or None when the slow path must decide.
    ``errors`` (the screened core) receives the first read's refusal, which names its row."""
    block = b"\n".join(lines)
    try:
        try:
            table = _read_block(block, schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            if errors is not None:
                errors.append(exc.with_traceback(None))
            raise
        inferred = pa.struct(list(table.schema))
        checked = False  # the table as read passed full validation (not validated twice)
        if schema is None and (has_type(inferred, pa.types.is_timestamp) or not (checked := _valid(table))):
            # Arrow infers timestamps from some ISO strings; inference here keeps the text. And
            # Arrow's inference can build invalid lists when a list starts with null (apache/arrow
            # issue 51305: offsets count the null, values lack it); reading again with the inferred
            # schema given explicitly builds them right.
            table = _read_block(block, pa.schema(list(_no_temporal(inferred))))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(lines) or not (checked or _valid(table)):
        return None
    if schema is None and any(
        name.lower() in RESERVED or type_depth(f.type) > MAX_COLUMN_DEPTH
        for name, f in zip(table.column_names, table.schema, strict=True)
    ):
        # Reserved names are rescued; a column holds MAX_COLUMN_DEPTH levels (its value is level 1,
        # as in ``infer_value_type``) and a container below them becomes text: the slow path does both.
        return None
    return table


def _slow_only(exact: bool, schema: pa.Schema | None) -> bool:
    """Whether Arrow's reader would keep a value ``fit`` rescues: it rounds an integer beyond 2**53
    into a double column (and, inferring, any number only the exact reader keeps), and it reads a
    number into a date column as days since 1970 (``fit`` takes ISO strings there, which Arrow
    refuses, so such files took the slow path anyway)."""
    if schema is None:
        return exact
    declared = pa.struct(list(schema))
    return (exact and has_type(declared, pa.types.is_floating)) or has_type(declared, pa.types.is_date)


def _slow(
    lines: list[bytes], numbers: list[int], schema: pa.Schema | None
) -> tuple[pa.Table, list[int], list[QuarantinedLine]]:
    candidates: list[tuple[dict, int, bytes]] = []
    bad: list[QuarantinedLine] = []
    for line, number in zip(lines, numbers, strict=True):
        try:
            row = loads_exact(line)
        except BadLine as exc:  # cannot happen after parse_lines; kept so nothing is ever lost
            bad.append(quarantine(number, exc.reason, line))
            continue
        candidates.append((row, number, line))
    # Inferred: case-sensitive within the file, in first-seen order (the manifest applies the case
    # policy over all its files in order, glue/schema.py final_schema). Declared: a value that does
    # not fit its column is rescued and the row kept, as in inference (glue/rescue.py fit).
    target = schema if schema is not None else unify_schemas([infer_row_schema(row) for row, _, _ in candidates])
    fitted = [fit_row(row, target, explicit=schema is not None) for row, _, _ in candidates]
    rescued = pa.array([text for _, text in fitted], pa.string())
    if len(target):
        table = pa.Table.from_pylist([values for values, _ in fitted], schema=target)
        table = table.append_column(RESCUED_FIELD, rescued)
    else:  # every key rescued (or none at all): the rows still count, from _rescued_data alone
        table = pa.Table.from_arrays([rescued], schema=pa.schema([RESCUED_FIELD]))
    return table, [n for _, n, _ in candidates], bad


def convert_bytes(
    uri: str, raw: bytes, schema: pa.Schema | None, manifest_id: str
) -> tuple[pa.Table, list[QuarantinedLine], FileCounts]:
    """One file's rows (data fields + provenance) and quarantined lines, with its counts.

    A ``.gz`` object that does not decompress (truncated, or not gzip at all) is set aside whole
    as ONE quarantine record (line 1, ``lines`` = 1) instead of failing the run: failing would
    fail every other file of the manifest with it, again on every retry."""
    try:
        data = decompress(raw, uri)
    except ValueError as exc:
        return set_aside(uri, len(raw), f"invalid_gzip: {exc}; the whole object is set aside", schema)
    table, bad, counts = convert_lines(uri, data, schema, manifest_id)
    counts.bytes = len(raw)
    return table, bad, counts


# Arrow refusals the screened core locates and judges line by line before it judges the rest of the
# block strictly (each one costs a read of the block).
MAX_RETRIES = 3
_ROW = re.compile(r" in row (\d+)$")


def convert_lines(
    uri: str,
    data: bytes,
    schema: pa.Schema | None,
    manifest_id: str,
    first_line: int = 1,
    bom: bool = True,
    core: str = "screened",
) -> tuple[pa.Table, list[QuarantinedLine], FileCounts]:
    """Rows and quarantined lines of text holding whole lines: a whole file, or one block of it
    (``first_line``: number of its first line; ``bom``: it starts the file). ``bytes`` is left 0.

    ``core``: "screened" (glue/screen.py: Arrow's reader confirms the lines the screen lets through,
    one parse per byte) or "strict-first" (every line parsed strictly, then Arrow: the previous
    core, kept as the reference the screened one is tested against). Both give the same output."""
    if core == "strict-first":
        parsed = parse_lines(data, first_line=first_line, bom=bom)
        table = None
        if parsed.valid and not _slow_only(parsed.exact, schema):
            table = _fast(parsed.valid, schema)
    elif core == "screened":
        parsed, table = _screened(data, schema, first_line, bom)
    else:
        raise ValueError(f"unknown conversion core {core!r}")
    counts = FileCounts(uri=uri, lines=parsed.lines, blank=parsed.blank)
    lines, numbers = parsed.valid, parsed.valid_line_numbers
    bad = list(parsed.quarantined)
    if not lines:
        table = (schema or pa.schema([])).empty_table()
    elif table is None:
        # A number only the exact reader keeps (an integer beyond 2**53, 1e400) skips Arrow, which
        # would round it; so does a block Arrow refuses.
        table, numbers, more = _slow(lines, numbers, schema)
        bad.extend(more)
    bad.sort(key=lambda q: q.line_number)
    n = table.num_rows
    if RESCUED not in table.column_names:
        table = table.append_column(RESCUED_FIELD, pa.nulls(n, pa.string()))
    zeros = pa.array([0] * n, pa.int32()) if n else pa.array([], pa.int32())
    table = table.append_column(PROVENANCE_FIELDS[0], pa.array([uri], pa.string()).take(zeros))
    table = table.append_column(PROVENANCE_FIELDS[1], pa.array(numbers, pa.int64()))
    table = table.append_column(PROVENANCE_FIELDS[2], pa.array([manifest_id], pa.string()).take(zeros))
    counts.rows = n
    counts.quarantined = len(bad)
    return table, bad, counts


def _screened(data: bytes, schema: pa.Schema | None, first_line: int, bom: bool) -> tuple[ParsedFile, pa.Table | None]:
    """The strict verdicts and Arrow's table of a block, with one parse of most lines: the lines the
    screen lets through (glue/screen.py) are confirmed by Arrow's reading them, one row each."""
    screened = screen_lines(data, first_line, bom)
    parsed = screened.parsed
    retries = 0
    while parsed.valid:
        if _slow_only(parsed.exact, schema):
            screened.judge_all()  # the slow path needs every verdict first
            return parsed, None
        errors: list[Exception] = []
        table = _fast(parsed.valid, schema, errors)
        if table is not None and screened.pending() and may_be_inexact(table):
            screened.judge_all()  # ``exact`` decides whether Arrow's table may be used
            continue
        if table is not None or not screened.pending():
            # Accepted with one row per line (_fast checks the count): each pending line was valid.
            return parsed, table
        found = _ROW.search(str(errors[0])) if errors else None
        row = int(found.group(1)) if found else -1
        if retries < MAX_RETRIES and 0 <= row < len(parsed.valid) and screened.unverified[row]:
            retries += 1
            screened.judge(row)  # bad: quarantined, read again; valid: the next refusal judges all
        else:
            screened.judge_all()  # now exactly the strict-first verdicts: Arrow's answer is final
    return parsed, None


def set_aside(
    uri: str, size: int, reason: str, schema: pa.Schema | None
) -> tuple[pa.Table, list[QuarantinedLine], FileCounts]:
    """A file set aside whole: no rows, ONE quarantine record (line 1, empty raw) with ``reason``,
    counted as one unit (lines = quarantined = 1) so the file still reconciles."""
    counts = FileCounts(uri=uri, lines=1, rows=0, quarantined=1, blank=0, bytes=size, set_aside=reason)
    empty = with_provenance(schema or pa.schema([])).empty_table()
    return empty, [quarantine(1, reason, b"")], counts


class SourceLines:
    """Raw lines of source files by (uri, 1-based line number), read only when a row must be re-fitted
    from its source (``conform_table``: a conflict across files, another casing), once per file."""

    def __init__(self, read: Callable[[str], bytes]) -> None:
        self._read = read
        self._lines: dict[str, list[bytes]] = {}

    def __call__(self, uri: str, number: int) -> bytes:
        lines = self._lines.get(uri)
        if lines is None:
            lines = self._lines[uri] = split_lines(decompress(self._read(uri), uri))
        return lines[number - 1]


def convert_stream(
    uri: str,
    stream: BinaryIO,
    schema: pa.Schema | None,
    manifest_id: str,
    parts: TaskParts,
    block_bytes: int = 0,
    inject: isolation.InjectedFault | None = None,
) -> tuple[FileCounts, pa.Schema]:
    """Convert one object block by block (glue/blocks.py) into ``parts``: the task's memory stays
    a small multiple of BLOCK_BYTES whatever the object's size. Returns the file's counts and its
    data fields in first-seen order (one block: exactly ``convert_bytes``'s).

    A ``.gz`` that stops inflating before its first block is complete is set aside whole, as by
    ``convert_bytes``. One that breaks later keeps the rows of the blocks already converted and
    sets the rest aside as ONE quarantine record numbered after the last line converted."""
    reader = ObjectReader(stream)
    counts = FileCounts(uri=uri)
    schemas: list[pa.Schema] = []
    try:
        for block in iter_blocks(text_chunks(reader, uri), block_bytes or None):
            if inject is not None:  # tests only: glue/isolation.py
                inject.check(uri, block.data)
            table, bad, got = convert_lines(uri, block.data, schema, manifest_id, block.first_line, block.first)
            del block
            counts.lines += got.lines
            counts.rows += got.rows
            counts.quarantined += got.quarantined
            counts.blank += got.blank
            schemas.append(data_fields(table.schema))
            parts.add(table, [(uri, q) for q in bad])
    except InvalidGzip as exc:
        if not schemas:  # nothing converted yet: the whole object is set aside, as by convert_bytes
            table, records, counts = set_aside(uri, 0, f"invalid_gzip: {exc}; the whole object is set aside", schema)
            schemas.append(data_fields(table.schema))
            parts.add(table, [(uri, q) for q in records])
        else:
            n = counts.lines + 1
            reason = f"invalid_gzip: {exc}; the rest of the object from line {n} is set aside"
            parts.add(with_provenance(schema or pa.schema([])).empty_table(), [(uri, quarantine(n, reason, b""))])
            counts.lines += 1
            counts.quarantined += 1
        for _ in reader:  # ``bytes`` is the object's size, as for every other file
            pass
    counts.bytes = reader.bytes
    return counts, schemas[0] if len(schemas) == 1 else unify_schemas(schemas)


def data_fields(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in PROVENANCE and f.name != RESCUED])


def with_provenance(schema: pa.Schema, partitioned: bool = False) -> pa.Schema:
    """Data fields, then ``_rescued_data`` and the provenance columns every row carries; with
    ``partitioned`` (table output), ``_ingest_date`` last."""
    extra = [INGEST_DATE_FIELD] if partitioned else []
    return pa.schema([*data_fields(schema), RESCUED_FIELD, *PROVENANCE_FIELDS, *extra])


def parquet_bytes(table: pa.Table, compression: str) -> bytes:
    sink = io.BytesIO()
    # Microsecond timestamps: what Spark, Athena and DuckDB all read without flags.
    pq.write_table(table, sink, compression=COMPRESSIONS[compression], coerce_timestamps="us")
    return sink.getvalue()


def read_staged(data: bytes, name: str) -> pa.Table:
    if name.endswith(".arrow"):
        return ipc.open_file(pa.BufferReader(data)).read_all()
    return pq.read_table(pa.BufferReader(data))


def quarantine_jsonl(records: list[tuple[str, QuarantinedLine]], manifest_id: str) -> bytes:
    out = io.StringIO()
    for uri, q in records:
        rec = {
            "source_file": uri,
            "line_number": q.line_number,
            "reason": q.reason,
            "raw": q.raw,
            "raw_truncated": q.raw_truncated,
            "manifest_id": manifest_id,
        }
        text = json.dumps(rec, ensure_ascii=False)
        # Escape the separators that str.splitlines() and some editors treat as line breaks.
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
        out.write(text + "\n")
    return out.getvalue().encode("utf-8")


def run_task(spec: TaskSpec) -> TaskResult:
    """Convert a group of files, each streamed block by block, into staged data parts (rolling at
    TARGET_FILE_MB, glue/parts.py) and at most one quarantine part.

    Each file is converted inside the isolation guard (glue/isolation.py): a deterministic failure
    sets that file aside whole (its rows and records dropped, one record standing for it), a
    transient one fails the task. A file whose rows were already written when it failed (it
    passed FLUSH_BYTES) cannot be taken back: the task fails, and the run is retried narrower."""
    started = time.perf_counter()
    storage = Storage(spec.s3)
    result = TaskResult(index=spec.index)
    target_bytes = int(spec.target_file_mb * 1024 * 1024)
    codec = COMPRESSIONS[spec.compression]
    versions = dict(zip(spec.files, spec.versions, strict=True))
    source = SourceLines(lambda uri: storage.read_bytes(uri, versions[uri]))
    args = (spec.index, spec.data_dir, spec.quarantine_dir, codec, spec.manifest_id, spec.schema, target_bytes)
    with TaskParts(
        storage, *args, flush_bytes=spec.flush_bytes or None, source=source, ingest_date=spec.ingest_date
    ) as parts:
        for uri, version in zip(spec.files, spec.versions, strict=True):
            parts.begin_file()
            try:
                with storage.open_stream(uri, version) as stream:
                    counts, file_schema = convert_stream(
                        uri, stream, spec.schema, spec.manifest_id, parts, spec.block_bytes, spec.inject
                    )
            except Exception as exc:  # judged right here: transient re-raised, else set aside
                if isolation.is_transient(exc) or not parts.discard_file():
                    raise
                # A deterministic failure is this file's alone: set it aside, the others go on.
                size = storage.size(uri, version) or 0
                table, records, counts = set_aside(uri, size, isolation.conversion_error(exc), spec.schema)
                parts.add(table, [(uri, q) for q in records])
                file_schema = data_fields(table.schema)
            result.files.append(counts)
            result.file_schemas.append(file_schema)
    result.parts = parts.parts
    result.quarantine_file = parts.quarantine_file
    result.rows = parts.rows
    result.seconds = time.perf_counter() - started
    return result


@dataclass(frozen=True)
class ConformSpec:
    staged_file: str
    schema: pa.Schema  # full target schema, provenance included
    compression: str
    s3: S3Config
    # (uri, S3 version id) of the part's source files: rows re-fitted from their source read these
    sources: tuple[tuple[str, str | None], ...] = ()


def run_conform(spec: ConformSpec) -> str:
    """Rewrite one staged part to the manifest's schema (only parts whose schema differs)."""
    storage = Storage(spec.s3)
    table = read_staged(storage.read_bytes(spec.staged_file), spec.staged_file)
    target = spec.staged_file.rsplit(".", 1)[0] + ".parquet"
    versions = dict(spec.sources)
    source = SourceLines(lambda uri: storage.read_bytes(uri, versions.get(uri)))
    storage.write_bytes(target, parquet_bytes(conform_table(table, spec.schema, source), spec.compression))
    if target != spec.staged_file:
        storage.delete_file(spec.staged_file)
    return target
