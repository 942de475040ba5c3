"""Schemas: explicit ones (Spark DDL or StructType JSON) mapped to Arrow, inferred ones unified
across files, and tables conformed to the one schema of a manifest.

How type conflicts resolve when the schema is inferred (the same rule inside a file, across the
files of a task and across the tasks of a manifest; see ``unify_types``):

- null + T -> T;  integer + floating -> double;  struct + struct -> union of fields (first-seen
  order, each field unified);  list + list -> list of the unified element type;
- anything else (number vs string, object vs array, scalar vs object, ...) -> string, and every
  value of that field is stored as its JSON text (``1`` -> ``"1"``, ``{"a":1}`` -> ``"{\"a\":1}"``).
- a field that is null everywhere, an empty object ``{}`` type and ISO-looking strings all stay
  string: inference never invents timestamps (Arrow would turn ``"2024-01-01"`` into one, but
  only when no value has a fraction); declare timestamp/date in ``--SCHEMA_PATH`` to get them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class SchemaError(ValueError):
    """An explicit schema that cannot be parsed or uses a type the job cannot fill from JSON."""


class Mismatch(ValueError):
    """A value that does not fit the schema; ``reason`` is ``schema_mismatch: ...``."""

    def __init__(self, path: str, expected: pa.DataType, value: Any) -> None:
        self.reason = f"schema_mismatch: field '{path}' expected {type_name(expected)} got {json_type(value)}"
        super().__init__(self.reason)


# ---------------------------------------------------------------- Spark <-> Arrow names and types


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_name(t: pa.DataType) -> str:
    """Spark's simpleString for an Arrow type, so messages read like the DDL users wrote."""
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{type_name(f.type)}" for f in t) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{type_name(t.value_type)}>"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "timestamp_ntz"
    names = {
        pa.string(): "string",
        pa.large_string(): "string",
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int16(): "smallint",
        pa.int8(): "tinyint",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.null(): "void",
    }
    return names.get(t, str(t))


def spark_to_arrow(dt: Any) -> pa.DataType:
    """Map a pyspark DataType to the Arrow type the job fills from JSON values."""
    from pyspark.sql import types as T

    simple = {
        T.StringType: pa.string(),
        T.LongType: pa.int64(),
        T.IntegerType: pa.int32(),
        T.ShortType: pa.int16(),
        T.ByteType: pa.int8(),
        T.DoubleType: pa.float64(),
        T.FloatType: pa.float32(),
        T.BooleanType: pa.bool_(),
        T.DateType: pa.date32(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
        T.TimestampNTZType: pa.timestamp("us"),
    }
    for cls, arrow in simple.items():
        if type(dt) is cls:
            return arrow
    if isinstance(dt, T.DecimalType):
        return pa.decimal128(dt.precision, dt.scale)
    if isinstance(dt, T.ArrayType):
        return pa.list_(spark_to_arrow(dt.elementType))
    if isinstance(dt, T.StructType):
        return pa.struct([pa.field(f.name, spark_to_arrow(f.dataType)) for f in dt.fields])
    raise SchemaError(f"unsupported type in schema: {dt.simpleString()} (JSON cannot fill it)")


def arrow_to_spark(t: pa.DataType) -> Any:
    """The Spark type a reader of our Parquet sees; used to write the schema into the run summary."""
    from pyspark.sql import types as T

    if pa.types.is_struct(t):
        return T.StructType([T.StructField(f.name, arrow_to_spark(f.type), True) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return T.ArrayType(arrow_to_spark(t.value_type), True)
    if pa.types.is_decimal(t):
        return T.DecimalType(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz else T.TimestampNTZType()
    simple = {
        pa.string(): T.StringType(),
        pa.large_string(): T.StringType(),
        pa.int64(): T.LongType(),
        pa.int32(): T.IntegerType(),
        pa.int16(): T.ShortType(),
        pa.int8(): T.ByteType(),
        pa.float64(): T.DoubleType(),
        pa.float32(): T.FloatType(),
        pa.bool_(): T.BooleanType(),
        pa.date32(): T.DateType(),
        pa.null(): T.NullType(),
    }
    if t in simple:
        return simple[t]
    raise SchemaError(f"no Spark type for Arrow type {t}")


def schema_json(schema: pa.Schema) -> dict[str, Any]:
    """Spark StructType JSON of an Arrow schema (what ``--SCHEMA_PATH`` accepts back)."""
    return arrow_to_spark(pa.struct(list(schema))).jsonValue()


def parse_schema_text(text: str, ddl_to_json: Any = None) -> pa.Schema:
    """An explicit schema from StructType JSON, or from Spark DDL (``ddl_to_json`` turns DDL into
    StructType JSON; the job passes one backed by the JVM, so DDL means exactly what Spark says)."""
    from pyspark.sql import types as T

    text = text.strip()
    if not text:
        raise SchemaError("schema file is empty")
    if text.startswith("{"):
        try:
            struct = T.StructType.fromJson(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"schema is not a valid StructType JSON: {exc}") from None
    else:
        if ddl_to_json is None:
            raise SchemaError("a DDL schema needs a SparkSession to parse it")
        try:
            struct = T.StructType.fromJson(json.loads(ddl_to_json(text)))
        except Exception as exc:  # the JVM raises ParseException through py4j
            raise SchemaError(f"schema is not valid Spark DDL: {str(exc).splitlines()[0]}") from None
    if not struct.fields:
        raise SchemaError("schema has no fields")
    return pa.schema([pa.field(f.name, spark_to_arrow(f.dataType)) for f in struct.fields])


# ---------------------------------------------------------------- inference and unification


def unify_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The one type both sides fit in; see the module docstring for the rules."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if _is_number(a) and _is_number(b):
        return pa.float64()
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = unify_types(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct([pa.field(n, t) for n, t in fields.items()])
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_types(a.value_type, b.value_type))
    return pa.string()


def unify_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    if not schemas:
        return pa.schema([])
    merged: pa.DataType = pa.struct(list(schemas[0]))
    for s in schemas[1:]:
        merged = unify_types(merged, pa.struct(list(s)))
    return pa.schema(list(merged))


def storable(t: pa.DataType) -> pa.DataType:
    """Replace types Parquet readers choke on or inference should not invent: null, empty struct,
    timestamps -> string (recursively)."""
    if pa.types.is_null(t) or pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.string()
        return pa.struct([pa.field(f.name, storable(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(storable(t.value_type))
    return t


def storable_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, storable(f.type)) for f in schema])


def has_type(t: pa.DataType, pred: Any) -> bool:
    if pred(t):
        return True
    if pa.types.is_struct(t):
        return any(has_type(f.type, pred) for f in t)
    if pa.types.is_list(t):
        return has_type(t.value_type, pred)
    return False


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def infer_value_type(value: Any) -> pa.DataType:
    """Arrow type of one parsed JSON value (the slow path, used when Arrow's own inference fails)."""
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64() if INT64_MIN <= value <= INT64_MAX else pa.float64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    if isinstance(value, list):
        item: pa.DataType = pa.null()
        for v in value:
            item = unify_types(item, infer_value_type(v))
        return pa.list_(item)
    return pa.struct([pa.field(k, infer_value_type(v)) for k, v in value.items()])


# ---------------------------------------------------------------- conforming Arrow data


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def conform_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """``arr`` re-typed to ``target`` where ``target`` came from ``unify_types`` over its type."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    src = arr.type
    if src == target:
        return arr
    if pa.types.is_null(src):
        return pa.nulls(len(arr), target)
    if pa.types.is_string(target):
        if pa.types.is_struct(src) or pa.types.is_list(src):
            return pa.array([None if v is None else _json_text(v) for v in arr.to_pylist()], pa.string())
        return pc.cast(arr, pa.string())
    if pa.types.is_struct(target) and pa.types.is_struct(src):
        names = [src.field(i).name for i in range(src.num_fields)]
        children = [
            conform_array(arr.field(names.index(f.name)), f.type) if f.name in names else pa.nulls(len(arr), f.type)
            for f in target
        ]
        mask = arr.is_null() if arr.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if pa.types.is_list(target) and pa.types.is_list(src):
        if arr.offset and arr.null_count:  # from_arrays cannot take a null mask with sliced offsets
            arr = pa.concat_arrays([arr])
        values = conform_array(arr.values, target.value_type)
        mask = arr.is_null() if arr.null_count else None
        return pa.ListArray.from_arrays(arr.offsets, values, type=target, mask=mask)
    return pc.cast(arr, target)


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of ``schema`` in its order: missing ones null, others conformed; extras dropped."""
    if table.schema == schema:
        return table
    columns = [
        conform_array(table.column(f.name), f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


# ---------------------------------------------------------------- checking Python values


def _parse_timestamp(s: str) -> datetime:
    dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def coerce(value: Any, t: pa.DataType, path: str, stringify: bool) -> Any:
    """``value`` as Arrow expects it for ``t``, or Mismatch. ``stringify`` (inferred schemas):
    a non-string in a string field becomes its JSON text instead of a mismatch."""
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if isinstance(value, str):
            return value
        if stringify:
            return _json_text(value)
        raise Mismatch(path, t, value)
    if pa.types.is_boolean(t):
        if isinstance(value, bool):
            return value
    elif pa.types.is_integer(t):
        if isinstance(value, int) and not isinstance(value, bool):
            bits = t.bit_width - 1
            if -(2**bits) <= value < 2**bits:
                return value
    elif pa.types.is_floating(t):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif pa.types.is_struct(t):
        if isinstance(value, dict):
            return {f.name: coerce(value.get(f.name), f.type, f"{path}.{f.name}", stringify) for f in t}
    elif pa.types.is_list(t):
        if isinstance(value, list):
            return [coerce(v, t.value_type, f"{path}[]", stringify) for v in value]
    elif pa.types.is_timestamp(t):
        if isinstance(value, str):
            try:
                ts = _parse_timestamp(value)
            except ValueError:
                raise Mismatch(path, t, value) from None
            return ts if t.tz else ts.replace(tzinfo=None)
    elif pa.types.is_date(t):
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise Mismatch(path, t, value) from None
    elif pa.types.is_decimal(t):
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return Decimal(str(value))
            except InvalidOperation:
                raise Mismatch(path, t, value) from None
    elif pa.types.is_null(t):
        pass
    raise Mismatch(path, t, value)


def coerce_row(row: dict, schema: pa.Schema, stringify: bool) -> dict:
    return {f.name: coerce(row.get(f.name), f.type, f.name, stringify) for f in schema}


def sorted_type(t: pa.DataType) -> pa.DataType:
    """Struct fields in name order, recursively: inferred schemas then agree across files whatever
    order optional fields first appeared in (Spark's JSON inference sorts the same way)."""
    if pa.types.is_struct(t):
        return pa.struct(sorted((pa.field(f.name, sorted_type(f.type)) for f in t), key=lambda f: f.name))
    if pa.types.is_list(t):
        return pa.list_(sorted_type(t.value_type))
    return t


def sorted_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(list(sorted_type(pa.struct(list(schema)))))
