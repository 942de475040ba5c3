"""Schemas: explicit ones (Spark DDL or StructType JSON) mapped to Arrow, inferred ones unified
across files, and tables conformed to the one schema of a manifest.

What each JSON shape becomes is docs/json-shapes.md; the rules live here (``infer_value_type``,
``unify_types``, ``final_schema``) and in glue/rescue.py (``fit``: what does not fit a column goes to
``_rescued_data``). Inside a file and a task, unification is case-sensitive; the manifest's
``final_schema`` applies the case policy over its files in manifest order, and ``conform_table``
rescues whatever that schema has no column for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from glue import spark_types
from glue.lines import EXACT_INT_MAX, NumberText, loads_exact
from glue.rescue import (
    INT64_MAX,
    INT64_MIN,
    MAX_COLUMN_DEPTH,
    PROVENANCE,
    RESCUED,
    RESERVED,
    SOURCE_FILE,
    SOURCE_LINE,
    Rescued,
    arrow_value,
    column_name_ok,
    fit,
    fit_object,
)
from glue.spark_types import SparkType, SparkTypeError, simple_string

DECIMAL_INT = pa.decimal128(38, 0)  # integers beyond int64, up to 38 digits, exactly


class SchemaError(ValueError):
    """An explicit schema that cannot be parsed or uses a type the job cannot fill from JSON."""


# ---------------------------------------------------------------- Spark <-> Arrow names and types


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


_SPARK_TO_ARROW = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}


def spark_to_arrow(dt: SparkType) -> pa.DataType:
    """Map a Spark type (its StructType JSON value, glue/spark_types.py) to the Arrow type the job
    fills from JSON values."""
    if isinstance(dt, str):
        if dt in _SPARK_TO_ARROW:
            return _SPARK_TO_ARROW[dt]
        if m := re.fullmatch(r"decimal\((\d+),(\d+)\)", dt):
            return pa.decimal128(int(m.group(1)), int(m.group(2)))
    elif dt.get("type") == "array":
        return pa.list_(spark_to_arrow(dt["elementType"]))
    elif dt.get("type") == "struct":
        return pa.struct([pa.field(f["name"], spark_to_arrow(f["type"])) for f in dt["fields"]])
    raise SchemaError(f"unsupported type in schema: {simple_string(dt)} (JSON cannot fill it)")


_ARROW_TO_SPARK = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.int64(): "long",
    pa.int32(): "integer",
    pa.int16(): "short",
    pa.int8(): "byte",
    pa.float64(): "double",
    pa.float32(): "float",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.null(): "void",
}


def arrow_to_spark(t: pa.DataType) -> SparkType:
    """The Spark type a reader of our Parquet sees, as StructType JSON (``DataType.jsonValue()``);
    used to write the schema into the run summary."""
    if pa.types.is_struct(t):
        return spark_types.struct([spark_types.field(f.name, arrow_to_spark(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return spark_types.array(arrow_to_spark(t.value_type))
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "timestamp_ntz"
    if t in _ARROW_TO_SPARK:
        return _ARROW_TO_SPARK[t]
    raise SchemaError(f"no Spark type for Arrow type {t}")


def schema_json(schema: pa.Schema) -> dict[str, Any]:
    """Spark StructType JSON of an Arrow schema (what ``--SCHEMA_PATH`` accepts back)."""
    out = arrow_to_spark(pa.struct(list(schema)))
    assert isinstance(out, dict)
    return out


def parse_schema_text(text: str) -> pa.Schema:
    """An explicit schema from StructType JSON or from Spark DDL, both parsed by our own code
    (glue/spark_types.py, checked against Spark's own parser): no JVM, the same on both engines."""
    text = text.strip()
    if not text:
        raise SchemaError("schema file is empty")
    if text.startswith("{"):
        try:
            struct = spark_types.parse_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"schema is not a valid StructType JSON: {exc}") from None
    else:
        try:
            struct = spark_types.parse_ddl(text)
        except SparkTypeError as exc:
            raise SchemaError(f"schema is not valid Spark DDL: {exc}") from None
    if not struct["fields"]:
        raise SchemaError("schema has no fields")
    return pa.schema([pa.field(f["name"], spark_to_arrow(f["type"])) for f in struct["fields"]])


# ---------------------------------------------------------------- inference and unification


def _number_rank(t: pa.DataType) -> int | None:
    """bigint < decimal(38,0); double apart (see ``unify_types``)."""
    if pa.types.is_integer(t):
        return 0
    if pa.types.is_decimal(t):
        return 1
    if pa.types.is_floating(t):
        return 2
    return None


def unify_types(a: pa.DataType, b: pa.DataType, case_insensitive: bool = False) -> pa.DataType:
    """The one type both sides fit in; see the module docstring for the rules.

    ``case_insensitive`` (the manifest's final schema): a struct field whose name differs only by
    case from an earlier one is not a field (its values are rescued), the first casing wins."""
    if a == b:
        return _ci(a) if case_insensitive else a
    if pa.types.is_null(a):
        return _ci(b) if case_insensitive else b
    if pa.types.is_null(b):
        return _ci(a) if case_insensitive else a
    ra, rb = _number_rank(a), _number_rank(b)
    if ra is not None and rb is not None:
        if ra == rb:
            return a
        if {ra, rb} == {0, 2}:
            return pa.float64()  # integers beyond 2**53 are rescued by ``fit``, never rounded
        if {ra, rb} == {0, 1}:
            return a if ra == 1 else b
        return pa.string()  # decimal(38,0) vs double: no exact common number type
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields: dict[str, pa.DataType] = {}
        lowered: set[str] = set()
        for f in [*a, *b]:
            if f.name in fields:
                fields[f.name] = unify_types(fields[f.name], f.type, case_insensitive)
            elif case_insensitive and (f.name.lower() in lowered or not column_name_ok(f.name, False)):
                continue  # another casing of an earlier field, or no valid column name: rescued
            else:
                fields[f.name] = _ci(f.type) if case_insensitive else f.type
                lowered.add(f.name.lower())
        return pa.struct([pa.field(n, t) for n, t in fields.items()])
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_types(a.value_type, b.value_type, case_insensitive))
    return pa.string()


def _ci(t: pa.DataType) -> pa.DataType:
    """``t`` with the case policy applied inside (first casing of each struct field wins)."""
    if pa.types.is_struct(t):
        fields, lowered = [], set()
        for f in t:
            if f.name.lower() in lowered or not column_name_ok(f.name, False):
                continue  # another casing of an earlier field, or no valid column name: rescued
            fields.append(pa.field(f.name, _ci(f.type)))
            lowered.add(f.name.lower())
        return pa.struct(fields)
    if pa.types.is_list(t):
        return pa.list_(_ci(t.value_type))
    return t


def unify_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    """Case-sensitive union (a task's part keeps every casing until the manifest decides)."""
    merged: pa.DataType = pa.struct([])
    for s in schemas:
        merged = unify_types(merged, pa.struct(list(s)))
    return pa.schema(list(merged))


def final_schema(file_schemas: list[pa.Schema]) -> pa.Schema:
    """The manifest's schema from its files' schemas IN MANIFEST ORDER: case policy (the first
    casing seen wins), names that cannot be columns dropped (their values are rescued), struct
    fields sorted, and only types every reader can store."""
    merged: pa.DataType = pa.struct([])
    for s in file_schemas:
        top = [f for f in s if column_name_ok(f.name, True)]
        merged = unify_types(merged, pa.struct(top), case_insensitive=True)
    return storable_schema(sorted_schema(pa.schema(list(merged))))


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


def type_depth(t: pa.DataType) -> int:
    """Nesting of structs/lists: a scalar column is 0, ``struct<a:int>`` 1, ``array<struct<..>>`` 2."""
    if pa.types.is_struct(t):
        return 1 + max((type_depth(f.type) for f in t), default=0)
    if pa.types.is_list(t):
        return 1 + type_depth(t.value_type)
    return 0


def names_ok(t: pa.DataType) -> bool:
    """No struct level holds a name that cannot be a column or two names equal ignoring case."""
    if pa.types.is_struct(t):
        lowered = [f.name.lower() for f in t]
        if len(set(lowered)) != len(lowered) or not all(column_name_ok(f.name, False) for f in t):
            return False
        return all(names_ok(f.type) for f in t)
    if pa.types.is_list(t):
        return names_ok(t.value_type)
    return True


def infer_value_type(value: Any, depth: int = 1) -> pa.DataType:
    """Arrow type of one parsed JSON value (docs/json-shapes.md): exact integers, big ones as
    decimal(38,0) or text, containers nested deeper than MAX_COLUMN_DEPTH as text. ``depth`` is the
    value's level inside its column (the column's value is level 1), so a column's type holds at
    most MAX_COLUMN_DEPTH levels, the rule ``type_depth`` checks on Arrow's types (glue/convert.py)."""
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, NumberText):
        return pa.string()
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return pa.int64()
        return DECIMAL_INT if len(str(abs(value))) <= DECIMAL_INT.precision else pa.string()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    if depth > MAX_COLUMN_DEPTH:
        return pa.string()
    if isinstance(value, list):
        item: pa.DataType = pa.null()
        for v in value:
            item = unify_types(item, infer_value_type(v, depth + 1))
        return pa.list_(item)
    fields: dict[str, pa.DataType] = {}
    for k, v in value.items():
        fields[k] = infer_value_type(v, depth + 1)
    return pa.struct([pa.field(k, t) for k, t in fields.items()])


def infer_row_schema(row: dict) -> pa.Schema:
    """A row's top-level fields, minus the names the job reserves (those are rescued)."""
    return pa.schema([pa.field(k, infer_value_type(v)) for k, v in row.items() if k.lower() not in RESERVED])


# ---------------------------------------------------------------- conforming Arrow data


def _vector_ok(arr: pa.Array, src: pa.DataType, target: pa.DataType) -> bool:
    """Arrow can re-type ``src`` to ``target`` losing nothing (else ``fit`` decides, in Python)."""
    if src == target or pa.types.is_null(src):
        return True
    if pa.types.is_integer(src) and pa.types.is_decimal(target):
        return True
    if pa.types.is_integer(src) and pa.types.is_floating(target):
        if arr is None:
            return False
        low, high = pc.min_max(arr).values() if len(arr) else (None, None)
        return low is None or (low.as_py() >= -EXACT_INT_MAX and high.as_py() <= EXACT_INT_MAX)
    if pa.types.is_struct(src) and pa.types.is_struct(target):
        names = {f.name: f.type for f in target}
        return all(f.name in names and _vector_ok(None, f.type, names[f.name]) for f in src)
    if pa.types.is_list(src) and pa.types.is_list(target):
        return _vector_ok(None, src.value_type, target.value_type)
    return False


def conform_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """``arr`` re-typed to ``target`` where ``_vector_ok`` says Arrow loses nothing doing it. (Its
    to-string branch builds text from Arrow's values, not the source: ``conform_table`` never uses
    it, it re-fits such rows from their source lines.)"""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    src = arr.type
    if src == target:
        return arr
    if pa.types.is_null(src):
        return pa.nulls(len(arr), target)
    if pa.types.is_string(target):  # conflicting kinds: each value's JSON text, as ``fit`` does
        return pa.array([None if v is None else fit(arrow_value(v), target, "", Rescued()) for v in arr.to_pylist()])
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


SourceLine = Callable[[str, int], bytes]
"""The raw text of a row's source line, by ``_source_file`` and ``_source_line``."""


def conform_table(table: pa.Table, schema: pa.Schema, source: SourceLine | None = None) -> pa.Table:
    """Columns of ``schema`` in its order. Missing ones are null; the others are re-typed by Arrow
    where nothing is lost. A row with a value Arrow cannot re-type losslessly (a conflict turned
    into JSON text, an integer a double cannot hold) or under a column ``schema`` lacks (another
    casing, a name that cannot be a column) is re-fitted from its SOURCE line (``source``) with
    ``fit``, as the slow path would: its JSON text and ``_rescued_data`` hold the source's values
    exactly, never values rebuilt from what Arrow converted. Nothing is dropped."""
    if table.schema == schema:
        return table
    n = len(table)
    columns: dict[str, pa.Array] = {}
    present = set(table.column_names)
    refit_fields: list[pa.Field] = []
    refit_rows: set[int] = set()
    for f in schema:
        if f.name == RESCUED:
            continue
        if f.name not in present:
            columns[f.name] = pa.nulls(n, f.type)
            continue
        col = table.column(f.name)
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if _vector_ok(col, col.type, f.type):
            columns[f.name] = conform_array(col, f.type)
            continue
        refit_fields.append(f)
        refit_rows.update(_non_null_rows(col))
    wanted = {f.name for f in schema}
    for name in table.column_names:
        if name not in wanted and name != RESCUED:
            refit_rows.update(_non_null_rows(table.column(name)))
    refits: dict[int, tuple[dict, str | None]] = {}
    if refit_rows:
        if source is None or SOURCE_FILE not in present or SOURCE_LINE not in present:
            raise ValueError("conform_table: rows to re-fit from their source, but no source lines")
        data = pa.struct([f for f in schema if f.name != RESCUED and f.name not in PROVENANCE])
        files, numbers = table.column(SOURCE_FILE), table.column(SOURCE_LINE)
        for i in sorted(refit_rows):
            rescued = Rescued()
            row = loads_exact(source(files[i].as_py(), numbers[i].as_py()))
            refits[i] = (fit_object(row, data, "", rescued), rescued.text())
    for f in refit_fields:
        values = [refits[i][0].get(f.name) if i in refits else None for i in range(n)]
        columns[f.name] = pa.array(values, f.type)
    if RESCUED in wanted:
        earlier = table.column(RESCUED).to_pylist() if RESCUED in present else [None] * n
        # A re-fitted row's text is whole: it holds the rescues of the file's conversion too.
        texts = [refits[i][1] if i in refits else text for i, text in enumerate(earlier)]
        columns[RESCUED] = pa.array(texts, pa.string())
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _non_null_rows(col: pa.Array | pa.ChunkedArray) -> list[int]:
    if col.null_count == len(col):
        return []
    return pc.indices_nonzero(col.is_valid()).to_pylist()


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
