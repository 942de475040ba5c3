"""Spark's schema notations without Spark: StructType JSON (read and written) and Spark DDL (read).

The Lambda converter has no pyspark and no JVM, yet a user's ``--SCHEMA_PATH`` file must mean there
exactly what it means to Spark. A type is held as its StructType JSON value, the notation Spark
itself writes (``DataType.jsonValue()``): a string for an atomic type (``"long"``,
``"decimal(10,2)"``, ``"interval day to second"``), a dict for ``struct`` / ``array`` / ``map``.

``parse_ddl`` follows Spark 3.5's ``StructType.fromDDL`` (``CatalystSqlParser.parseTableSchema``):
``name type [NOT NULL] [COMMENT 'text']`` separated by commas; type names case-insensitive with
Spark's synonyms (``INT``/``INTEGER``, ``BIGINT``/``LONG``, ``DEC``/``NUMERIC``, ``REAL``...);
``STRUCT<name[:] type [NOT NULL] [COMMENT '...'], ...>``, ``ARRAY<type>``, ``MAP<key, value>``,
``DECIMAL[(p[,s])]``, ``CHAR(n)``/``VARCHAR(n)``, ``INTERVAL`` types; backticked names (a doubled
backtick is one); ``--`` and ``/* */`` comments. Where Spark refuses a text, so does this
(tests/functional/glue/test_spark_types_vs_spark.py compares the two on a table of cases).

``parse_json`` follows pyspark 3.5's ``StructType.fromJson`` (every field needs ``name``, ``type``,
``nullable`` and ``metadata``); it is a little stricter: a type string must be a type exactly, where
pyspark accepts trailing text after ``decimal(p,s)``.
"""

from __future__ import annotations

import re
from typing import Any

SparkType = str | dict[str, Any]

MAX_PRECISION = 38


class SparkTypeError(ValueError):
    """A schema text Spark would refuse."""


# DDL type names (case-insensitive) -> JSON type names, as Spark 3.5's AstBuilder maps them.
_ATOMIC_DDL = {
    "boolean": "boolean",
    "tinyint": "byte",
    "byte": "byte",
    "smallint": "short",
    "short": "short",
    "int": "integer",
    "integer": "integer",
    "bigint": "long",
    "long": "long",
    "float": "float",
    "real": "float",
    "double": "double",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ltz": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
    "string": "string",
    "binary": "binary",
    "void": "void",
}
_ATOMIC_JSON = {"string", "binary", "boolean", "date", "timestamp", "timestamp_ntz", "double", "float"}
_ATOMIC_JSON |= {"byte", "integer", "long", "short", "void"}
# simpleString (what Spark prints in messages) where it differs from the JSON name.
_SIMPLE = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}
_YEAR_MONTH = ("year", "month")
_DAY_TIME = ("day", "hour", "minute", "second")

_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(-?\d+)\s*\)")
_CHAR = re.compile(r"(char|varchar)\(\s*(\d+)\s*\)")
_INTERVAL = re.compile(r"interval (year|month|day|hour|minute|second)(?: to (year|month|day|hour|minute|second))?")


def decimal(precision: int, scale: int) -> str:
    if precision > MAX_PRECISION:
        raise SparkTypeError(f"decimal precision {precision} exceeds max precision {MAX_PRECISION}")
    if scale < 0:
        raise SparkTypeError(f"decimal scale {scale} is negative")
    if scale > precision:
        raise SparkTypeError(f"decimal scale ({scale}) cannot be greater than precision ({precision})")
    return f"decimal({precision},{scale})"


def interval(start: str, end: str | None) -> str:
    family = _YEAR_MONTH if start in _YEAR_MONTH else _DAY_TIME
    if end is not None and (end not in family or family.index(end) < family.index(start)):
        raise SparkTypeError(f"invalid interval type: interval {start} to {end}")
    if end is None or end == start:
        return f"interval {start}"
    return f"interval {start} to {end}"


def struct(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "struct", "fields": fields}


def field(name: str, dtype: SparkType, nullable: bool = True, metadata: dict[str, Any] | None = None) -> dict:
    return {"name": name, "type": dtype, "nullable": nullable, "metadata": dict(metadata or {})}


def array(element: SparkType, contains_null: bool = True) -> dict[str, Any]:
    return {"type": "array", "elementType": element, "containsNull": contains_null}


def map_type(key: SparkType, value: SparkType, value_contains_null: bool = True) -> dict[str, Any]:
    return {"type": "map", "keyType": key, "valueType": value, "valueContainsNull": value_contains_null}


def simple_string(t: SparkType) -> str:
    """Spark's ``simpleString`` (``bigint``, ``struct<a:int>``, ``map<string,int>``)."""
    if isinstance(t, str):
        return _SIMPLE.get(t, t)
    kind = t.get("type")
    if kind == "struct":
        return "struct<" + ",".join(f"{f['name']}:{simple_string(f['type'])}" for f in t["fields"]) + ">"
    if kind == "array":
        return f"array<{simple_string(t['elementType'])}>"
    if kind == "map":
        return f"map<{simple_string(t['keyType'])},{simple_string(t['valueType'])}>"
    return str(kind)


# ---------------------------------------------------------------- StructType JSON


def parse_json(value: Any) -> dict[str, Any]:
    """A StructType JSON value (already ``json.loads``-ed) checked and in canonical form."""
    if not isinstance(value, dict) or value.get("type") != "struct":
        raise SparkTypeError('a StructType JSON schema is an object with "type": "struct"')
    out = _json_type(value)
    assert isinstance(out, dict)
    return out


def _need(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise SparkTypeError(f"missing key {key!r} in {_short(obj)}")
    return obj[key]


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = _need(obj, key)
    if not isinstance(value, bool):
        raise SparkTypeError(f"{key!r} must be true or false in {_short(obj)}")
    return value


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 120 else text[:117] + "..."


def _json_type(value: Any) -> SparkType:
    if isinstance(value, str):
        if value in _ATOMIC_JSON:
            return value
        if value == "decimal":
            return "decimal(10,0)"
        if value == "interval":
            return "interval"
        if m := _DECIMAL.fullmatch(value):
            return decimal(int(m.group(1)), int(m.group(2)))
        if m := _CHAR.fullmatch(value):
            return f"{m.group(1)}({int(m.group(2))})"
        if m := _INTERVAL.fullmatch(value):
            return interval(m.group(1), m.group(2))
        raise SparkTypeError(f"could not parse datatype: {value}")
    if not isinstance(value, dict):
        raise SparkTypeError(f"could not parse datatype: {_short(value)}")
    kind = _need(value, "type")
    if kind == "struct":
        fields = _need(value, "fields")
        if not isinstance(fields, list):
            raise SparkTypeError(f"'fields' must be a list in {_short(value)}")
        out = []
        for f in fields:
            if not isinstance(f, dict):
                raise SparkTypeError(f"a struct field must be an object, got {_short(f)}")
            name = _need(f, "name")
            if not isinstance(name, str):
                raise SparkTypeError(f"a field name must be a string, got {_short(name)}")
            metadata = _need(f, "metadata")
            if not isinstance(metadata, dict):
                raise SparkTypeError(f"'metadata' must be an object in {_short(f)}")
            out.append(field(name, _json_type(_need(f, "type")), _bool(f, "nullable"), metadata))
        return struct(out)
    if kind == "array":
        return array(_json_type(_need(value, "elementType")), _bool(value, "containsNull"))
    if kind == "map":
        key, val = _json_type(_need(value, "keyType")), _json_type(_need(value, "valueType"))
        return map_type(key, val, _bool(value, "valueContainsNull"))
    raise SparkTypeError(f"unsupported data type: {kind}")


# ---------------------------------------------------------------- Spark DDL

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*)
  | (?P<word>[A-Za-z0-9_]+)
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<punct>[<>,:()])
    """,
    re.VERBOSE | re.DOTALL,
)
# Words Spark's lexer reads as numeric literals, never as names (``1a`` is a name, ``1L`` is not).
_NUMBER = re.compile(r"\d+(?:[LSYDF]|BD)?|\d+E\d+(?:[DF]|BD)?", re.IGNORECASE)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%", "_": "\\_"}


def _unescape(body: str) -> str:
    """Spark's ``unescapeSQLString`` for the escapes people write (``\\'``, ``\\n``, ``\\uXXXX``...)."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) tokens; comments and white space dropped."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text.startswith("/*", pos):  # bracketed comments nest, as in Spark
            depth, i = 0, pos
            while i < len(text):
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                    if depth == 0:
                        break
                else:
                    i += 1
            if depth:
                raise SparkTypeError(f"unclosed comment at position {pos}")
            pos = i
            continue
        m = _TOKEN.match(text, pos)
        if not m:
            raise SparkTypeError(f"syntax error at or near {text[pos : pos + 10]!r} (position {pos})")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def fail(self, what: str) -> SparkTypeError:
        tok = self.peek()
        near = "end of input" if tok is None else repr(tok[1])
        return SparkTypeError(f"syntax error at or near {near}: expected {what}")

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() in words:
            self.i += 1
            return tok[1].lower()
        return None

    def punct(self, char: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "punct" and tok[1] == char:
            self.i += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.punct(char):
            raise self.fail(repr(char))

    def number(self) -> int:
        tok = self.peek()
        if not tok or tok[0] != "word" or not tok[1].isdigit():
            raise self.fail("a number")
        self.i += 1
        return int(tok[1])

    def name(self) -> str:
        tok = self.peek()
        if tok and tok[0] == "quoted":
            self.i += 1
            return tok[1][1:-1].replace("``", "`")
        if tok and tok[0] == "word" and not _NUMBER.fullmatch(tok[1]):
            self.i += 1
            return tok[1]
        raise self.fail("a column name")

    def schema(self) -> dict[str, Any]:
        fields = [self.column(colon=False)]
        while self.punct(","):
            fields.append(self.column(colon=False))
        if self.peek() is not None:
            raise self.fail("',' or the end of the schema")
        return struct(fields)

    def column(self, colon: bool) -> dict[str, Any]:
        name = self.name()
        if colon:
            self.punct(":")
        dtype = self.data_type()
        nullable = True
        if self.keyword("not"):
            if not self.keyword("null"):
                raise self.fail("NULL after NOT")
            nullable = False
        metadata = {}
        if self.keyword("comment"):
            tok = self.peek()
            if not tok or tok[0] != "string":
                raise self.fail("a quoted comment")
            self.i += 1
            metadata["comment"] = _unescape(tok[1][1:-1])
        return field(name, dtype, nullable, metadata)

    def data_type(self) -> SparkType:
        tok = self.peek()
        if not tok or tok[0] != "word":
            raise self.fail("a data type")
        word = tok[1].lower()
        self.i += 1
        if word == "array":
            self.expect("<")
            element = self.data_type()
            self.expect(">")
            return array(element)
        if word == "map":
            self.expect("<")
            key = self.data_type()
            self.expect(",")
            value = self.data_type()
            self.expect(">")
            return map_type(key, value)
        if word == "struct":
            self.expect("<")
            fields = []
            if not self.punct(">"):
                fields.append(self.column(colon=True))
                while self.punct(","):
                    fields.append(self.column(colon=True))
                self.expect(">")
            return struct(fields)
        if word == "interval":
            start = self.keyword(*_YEAR_MONTH, *_DAY_TIME)
            if start is None:
                return "interval"
            end = None
            if self.keyword("to"):
                end = self.keyword(*_YEAR_MONTH, *_DAY_TIME)
                if end is None:
                    raise self.fail("an interval unit after TO")
            return interval(start, end)
        if word in ("decimal", "dec", "numeric"):
            if not self.punct("("):
                return "decimal(10,0)"
            precision = self.number()
            scale = self.number() if self.punct(",") else 0
            self.expect(")")
            return decimal(precision, scale)
        if word in ("char", "character", "varchar"):
            self.expect("(")
            length = self.number()
            self.expect(")")
            return f"{'varchar' if word == 'varchar' else 'char'}({length})"
        if word in _ATOMIC_DDL:
            if self.peek() and self.peek()[1] == "(":
                raise SparkTypeError(f"data type {word.upper()} takes no parameters")
            return _ATOMIC_DDL[word]
        raise SparkTypeError(f"unsupported data type {tok[1]!r}")


def parse_ddl(text: str) -> dict[str, Any]:
    """Spark DDL (``a BIGINT, b STRUCT<c: STRING>``) as StructType JSON, as ``StructType.fromDDL``."""
    return _Parser(text).schema()
