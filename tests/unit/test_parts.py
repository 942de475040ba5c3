"""The rolling writer (glue/parts.py): parts roll at the target size, every row is kept in order, and
a task whose output fits in one flush writes exactly the one part the job always wrote."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from glue.convert import convert_bytes, data_fields, parquet_bytes, with_provenance
from glue.lines import QuarantinedLine
from glue.parts import TaskParts
from glue.schema import conform_table, sorted_schema, unify_schemas
from glue.storage import Storage


def _writer(tmp_path, target_bytes=1 << 30, flush_bytes=1 << 30, schema=None) -> TaskParts:
    return TaskParts(
        Storage(), 3, str(tmp_path / "d"), str(tmp_path / "q"), "snappy", "m", schema, target_bytes, flush_bytes
    )


def _block(first: int, n: int, extra: str = "") -> pa.Table:
    rng = random.Random(first)
    rows = [{"i": i, "s": rng.randbytes(20).hex(), **({extra: i} if extra else {})} for i in range(n)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    table, _, _ = convert_bytes(f"f{first}", text.encode(), None, "m")
    return table


def test_parts_roll_at_the_target_size_and_keep_every_row_in_order(tmp_path):
    blocks = [_block(k, 500) for k in range(12)]
    with _writer(tmp_path, target_bytes=40_000, flush_bytes=1) as parts:  # flush every block
        for b in blocks:
            parts.add(b, [])
    assert len(parts.parts) > 2
    names = [p.uri.rsplit("/", 1)[-1] for p in parts.parts]
    assert names[0] == "part-00003.parquet" and names[1] == "part-00003_0001.parquet"
    assert sorted(names) == names  # write order is name order
    got = pa.concat_tables([pq.read_table(p.uri) for p in parts.parts])
    assert (
        got.to_pylist()
        == pa.concat_tables([conform_table(b, pq.read_table(parts.parts[0].uri).schema) for b in blocks]).to_pylist()
    )
    assert parts.rows == got.num_rows == sum(p.rows for p in parts.parts) == 6000
    for p in parts.parts[:-1]:  # each part closed once it passed the target
        assert (tmp_path / "d" / p.uri.rsplit("/", 1)[-1]).stat().st_size >= 40_000
    assert not list((tmp_path / "d").glob(".*"))  # no scratch file left


def test_one_flush_writes_exactly_the_part_the_task_always_wrote(tmp_path):
    # Two files with different fields: one part, their unified sorted schema, same bytes as before.
    a, b = _block(0, 10), _block(1, 10, extra="Extra")
    bad = [("f1", QuarantinedLine(2, "invalid_json: x", "x", False))]
    with _writer(tmp_path) as parts:
        parts.add(a, [])
        parts.add(b, bad)
    target = with_provenance(sorted_schema(unify_schemas([data_fields(a.schema), data_fields(b.schema)])))
    old = parquet_bytes(pa.concat_tables([conform_table(t, target) for t in (a, b)]), "snappy")
    assert [p.uri.rsplit("/", 1)[-1] for p in parts.parts] == ["part-00003.parquet"]
    assert (tmp_path / "d" / "part-00003.parquet").read_bytes() == old
    assert parts.parts[0].schema == data_fields(target)
    record = json.loads((tmp_path / "q" / "part-00003.jsonl").read_text())
    assert (record["source_file"], record["line_number"], record["manifest_id"]) == ("f1", 2, "m")


def test_a_new_schema_mid_task_opens_a_new_part_and_null_types_wait_in_arrow(tmp_path):
    nulls, _, _ = convert_bytes("n", b'{"z": null}\n', None, "m")
    with _writer(tmp_path, flush_bytes=1) as parts:
        parts.add(_block(0, 5), [])
        parts.add(_block(1, 5), [])  # same schema: same part
        parts.add(_block(2, 5, extra="new"), [])  # a new column: a new part
        parts.add(nulls, [])  # a null type: Arrow IPC until the manifest's schema is known
        parts.add(_block(3, 0), [])  # no rows: nothing written
    assert [(p.uri.rsplit("/", 1)[-1], p.rows) for p in parts.parts] == [
        ("part-00003.parquet", 10),
        ("part-00003_0001.parquet", 5),
        ("part-00003_0002.arrow", 1),
    ]
    assert ipc.open_file(parts.parts[2].uri).read_all().column("z").type == pa.null()
    assert parts.quarantine_file is None and not (tmp_path / "q").exists()


def test_nothing_is_stored_when_the_task_fails(tmp_path):
    try:
        with _writer(tmp_path, flush_bytes=1) as parts:
            parts.add(_block(0, 5), [("f", QuarantinedLine(1, "invalid_json: x", "x", False))])
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not list((tmp_path / "d").glob("*")) and not list((tmp_path / "q").glob("*"))


def test_a_file_is_discarded_whole_until_its_rows_are_written(tmp_path):
    # What a per-file error guard needs: drop a failed file's rows and records, keep its neighbours'.
    bad = [("f", QuarantinedLine(1, "invalid_json: x", "x", False))]
    with _writer(tmp_path) as parts:
        parts.begin_file()
        parts.add(_block(0, 5), bad)
        parts.begin_file()
        parts.add(_block(1, 7), bad)
        parts.add(_block(2, 7), [])
        assert parts.discard_file()
    assert [p.rows for p in parts.parts] == [5]
    assert len((tmp_path / "q" / "part-00003.jsonl").read_text().splitlines()) == 1
    with _writer(tmp_path / "2", flush_bytes=1) as parts:
        parts.begin_file()
        parts.add(_block(0, 5), bad)
        assert not parts.discard_file()  # already written: the task must fail instead
    with _writer(tmp_path / "3") as parts:
        parts.begin_file()
        parts.add(_block(0, 5), bad)
        assert parts.discard_file()
    assert parts.parts == [] and parts.quarantine_file is None and not list((tmp_path / "3").rglob("*.*"))
