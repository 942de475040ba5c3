"""Conversion of one file's bytes without Spark: fast and slow paths agree with the rules."""

from __future__ import annotations

import json

import pyarrow as pa

from glue.convert import convert_bytes, parquet_bytes, quarantine_jsonl, read_staged
from glue.lines import QuarantinedLine
from glue.storage import Storage


def test_fast_path_keeps_first_seen_order_and_adds_provenance():
    # Per file, fields keep first-seen order (the manifest's case policy needs it); parts sort them.
    table, bad, counts = convert_bytes("f.ndjson", b'{"b": 1, "a": {"z": 1, "y": "s"}}\n{"b": 2}\n', None, "m")
    assert table.column_names == ["b", "a", "_rescued_data", "_source_file", "_source_line", "_manifest_id"]
    assert table.schema.field("a").type == pa.struct([("z", pa.int64()), ("y", pa.string())])
    assert table.column("_rescued_data").to_pylist() == [None, None]
    assert table.column("_source_line").to_pylist() == [1, 2]
    assert set(table.column("_source_file").to_pylist()) == {"f.ndjson"}
    assert bad == [] and (counts.lines, counts.rows) == (2, 2)


def test_slow_path_on_conflicting_types_inside_one_file():
    table, bad, counts = convert_bytes("f", b'{"a": 1}\n{"a": "x"}\n{"a": {"k": [1]}}\n', None, "m")
    assert table.column("a").to_pylist() == ["1", "x", '{"k":[1]}']
    assert bad == [] and counts.rows == 3


def test_duplicate_keys_keep_the_last_value():
    table, _, _ = convert_bytes("f", b'{"a": 1, "a": 2}\n', None, "m")
    assert table.column("a").to_pylist() == [2]


def test_iso_strings_stay_text_when_inferred():
    table, _, _ = convert_bytes("f", b'{"t": "2024-01-01"}\n{"t": "2024-01-01T00:00:00Z"}\n', None, "m")
    assert table.schema.field("t").type == pa.string()
    assert table.column("t").to_pylist() == ["2024-01-01", "2024-01-01T00:00:00Z"]


def test_reserved_name_in_data_is_rescued_not_quarantined():
    # A valid object is a row; its key that collides (ignoring case) with a column the job writes
    # goes to _rescued_data with its original key.
    table, bad, counts = convert_bytes("f", b'{"_source_line": 9, "a": 1}\n{"a": 2, "_Rescued_Data": [1]}\n', None, "m")
    assert table.column("a").to_pylist() == [1, 2]
    assert table.column("_source_line").to_pylist() == [1, 2]
    assert table.column("_rescued_data").to_pylist() == ['{"/_source_line":9}', '{"/_Rescued_Data":[1]}']
    assert bad == [] and (counts.lines, counts.rows, counts.quarantined) == (2, 2, 0)


def test_explicit_schema_ignores_unknown_fields_and_quarantines_mismatches():
    schema = pa.schema([("a", pa.int64())])
    table, bad, _ = convert_bytes("f", b'{"a": 1, "x": "ignored"}\n{"a": 1.5}\n{}\n', schema, "m")
    assert table.column("a").to_pylist() == [1, None]
    assert table.column("_source_line").to_pylist() == [1, 3]
    assert [(q.line_number, q.reason) for q in bad] == [(2, "schema_mismatch: field 'a' expected bigint got number")]


def test_all_lines_bad_gives_an_empty_table():
    table, bad, counts = convert_bytes("f", b"nope\n[]\n", None, "m")
    assert table.num_rows == 0 and len(bad) == 2 and counts.rows == 0


def test_quarantine_jsonl_is_one_record_per_line_even_with_unicode_separators():
    q = QuarantinedLine(3, "invalid_json: x", "a\u2028b\u2029c\x85d\ne", False)
    text = quarantine_jsonl([("s3://b/k", q)], "m").decode()
    assert text.count("\n") == 1 and len(text.splitlines()) == 1
    rec = json.loads(text)
    assert rec == {
        "source_file": "s3://b/k",
        "line_number": 3,
        "reason": "invalid_json: x",
        "raw": "a\u2028b\u2029c\x85d\ne",
        "raw_truncated": False,
        "manifest_id": "m",
    }


def test_staged_parts_round_trip(tmp_path):
    table = pa.table({"a": [1, 2]})
    assert read_staged(parquet_bytes(table, "zstd"), "p.parquet").equals(table)


def test_local_replace_folder_swaps_whole_folder(tmp_path):
    storage = Storage()
    final, staged = tmp_path / "final", tmp_path / "_staging" / "run"
    (final / "old.parquet").parent.mkdir(parents=True)
    (final / "old.parquet").write_text("old")
    storage.write_bytes(str(staged / "new.parquet"), b"new")
    storage.replace_folder(str(staged), str(final))
    assert [p.name for p in final.iterdir()] == ["new.parquet"]
    assert not (tmp_path / "_staging").exists()
    assert list(tmp_path.iterdir()) == [final]


def test_reserved_field_is_just_an_unknown_field_under_an_explicit_schema():
    schema = pa.schema([("a", pa.int64())])
    # line 2 forces the slow path; both paths must treat line 1 the same way
    for data in (b'{"_source_line": 9, "a": 1}\n', b'{"_source_line": 9, "a": 1}\n{"a": "x"}\n'):
        table, bad, _ = convert_bytes("f", data, schema, "m")
        assert table.column("a").to_pylist() == [1]
        assert table.column("_source_line").to_pylist() == [1]
        assert all(q.reason.startswith("schema_mismatch") for q in bad)
