"""Schema handling: conflict rules, conforming Arrow data, strict value checks, explicit schemas."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue.schema import (
    Mismatch,
    SchemaError,
    coerce,
    conform_array,
    infer_value_type,
    parse_schema_text,
    schema_json,
    sorted_type,
    storable,
    type_name,
    unify_types,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (pa.null(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.int64(), pa.string(), pa.string()),
        (pa.struct([("x", pa.int64())]), pa.string(), pa.string()),
        (pa.list_(pa.int64()), pa.struct([]), pa.string()),
        (pa.bool_(), pa.int64(), pa.string()),
        (pa.list_(pa.null()), pa.list_(pa.float64()), pa.list_(pa.float64())),
        (
            pa.struct([("x", pa.int64()), ("y", pa.string())]),
            pa.struct([("x", pa.float64()), ("z", pa.bool_())]),
            pa.struct([("x", pa.float64()), ("y", pa.string()), ("z", pa.bool_())]),
        ),
    ],
)
def test_unify_types_rules(a, b, expected):
    assert unify_types(a, b) == expected
    assert sorted_type(unify_types(b, a)) == sorted_type(expected)


def test_storable_replaces_types_parquet_cannot_hold():
    t = pa.struct([("n", pa.null()), ("e", pa.struct([])), ("l", pa.list_(pa.null())), ("ts", pa.timestamp("s"))])
    assert storable(t) == pa.struct(
        [("n", pa.string()), ("e", pa.string()), ("l", pa.list_(pa.string())), ("ts", pa.string())]
    )


def test_conform_array_fills_reorders_and_stringifies():
    arr = pa.array([{"b": 1, "a": {"x": 1}}, None, {"b": 2, "a": None}])
    target = pa.struct([("a", pa.string()), ("b", pa.float64()), ("c", pa.list_(pa.int64()))])
    assert conform_array(arr, target).to_pylist() == [
        {"a": '{"x":1}', "b": 1.0, "c": None},
        None,
        {"a": None, "b": 2.0, "c": None},
    ]
    assert conform_array(pa.array([1, None, 3]), pa.string()).to_pylist() == ["1", None, "3"]
    assert conform_array(pa.array([None, None]), pa.int64()).type == pa.int64()
    lists = pa.array([[1, 2], None, []])[1:]
    assert conform_array(lists, pa.list_(pa.float64())).to_pylist() == [None, []]


def test_infer_value_type_and_big_ints():
    # Integers are never rounded: beyond int64 they are decimal(38,0), beyond 38 digits text.
    assert infer_value_type({"a": [1, 2.5], "b": {"c": None}, "d": 2**70, "e": 10**40}) == pa.struct(
        [
            ("a", pa.list_(pa.float64())),
            ("b", pa.struct([("c", pa.null())])),
            ("d", pa.decimal128(38, 0)),
            ("e", pa.string()),
        ]
    )


@pytest.mark.parametrize(
    ("value", "t", "reason"),
    [
        ("1", pa.int64(), "schema_mismatch: field 'f' expected bigint got string"),
        (True, pa.int64(), "schema_mismatch: field 'f' expected bigint got boolean"),
        (1.5, pa.int32(), "schema_mismatch: field 'f' expected int got number"),
        (2**40, pa.int32(), "schema_mismatch: field 'f' expected int got number"),
        (1, pa.string(), "schema_mismatch: field 'f' expected string got number"),
        ([1], pa.struct([("x", pa.int64())]), "schema_mismatch: field 'f' expected struct<x:bigint> got array"),
        ({"x": "no"}, pa.struct([("x", pa.int64())]), "schema_mismatch: field 'f.x' expected bigint got string"),
        ([1, "a"], pa.list_(pa.int64()), "schema_mismatch: field 'f[]' expected bigint got string"),
        ("nope", pa.timestamp("us", tz="UTC"), "schema_mismatch: field 'f' expected timestamp got string"),
        ("2024-13-01", pa.date32(), "schema_mismatch: field 'f' expected date got string"),
    ],
)
def test_coerce_mismatch_reasons(value, t, reason):
    with pytest.raises(Mismatch) as err:
        coerce(value, t, "f", stringify=False)
    assert err.value.reason == reason


def test_coerce_accepts_and_converts():
    assert coerce(3, pa.float64(), "f", False) == 3.0
    assert coerce("2024-05-01T10:00:00.5Z", pa.timestamp("us", tz="UTC"), "f", False) == datetime(
        2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC
    )
    assert coerce("2024-05-01", pa.date32(), "f", False) == date(2024, 5, 1)
    assert coerce({"x": 1, "extra": 2}, pa.struct([("x", pa.int64())]), "f", False) == {"x": 1}
    assert coerce({"x": 1}, pa.string(), "f", stringify=True) == '{"x":1}'


def test_parse_structtype_json_and_errors():
    schema = parse_schema_text(
        json.dumps(
            {
                "type": "struct",
                "fields": [
                    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
                    {"name": "d", "type": "decimal(10,2)", "nullable": True, "metadata": {}},
                ],
            }
        )
    )
    assert schema == pa.schema([("id", pa.int64()), ("d", pa.decimal128(10, 2))])
    assert schema_json(schema)["fields"][0] == {"name": "id", "type": "long", "nullable": True, "metadata": {}}
    with pytest.raises(SchemaError, match="empty"):
        parse_schema_text("  ")
    with pytest.raises(SchemaError, match="StructType JSON"):
        parse_schema_text("{not json")
    with pytest.raises(SchemaError, match="needs a SparkSession"):
        parse_schema_text("a INT")
    with pytest.raises(SchemaError, match="unsupported type in schema: map<string,int>"):
        parse_schema_text(
            json.dumps(
                {
                    "type": "struct",
                    "fields": [
                        {
                            "name": "m",
                            "type": {
                                "type": "map",
                                "keyType": "string",
                                "valueType": "integer",
                                "valueContainsNull": True,
                            },
                            "nullable": True,
                            "metadata": {},
                        }
                    ],
                }
            )
        )


def test_ddl_goes_through_the_given_parser():
    seen = []

    def fake_ddl(text: str) -> str:
        seen.append(text)
        return json.dumps(
            {"type": "struct", "fields": [{"name": "a", "type": "integer", "nullable": True, "metadata": {}}]}
        )

    assert parse_schema_text("a INT", fake_ddl) == pa.schema([("a", pa.int32())])
    assert seen == ["a INT"]
    assert type_name(pa.struct([("a", pa.list_(pa.int32()))])) == "struct<a:array<int>>"


_types = st.recursive(
    st.sampled_from([pa.null(), pa.int64(), pa.float64(), pa.string(), pa.bool_()]),
    lambda inner: st.builds(pa.list_, inner)
    | st.lists(st.tuples(st.sampled_from("abc"), inner), max_size=3, unique_by=lambda f: f[0]).map(pa.struct),
    max_leaves=6,
)


@given(_types, _types)
def test_unify_is_symmetric_up_to_field_order(a, b):
    assert sorted_type(unify_types(a, b)) == sorted_type(unify_types(b, a))
    u = unify_types(a, b)
    assert unify_types(u, a) == u  # idempotent: the unified type absorbs each side
