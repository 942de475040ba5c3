"""Conversion of one file's bytes without Spark: fast and slow paths agree with the rules."""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pytest

import glue.convert as convert_module
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


def test_explicit_schema_rescues_unknown_fields_and_mismatches():
    schema = pa.schema([("a", pa.int64())])
    table, bad, counts = convert_bytes("f", b'{"a": 1, "x": "kept"}\n{"a": 1.5}\n{}\n', schema, "m")
    assert table.column("a").to_pylist() == [1, None, None]
    assert table.column("_rescued_data").to_pylist() == ['{"/x":"kept"}', '{"/a":1.5}', None]
    assert table.column("_source_line").to_pylist() == [1, 2, 3]
    assert bad == [] and (counts.lines, counts.rows, counts.quarantined) == (3, 3, 0)


DECLARED = pa.schema(
    [
        ("id", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("n", pa.int32()),
        ("s", pa.string()),
        ("x", pa.float64()),
        ("amt", pa.decimal128(10, 2)),
        ("user", pa.struct([("age", pa.int32()), ("name", pa.string())])),
    ]
)
GOOD = (
    b'{"id": 1, "at": "2024-05-01T10:00:00Z", "n": 7, "s": "a", "x": 3, "amt": "12.5", '
    b'"user": {"age": 30, "name": "u"}}'
)


@pytest.mark.parametrize(
    ("line", "column", "rescued"),
    [
        (b'{"id": "2"}', "id", '{"/id":"2"}'),
        (b'{"n": 4000000000}', "n", '{"/n":4000000000}'),
        (b'{"at": "yesterday"}', "at", '{"/at":"yesterday"}'),
        (b'{"s": {"k": [1.50, true]}}', "s", '{"/s":{"k":[1.50,true]}}'),
        (b'{"x": "3"}', "x", '{"/x":"3"}'),
        (b'{"x": 9007199254740993}', "x", '{"/x":9007199254740993}'),
        (b'{"amt": 1.234}', "amt", '{"/amt":1.234}'),
        (b'{"user": "u"}', "user", '{"/user":"u"}'),
    ],
)
def test_explicit_schema_rescues_a_value_that_does_not_fit_and_keeps_its_row(line, column, rescued):
    table, bad, counts = convert_bytes("f", GOOD + b"\n" + line + b"\n", DECLARED, "m")
    assert bad == [] and (counts.lines, counts.rows, counts.quarantined) == (2, 2, 0)
    assert table.column("_rescued_data").to_pylist() == [None, rescued]
    assert table.column(column).to_pylist()[1] is None
    assert table.column("_source_line").to_pylist() == [1, 2]


def test_explicit_schema_values_that_fit_are_the_same_on_the_fast_and_the_slow_path():
    fast, _, _ = convert_bytes("f", GOOD + b"\n", DECLARED, "m")
    slow, _, _ = convert_bytes("f", GOOD + b'\n{"id": "x"}\n', DECLARED, "m")
    row = fast.to_pylist()[0]
    assert slow.to_pylist()[0] == row
    assert str(row["amt"]) == "12.50" and row["x"] == 3.0 and row["at"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert row["user"] == {"age": 30, "name": "u"} and row["_rescued_data"] is None


def test_explicit_schema_rescues_a_nested_field_and_keeps_the_rest_of_the_struct():
    table, bad, _ = convert_bytes("f", b'{"id": 1, "user": {"age": "old", "name": "u", "extra": 1}}\n', DECLARED, "m")
    assert bad == []
    assert table.column("user").to_pylist() == [{"age": None, "name": "u"}]
    assert table.column("id").to_pylist() == [1]
    assert table.column("_rescued_data").to_pylist() == ['{"/user/age":"old","/user/extra":1}']


LISTED = pa.schema(
    [
        ("id", pa.int64()),
        ("user", pa.struct([("age", pa.int32()), ("name", pa.string())])),
        ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))),
    ]
)
LISTED_GOOD = b'{"id": 1, "user": {"age": 30, "name": "u"}, "items": [{"sku": "a", "qty": 2}, {"sku": "b"}]}'


def _spy_slow(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the blocks that take the slow path (glue/convert.py ``_slow``)."""
    calls: list[int] = []
    real = convert_module._slow

    def spy(lines, numbers, schema):  # type: ignore[no-untyped-def]
        calls.append(len(lines))
        return real(lines, numbers, schema)

    monkeypatch.setattr(convert_module, "_slow", spy)
    return calls


@pytest.mark.parametrize(
    ("line", "rescued"),
    [
        (b'{"id": 2, "other": {"k": [1.50]}}', '{"/other":{"k":[1.50]}}'),
        (b'{"id": 2, "other": null}', '{"/other":null}'),
        (b'{"id": 2, "ID": 3}', '{"/ID":3}'),
        (b'{"id": 2, "_source_line": 9, "_Rescued_Data": "x"}', '{"/_source_line":9,"/_Rescued_Data":"x"}'),
        (b'{"id": 2, "user": {"age": 2, "nick": "n"}}', '{"/user/nick":"n"}'),
        (b'{"id": 2, "user": {"nick": {"a/b": null}}}', '{"/user/nick":{"a/b":null}}'),
        (b'{"id": 2, "items": [{"sku": "a"}, {"sku": "b", "note": "x"}]}', '{"/items/1/note":"x"}'),
        (b'{"id": 2, "x~y": 1, "items": [{"a/b": 1}]}', '{"/x~0y":1,"/items/0/a~1b":1}'),
        (b'{"id": 2, "extra": 1, "extra": 2}', '{"/extra":1,"/extra#2":2}'),
    ],
)
def test_explicit_schema_rescues_undeclared_keys_at_any_level_on_both_paths(monkeypatch, line, rescued):
    # Alone (every other line fits: Arrow's reader sees the undeclared key and the block takes the
    # slow path), and beside a line that needs the slow path anyway: the same row either way.
    calls = _spy_slow(monkeypatch)
    for data in (LISTED_GOOD + b"\n" + line + b"\n", LISTED_GOOD + b"\n" + line + b'\n{"id": "slow"}\n'):
        table, bad, counts = convert_bytes("f", data, LISTED, "m")
        assert bad == [] and counts.rows == counts.lines == data.count(b"\n")
        assert table.column_names[: len(LISTED)] == LISTED.names
        assert table.column("_rescued_data").to_pylist()[:2] == [None, rescued]
        assert table.column("id").to_pylist()[:2] == [1, 2]
        assert table.column("_source_line").to_pylist()[:2] == [1, 2]
    assert len(calls) == 2


def test_explicit_schema_keeps_declared_values_beside_undeclared_keys():
    line = b'{"id": 2, "user": {"age": 3, "nick": "n"}, "items": [{"sku": "a", "qty": 1, "note": "x"}], "z": 0}\n'
    table, bad, _ = convert_bytes("f", line, LISTED, "m")
    assert bad == []
    assert table.to_pylist()[0] | {"_source_file": None} == {
        "id": 2,
        "user": {"age": 3, "name": None},
        "items": [{"sku": "a", "qty": 1}],
        "_rescued_data": '{"/user/nick":"n","/items/0/note":"x","/z":0}',
        "_source_file": None,
        "_source_line": 1,
        "_manifest_id": "m",
    }


def test_explicit_schema_lines_that_match_exactly_take_the_fast_path(monkeypatch):
    # No regression: a file whose keys are all declared (absent fields and nulls included) never
    # reaches the slow path.
    calls = _spy_slow(monkeypatch)
    data = LISTED_GOOD + b'\n{"id": 2}\n{"user": null, "items": [null, {}]}\n{"user": {"name": null}}\n'
    table, bad, counts = convert_bytes("f", data, LISTED, "m")
    assert calls == [] and bad == [] and counts.rows == 4
    assert table.column("_rescued_data").to_pylist() == [None] * 4
    assert table.column("items").to_pylist()[0] == [{"sku": "a", "qty": 2}, {"sku": "b", "qty": None}]


def test_explicit_schema_repeated_key_keeps_the_last_value_and_rescues_the_earlier():
    table, bad, _ = convert_bytes("f", b'{"id": 1, "id": 2}\n', DECLARED, "m")
    assert table.column("id").to_pylist() == [2]
    assert table.column("_rescued_data").to_pylist() == ['{"/id":1}'] and bad == []


def test_explicit_schema_date_column_takes_iso_strings_and_rescues_numbers():
    # Arrow's reader would read 19000 as days since 1970: a declared date column takes the slow path.
    schema = pa.schema([("d", pa.date32())])
    for data in (b'{"d": 19000}\n', b'{"d": "2024-05-01"}\n{"d": 19000}\n'):
        table, bad, _ = convert_bytes("f", data, schema, "m")
        assert table.column("d").to_pylist()[-1] is None
        assert table.column("_rescued_data").to_pylist()[-1] == '{"/d":19000}' and bad == []
    assert table.column("d").to_pylist()[0] == date(2024, 5, 1)


def test_explicit_schema_still_quarantines_lines_that_are_not_json_objects():
    data = GOOD + b'\n[1]\n"s"\n{"id": \n\n{"id": "2"}\n'
    table, bad, counts = convert_bytes("f", data, DECLARED, "m")
    assert [(q.line_number, q.reason.split(":")[0]) for q in bad] == [
        (2, "not_an_object"),
        (3, "not_an_object"),
        (4, "invalid_json"),
    ]
    assert table.column("_source_line").to_pylist() == [1, 6]
    assert table.column("_rescued_data").to_pylist() == [None, '{"/id":"2"}']
    assert (counts.lines, counts.rows, counts.quarantined, counts.blank) == (6, 2, 3, 1)


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


def test_reserved_field_is_rescued_as_an_undeclared_field_under_an_explicit_schema():
    schema = pa.schema([("a", pa.int64())])
    # line 2 forces the slow path; both paths must treat line 1 the same way
    for data in (b'{"_source_line": 9, "a": 1}\n', b'{"_source_line": 9, "a": 1}\n{"a": "x"}\n'):
        table, bad, _ = convert_bytes("f", data, schema, "m")
        assert table.column("a").to_pylist()[0] == 1
        assert table.column("_source_line").to_pylist()[0] == 1
        assert table.column("_rescued_data").to_pylist()[0] == '{"/_source_line":9}'
        assert bad == []
    assert table.column("_rescued_data").to_pylist() == ['{"/_source_line":9}', '{"/a":"x"}']
