"""The table's schema policy (glue/table_schema.py): what a manifest may change, per mode."""

from __future__ import annotations

import pyarrow as pa
import pytest

from glue.table_schema import Change, SchemaChangeRefused, check_mode, evolve, fits_within

TABLE = pa.schema(
    [
        ("amount", pa.int64()),
        ("meta", pa.struct([("src", pa.string())])),
        ("user", pa.struct([("id", pa.int64())])),
        ("items", pa.list_(pa.struct([("sku", pa.string())]))),
        ("_rescued_data", pa.string()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_manifest_id", pa.string()),
    ]
)


def test_no_table_yet_the_manifest_creates_it_in_every_mode() -> None:
    manifest = pa.schema([("a", pa.int64()), ("_rescued_data", pa.string())])
    for mode in ("addNewColumns", "rescue", "failOnNewColumns"):
        schema, changes = evolve(None, manifest, mode)
        assert schema == pa.schema([("a", pa.int64())])
        assert changes == [Change("added", "a", "int64")]


def test_add_new_columns_adds_nested_fields_and_keeps_every_type() -> None:
    manifest = pa.schema(
        [
            ("amount", pa.float64()),  # long stays long: fractions are rescued, never a double column
            ("meta", pa.string()),  # struct stays struct
            ("user", pa.struct([("id", pa.string()), ("plan", pa.string())])),
            ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))),
            ("country", pa.string()),
        ]
    )
    schema, changes = evolve(TABLE, manifest)
    assert schema == pa.schema(
        [
            ("amount", pa.int64()),
            ("meta", pa.struct([("src", pa.string())])),
            ("user", pa.struct([("id", pa.int64()), ("plan", pa.string())])),
            ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))),
            ("country", pa.string()),
        ]
    )
    assert [c.describe() for c in changes] == [
        "added user.plan string",
        "added items[].qty int64",
        "added country string",
    ]


def test_names_match_ignoring_case_and_the_tables_casing_wins() -> None:
    schema, changes = evolve(TABLE, pa.schema([("Amount", pa.int64()), ("USER", pa.struct([("ID", pa.int64())]))]))
    assert [f.name for f in schema] == ["amount", "meta", "user", "items"]
    assert changes == []


def test_only_iceberg_promotions_widen_a_column() -> None:
    table = pa.schema([("i", pa.int32()), ("f", pa.float32()), ("d", pa.decimal128(10, 0)), ("l", pa.int64())])
    manifest = pa.schema([("i", pa.int64()), ("f", pa.float64()), ("d", pa.decimal128(38, 0)), ("l", pa.float64())])
    schema, changes = evolve(table, manifest)
    assert schema == pa.schema([("i", pa.int64()), ("f", pa.float64()), ("d", pa.decimal128(38, 0)), ("l", pa.int64())])
    assert [c.kind for c in changes] == ["widened", "widened", "widened"]


def test_rescue_never_changes_the_schema() -> None:
    manifest = pa.schema([("user", pa.struct([("plan", pa.string())])), ("country", pa.string())])
    schema, changes = evolve(TABLE, manifest, "rescue")
    assert schema == pa.schema([f for f in TABLE if not f.name.startswith("_")])
    assert changes == []


def test_fail_on_new_columns_names_every_new_field() -> None:
    manifest = pa.schema([("user", pa.struct([("plan", pa.string())])), ("country", pa.string())])
    with pytest.raises(SchemaChangeRefused, match=r"added user\.plan string, added country string") as info:
        evolve(TABLE, manifest, "failOnNewColumns")
    assert [c.path for c in info.value.changes] == ["user.plan", "country"]
    # nothing new: no refusal
    assert evolve(TABLE, pa.schema([("amount", pa.int64())]), "failOnNewColumns")[1] == []


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="schema mode 'addColumns' is not one of"):
        check_mode("addColumns")


def test_a_part_fits_when_each_of_its_columns_is_the_tables() -> None:
    data = pa.schema([f for f in TABLE if not f.name.startswith("_")])
    assert fits_within(pa.schema([("amount", pa.int64())]), data)
    assert fits_within(pa.schema([("user", pa.struct([]))]), data)
    assert not fits_within(pa.schema([("amount", pa.float64())]), data)
    assert not fits_within(pa.schema([("Amount", pa.int64())]), data)  # another casing: re-fitted
    assert not fits_within(pa.schema([("user", pa.struct([("name", pa.string())]))]), data)
