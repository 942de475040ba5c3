"""Fault isolation inside a Spark task (glue/isolation.py, glue/convert.py run_task), without Spark:
a deterministic failure sets one file aside whole, a transient one fails the task."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from glue import isolation
from glue.convert import TaskSpec, run_task
from glue.storage import S3Config


def _slowdown() -> ClientError:
    return ClientError(
        {"Error": {"Code": "SlowDown", "Message": "reduce"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"
    )


@pytest.mark.parametrize(
    "exc",
    [
        _slowdown(),
        ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject"),
        ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject"),
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        TimeoutError("read timed out"),
        ConnectionRefusedError("refused"),
        ConnectionResetError("reset by peer"),
        FileNotFoundError("object not found"),
        MemoryError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_and_environment_errors_are_never_a_reason_to_set_a_file_aside(exc: BaseException) -> None:
    assert isolation.is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        pa.ArrowInvalid("offset overflow"),
        pa.ArrowNotImplementedError("nested"),
        RecursionError("maximum recursion depth exceeded"),
        KeyError("x"),
        TypeError("x"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        gzip.BadGzipFile("Not a gzipped file"),
        EOFError("Compressed file ended before the end-of-stream marker was reached"),
        zlib.error("invalid stored block lengths"),
        RuntimeError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_deterministic_errors_set_the_file_aside(exc: BaseException) -> None:
    assert not isolation.is_transient(exc)


def test_conversion_error_reason_names_type_and_message_on_one_bounded_line() -> None:
    assert isolation.conversion_error(ValueError("bad\nvalue")) == "conversion_error: ValueError: bad value"
    assert isolation.conversion_error(KeyError()) == "conversion_error: KeyError"
    assert len(isolation.conversion_error(ValueError("x" * 5000))) < 600


def _spec(tmp_path: Path, files: list[Path], inject: isolation.InjectedFault | None) -> TaskSpec:
    return TaskSpec(
        index=0,
        files=tuple(str(f) for f in files),
        versions=tuple(None for _ in files),
        manifest_id="2024-05-01-000001",
        data_dir=str(tmp_path / "data"),
        quarantine_dir=str(tmp_path / "q"),
        compression="snappy",
        schema=None,
        s3=S3Config(),
        inject=inject,
    )


def _inputs(tmp_path: Path) -> list[Path]:
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}.ndjson"
        marker = ', "poison": "POISON"' if i == 1 else ""
        path.write_text("".join(f'{{"id": {n}, "file": {i}{marker}}}\n' for n in range(4)) + "{bad\n\n")
        files.append(path)
    bad_gz = tmp_path / "f3.ndjson.gz"
    bad_gz.write_bytes(gzip.compress(b'{"id": 1}\n' * 50)[:-20])  # truncated
    return [*files, bad_gz]


def test_a_failing_file_is_set_aside_whole_and_its_neighbours_are_written(tmp_path: Path) -> None:
    files = _inputs(tmp_path)
    result = run_task(_spec(tmp_path, files, isolation.InjectedFault(b"POISON")))
    counts = {Path(c.uri).name: c for c in result.files}
    for name in ("f0.ndjson", "f2.ndjson"):
        c = counts[name]
        assert (c.lines, c.rows, c.quarantined, c.blank, c.set_aside) == (6, 4, 1, 1, None)
    poison = counts["f1.ndjson"]
    assert (poison.lines, poison.rows, poison.quarantined, poison.blank) == (1, 0, 1, 0)
    assert poison.set_aside == "conversion_error: RuntimeError: injected conversion failure for f1.ndjson"
    assert poison.bytes == files[1].stat().st_size
    gz = counts["f3.ndjson.gz"]
    assert (gz.lines, gz.rows, gz.quarantined, gz.blank) == (1, 0, 1, 0)
    assert gz.set_aside and gz.set_aside.startswith("invalid_gzip:")
    assert all(c.reconciles() for c in result.files)

    rows = [r for part in result.parts for r in pq.read_table(part.uri).to_pylist()]
    assert sorted({Path(r["_source_file"]).name for r in rows}) == ["f0.ndjson", "f2.ndjson"]
    assert len(rows) == result.rows == 8
    records = [json.loads(line) for line in Path(result.quarantine_file).read_text().splitlines()]
    whole = [r for r in records if Path(r["source_file"]).name in ("f1.ndjson", "f3.ndjson.gz")]
    assert [(Path(r["source_file"]).name, r["line_number"], r["raw"]) for r in whole] == [
        ("f1.ndjson", 1, ""),
        ("f3.ndjson.gz", 1, ""),
    ]
    assert whole[0]["reason"] == poison.set_aside


def test_a_transient_error_fails_the_task_instead(tmp_path: Path) -> None:
    files = _inputs(tmp_path)
    with pytest.raises(ClientError) as info:
        run_task(_spec(tmp_path, files, isolation.InjectedFault(b"POISON", kind="transient")))
    assert info.value.response["Error"]["Code"] == "SlowDown"
    staged = [p for d in ("data", "q") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert staged == []  # nothing staged (an emptied scratch folder may remain)


def test_no_fault_is_injected_unless_a_test_sets_one() -> None:
    assert isolation.INJECT is None


def test_a_part_that_cannot_be_written_fails_the_task_for_narrowing(tmp_path: Path, monkeypatch) -> None:
    # GIVEN a Parquet writer that fails (a library limit) on any table holding file 1's column:
    # the task's files are written together, so the failure belongs to no single file
    from glue import parts

    real = parts._OpenPart.write

    def limited(self: parts._OpenPart, table: pa.Table) -> None:
        if "poison" in table.column_names and table.column("poison").null_count < table.num_rows:
            raise pa.ArrowNotImplementedError("writer limit")
        real(self, table)

    monkeypatch.setattr(parts._OpenPart, "write", limited)
    # WHEN the task converts the files (each converts fine on its own)
    # THEN the task fails and stages nothing: the run fails as a whole and the workflow retries
    # its files in narrower manifests (chalicelib/workflow/compensate.py) until file 1 is alone
    with pytest.raises(pa.ArrowNotImplementedError, match="writer limit"):
        run_task(_spec(tmp_path, _inputs(tmp_path)[:3], None))
    staged = [p for d in ("data", "q") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert staged == []
