"""A task's staged output written as it is produced: data parts that roll at TARGET_FILE_MB and one
quarantine part, each built in a local scratch file and stored when complete.

Tables (one per block of a file, data fields + ``_rescued_data`` + provenance) wait in memory until
FLUSH_BYTES of Arrow data are pending or the task ends. A flush unifies the pending tables' schemas
the way a task always has (case-sensitive union, struct fields sorted), conforms them and writes
them as row groups:

- into the open part when its schema already holds them (the union changes nothing),
- else into a new part (the open one is closed), Parquet when every type is storable, Arrow IPC
  (``.arrow``) when a type (null, empty struct) must wait for the manifest's schema;
- a part that reached ``target_bytes`` is closed; the next flush opens a new one.

A task whose output fits in one flush (every task of small files) therefore writes exactly the one
``part-<task>.parquet`` it always wrote, with the same schema and row groups. Parts whose schema
differs from the manifest's are conformed by the job afterwards (glue/job.py), as before.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from glue.storage import Storage, join

# Arrow data held before a flush: bounds the task's memory; larger flushes only make fewer row groups.
FLUSH_BYTES = int(float(os.environ.get("NDJSON_PARQUET_FLUSH_MB", "64")) * 1024 * 1024)


@dataclass(frozen=True)
class StagedPart:
    uri: str
    schema: pa.Schema  # data fields as written (before the manifest's schema is known)
    rows: int


class _OpenPart:
    def __init__(self, storage: Storage, uri: str, schema: pa.Schema, compression: str) -> None:
        self.storage, self.uri, self.schema = storage, uri, schema
        self.scratch = storage.scratch_path(uri)
        self.sink = pa.OSFile(str(self.scratch), "wb")
        self.rows = 0
        self.writer: Any
        if uri.endswith(".arrow"):
            self.writer = ipc.new_file(self.sink, schema)
        else:
            # Microsecond timestamps: what Spark, Athena and DuckDB all read without flags.
            self.writer = pq.ParquetWriter(self.sink, schema, compression=compression, coerce_timestamps="us")

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def bytes(self) -> int:
        return self.sink.tell()

    def close(self) -> None:
        self.writer.close()
        self.sink.close()
        self.storage.put_file(self.scratch, self.uri)

    def abort(self) -> None:
        try:
            self.writer.close()
            self.sink.close()
        finally:
            Path(self.scratch).unlink(missing_ok=True)


class TaskParts:
    """The rolling writer of one task. ``add`` each block's table and quarantined lines in order,
    ``close`` once; then ``parts`` and ``quarantine_file`` name what was staged."""

    def __init__(
        self,
        storage: Storage,
        index: int,
        data_dir: str,
        quarantine_dir: str,
        compression: str,
        manifest_id: str,
        schema: pa.Schema | None,
        target_bytes: int,
        flush_bytes: int | None = None,
        source: Any = None,
        ingest_date: str | None = None,
    ) -> None:
        self.storage = storage
        self.index = index
        self.data_dir, self.quarantine_dir = data_dir, quarantine_dir
        self.compression, self.manifest_id, self.schema = compression, manifest_id, schema
        self.target_bytes, self.flush_bytes = max(int(target_bytes), 1), flush_bytes or FLUSH_BYTES
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0
        self.open: _OpenPart | None = None
        self.parts: list[StagedPart] = []
        self.rows = 0
        self.quarantine_file: str | None = None
        self._q_scratch: Path | None = None
        self._q_sink: Any = None
        self._flushes = 0
        self._mark: tuple[int, int, int, int] = (0, 0, 0, 0)
        # Source lines by (uri, line number) for rows conform_table must re-fit from their source
        # (glue/convert.py SourceLines); None: re-fit from the converted values.
        self.source = source
        # Table output: every row carries the manifest's date, the table's partition value.
        self.ingest_date = datetime.date.fromisoformat(ingest_date) if ingest_date else None

    # ------------------------------------------------------------------ input

    def add(self, table: pa.Table, bad: list[tuple[str, Any]]) -> None:
        if bad:
            self._quarantine(bad)
        if self.ingest_date is not None:
            from glue.convert import INGEST_DATE_FIELD

            date = pa.array([self.ingest_date], INGEST_DATE_FIELD.type)
            table = table.append_column(INGEST_DATE_FIELD, date.take(pa.array([0] * table.num_rows, pa.int32())))
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        if self.pending_bytes >= self.flush_bytes:
            self.flush()

    def begin_file(self) -> None:
        """Mark where one file's output starts (see ``discard_file``)."""
        qpos = self._q_sink.tell() if self._q_sink is not None else 0
        self._mark = (len(self.pending), self.pending_bytes, qpos, self._flushes)

    def discard_file(self) -> bool:
        """Drop what was added since ``begin_file`` (a file set aside whole after its conversion
        failed). False when some of it was already written (the file passed FLUSH_BYTES): the
        caller must then fail the task, as a failed task always did."""
        n, nbytes, qpos, flushes = self._mark
        if flushes != self._flushes:
            return False
        del self.pending[n:]
        self.pending_bytes = nbytes
        if self._q_sink is not None:
            self._q_sink.seek(qpos)
            self._q_sink.truncate()
        return True

    def _quarantine(self, bad: list[tuple[str, Any]]) -> None:
        from glue.convert import quarantine_jsonl

        if self._q_sink is None:
            self.quarantine_file = join(self.quarantine_dir, f"part-{self.index:05d}.jsonl")
            self._q_scratch = self.storage.scratch_path(self.quarantine_file)
            self._q_sink = self._q_scratch.open("wb")
        self._q_sink.write(quarantine_jsonl(bad, self.manifest_id))

    # ------------------------------------------------------------------ output

    def _target(self, tables: list[pa.Table]) -> pa.Schema:
        from glue.convert import data_fields, with_provenance
        from glue.schema import sorted_schema, unify_schemas

        partitioned = self.ingest_date is not None
        if self.schema is not None:
            return with_provenance(self.schema, partitioned)
        return with_provenance(sorted_schema(unify_schemas([data_fields(t.schema) for t in tables])), partitioned)

    def _part_uri(self, kind: str) -> str:
        n = len(self.parts) + (self.open is not None)
        # "_" sorts after ".": part-00003.parquet, part-00003_0001.parquet, ... list in write order
        stem = f"part-{self.index:05d}" if n == 0 else f"part-{self.index:05d}_{n:04d}"
        return join(self.data_dir, f"{stem}.{kind}")

    def flush(self) -> None:
        from glue.schema import conform_table, storable_schema

        tables, self.pending, self.pending_bytes = self.pending, [], 0
        self._flushes += 1
        if not sum(t.num_rows for t in tables):
            return
        target = self._target(tables)
        if self.open is not None:
            merged = self._target([self.open.schema.empty_table(), target.empty_table()])
            if merged == self.open.schema:
                target = merged  # the open part already holds these columns and types
            else:
                self._close_open()
        table = pa.concat_tables([conform_table(t, target, self.source) for t in tables])
        del tables
        if self.open is None:
            kind = "parquet" if storable_schema(target) == target else "arrow"
            self.open = _OpenPart(self.storage, self._part_uri(kind), target, self.compression)
        self.open.write(table)
        self.rows += table.num_rows
        if self.open.bytes() >= self.target_bytes:
            self._close_open()

    def _close_open(self) -> None:
        from glue.convert import data_fields

        part, self.open = self.open, None
        if part is None:
            return
        part.close()
        self.parts.append(StagedPart(part.uri, data_fields(part.schema), part.rows))

    def close(self) -> None:
        self.flush()
        self._close_open()
        if self._q_sink is not None:
            empty = self._q_sink.tell() == 0  # every record discarded with its file
            self._q_sink.close()
            self._q_sink = None
            assert self._q_scratch is not None and self.quarantine_file is not None
            if empty:
                self._q_scratch.unlink(missing_ok=True)
                self.quarantine_file = None
            else:
                self.storage.put_file(self._q_scratch, self.quarantine_file)

    def abort(self) -> None:
        """Drop what is not stored yet (scratch files); stored parts are in the task's staging
        folder, which the job deletes when the run fails."""
        self.pending = []
        if self.open is not None:
            self.open.abort()
            self.open = None
        if self._q_sink is not None:
            self._q_sink.close()
            self._q_sink = None
            if self._q_scratch is not None:
                self._q_scratch.unlink(missing_ok=True)

    def __enter__(self) -> TaskParts:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()  # a failed last flush leaves no scratch file behind either
            raise
