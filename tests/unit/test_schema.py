"""Schema handling: conflict rules, conforming Arrow data, fitting values to explicit schemas."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue.lines import loads_exact
from glue.rescue import fit_row
from glue.schema import (
    SchemaError,
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


def _fit_declared(line: str, t: pa.DataType) -> tuple[dict, str | None]:
    """One line fitted to a declared (``--SCHEMA_PATH``) schema of one column ``f``."""
    return fit_row(loads_exact(line.encode()), pa.schema([("f", t)]), explicit=True)


@pytest.mark.parametrize(
    ("line", "t", "rescued"),
    [
        ('{"f": "1"}', pa.int64(), '{"/f":"1"}'),
        ('{"f": true}', pa.int64(), '{"/f":true}'),
        ('{"f": 1.5}', pa.int32(), '{"/f":1.5}'),
        ('{"f": 1.0}', pa.int64(), '{"/f":1.0}'),
        ('{"f": 1099511627776}', pa.int32(), '{"/f":1099511627776}'),
        ('{"f": 9223372036854775808}', pa.int64(), '{"/f":9223372036854775808}'),
        ('{"f": 1}', pa.string(), '{"/f":1}'),
        ('{"f": {"x": 1}}', pa.string(), '{"/f":{"x":1}}'),
        ('{"f": 1e400}', pa.float64(), '{"/f":1e400}'),
        ('{"f": 9007199254740993}', pa.float64(), '{"/f":9007199254740993}'),
        ('{"f": [1]}', pa.struct([("x", pa.int64())]), '{"/f":[1]}'),
        ('{"f": "nope"}', pa.timestamp("us", tz="UTC"), '{"/f":"nope"}'),
        ('{"f": 1714557600}', pa.timestamp("us", tz="UTC"), '{"/f":1714557600}'),
        ('{"f": "2024-13-01"}', pa.date32(), '{"/f":"2024-13-01"}'),
        ('{"f": 19000}', pa.date32(), '{"/f":19000}'),
        ('{"f": 1.234}', pa.decimal128(10, 2), '{"/f":1.234}'),
        ('{"f": 123456789}', pa.decimal128(10, 2), '{"/f":123456789}'),
        ('{"f": "12.5 EUR"}', pa.decimal128(10, 2), '{"/f":"12.5 EUR"}'),
        ('{"f": "NaN"}', pa.decimal128(10, 2), '{"/f":"NaN"}'),
    ],
)
def test_a_value_that_does_not_fit_a_declared_column_is_rescued(line, t, rescued):
    values, text = _fit_declared(line, t)
    assert values == {"f": None}
    assert text == rescued


def test_a_declared_column_keeps_the_values_that_fit():
    def value(line: str, t: pa.DataType) -> object:
        values, text = _fit_declared(line, t)
        assert text is None
        return values["f"]

    assert value('{"f": 3}', pa.float64()) == 3.0
    assert value('{"f": 2147483647}', pa.int32()) == 2147483647
    assert value('{"f": "2024-05-01T10:00:00.5Z"}', pa.timestamp("us", tz="UTC")) == datetime(
        2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC
    )
    assert value('{"f": "2024-05-01T12:00:00+02:00"}', pa.timestamp("us")) == datetime(2024, 5, 1, 10)
    assert value('{"f": "2024-05-01"}', pa.date32()) == date(2024, 5, 1)
    assert str(value('{"f": 1.5}', pa.decimal128(10, 2))) == "1.50"
    assert str(value('{"f": "12.5"}', pa.decimal128(10, 2))) == "12.50"
    assert str(value('{"f": 12345678}', pa.decimal128(10, 2))) == "12345678.00"
    assert str(value('{"f": 12345678901234567890123456789012345678}', pa.decimal128(38, 0))) == (
        "12345678901234567890123456789012345678"
    )
    assert value('{"f": "s"}', pa.string()) == "s"


def test_a_declared_struct_rescues_the_nested_field_and_undeclared_keys():
    t = pa.struct([("age", pa.int32()), ("name", pa.string()), ("tags", pa.list_(pa.string()))])
    values, text = _fit_declared('{"f": {"age": "old", "name": "x", "extra": 1, "tags": ["a", 2]}, "g": 1}', t)
    assert values == {"f": {"age": None, "name": "x", "tags": ["a", None]}}
    assert text == '{"/f/age":"old","/f/extra":1,"/f/tags/1":2,"/g":1}'
    assert _fit_declared('{"f": [1, "a", null]}', pa.list_(pa.int64())) == ({"f": [1, None, None]}, '{"/f/1":"a"}')


def test_a_repeated_key_rescues_its_earlier_values_an_undeclared_one_all_its_values():
    values, text = _fit_declared('{"f": 1, "g": 1, "f": 2, "g": null}', pa.int64())
    assert values == {"f": 2}
    assert text == '{"/f":1,"/g":1,"/g#2":null}'


def test_inferred_columns_still_turn_other_kinds_into_json_text():
    # Without ``explicit`` (inference, table modes) a string column holds other kinds as JSON text
    # and a decimal(38,0) column takes integers only.
    row = loads_exact(b'{"s": {"x": 1.50}, "d": 1.5, "e": "12"}')
    schema = pa.schema([("s", pa.string()), ("d", pa.decimal128(38, 0)), ("e", pa.decimal128(38, 0))])
    assert fit_row(row, schema) == ({"s": '{"x":1.50}', "d": None, "e": None}, '{"/d":1.5,"/e":"12"}')


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
    with pytest.raises(SchemaError, match="not valid Spark DDL"):
        parse_schema_text("a INT,")
    with pytest.raises(SchemaError, match="StructType JSON: missing key 'metadata'"):
        parse_schema_text('{"type": "struct", "fields": [{"name": "a", "type": "long", "nullable": true}]}')
    with pytest.raises(SchemaError, match="StructType JSON: could not parse datatype: lng"):
        parse_schema_text('{"type": "struct", "fields": [{"name": "a", "type": "lng", "nullable": 1, "metadata": {}}]}')
    with pytest.raises(SchemaError, match="has no fields"):
        parse_schema_text('{"type": "struct", "fields": []}')
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


def test_ddl_without_a_jvm():
    # The example of the README's schema section, NOT NULL and COMMENT included (no JVM involved)
    schema = parse_schema_text(
        "a BIGINT NOT NULL, b STRUCT<c: STRING, d: ARRAY<INT>> COMMENT 'nested',\n `e f` DECIMAL(10,2), "
        "g TIMESTAMP, h TIMESTAMP_NTZ, i DATE, j DOUBLE, k BOOLEAN, l SMALLINT, m TINYINT, n FLOAT"
    )
    assert schema == pa.schema(
        [
            ("a", pa.int64()),
            ("b", pa.struct([("c", pa.string()), ("d", pa.list_(pa.int32()))])),
            ("e f", pa.decimal128(10, 2)),
            ("g", pa.timestamp("us", tz="UTC")),
            ("h", pa.timestamp("us")),
            ("i", pa.date32()),
            ("j", pa.float64()),
            ("k", pa.bool_()),
            ("l", pa.int16()),
            ("m", pa.int8()),
            ("n", pa.float32()),
        ]
    )
    # what the run summary writes reads back as the same schema
    assert parse_schema_text(json.dumps(schema_json(schema))) == schema
    with pytest.raises(SchemaError, match="unsupported type in schema: map<string,int>"):
        parse_schema_text("m MAP<STRING, INT>")
    with pytest.raises(SchemaError, match="unsupported type in schema: varchar\\(3\\)"):
        parse_schema_text("v VARCHAR(3)")
    with pytest.raises(SchemaError, match="precision 39 exceeds"):
        parse_schema_text("d DECIMAL(39,0)")
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
