"""Our Spark DDL parser and StructType JSON writer (glue/spark_types.py, glue/schema.py) against
Spark's own answers, on a table of cases: ``StructType.fromDDL`` in the JVM for DDL (accepted or
refused, and the exact StructType JSON when accepted), pyspark's ``jsonValue()`` for what the run
summary writes, and pyspark's ``StructType.fromJson`` for StructType JSON files."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from glue import spark_types
from glue.schema import SchemaError, parse_schema_text, schema_json

pytestmark = [pytest.mark.spark]

DDL_CASES = [
    "a BIGINT, b STRUCT<c: STRING, d: ARRAY<INT>>, e DECIMAL(10,2)",
    "`a b` INT, `x``y` STRING, `é` STRING",
    "a INT NOT NULL COMMENT 'hi there', b STRING COMMENT \"dq\", c STRING COMMENT 'it\\'s\\n'",
    "a DECIMAL, b DECIMAL(5), c DEC(5,2), d NUMERIC(3,1), e decimal( 10 , 2 ), f DECIMAL(0,0), g DECIMAL(38,38)",
    "a CHAR(3), b VARCHAR(10), c CHARACTER(2)",
    "a BINARY, b VOID, c MAP<STRING, ARRAY<INT>>",
    "a INTERVAL DAY TO SECOND, b INTERVAL YEAR TO MONTH, c INTERVAL DAY, d INTERVAL MONTH, e INTERVAL",
    "a INTERVAL HOUR TO MINUTE, b INTERVAL MINUTE TO SECOND",
    "a TIMESTAMP, b TIMESTAMP_NTZ, c TIMESTAMP_LTZ, d DATE",
    "a BYTE, b TINYINT, c SHORT, d SMALLINT, e INTEGER, f LONG, g REAL, h FLOAT, i DOUBLE, j BOOLEAN",
    "a STRUCT<>, b STRUCT<c INT>, d STRUCT<e: INT NOT NULL COMMENT 'x'>, f ARRAY<ARRAY<INT>>",
    "a STRUCT<b: INT, c ARRAY<STRUCT<d: STRING, `e f`: MAP<STRING, INT>>>>",
    "a array < int >, b Struct<C:string>, c bIgInT",
    "1a INT, date DATE, comment STRING, not INT, select INT, struct INT, _x INT",
    "a int -- a comment\n, b string /* another /* nested */ one */, c INT",
    "a INT, a STRING, A INT",
    "\n a  INT \n",
    # refused by Spark
    "a: INT",
    "é INT",
    "a INT,",
    "",
    "a",
    "a FOO",
    "a INT b INT",
    "a ARRAY<INT",
    "a DECIMAL(10,-1)",
    "a DECIMAL(39,0)",
    "a DECIMAL(5,6)",
    "a INT COMMENT 'x' NOT NULL",
    "a double precision",
    "a INT NULL",
    "`a`.`b` INT",
    "a.b INT",
    "a-b INT",
    "a ARRAY<INT NOT NULL>",
    "a STRUCT<b:INT,>",
    "a CHAR",
    "a INT(5)",
    "a INTERVAL SECOND TO DAY",
    "a INTERVAL YEAR TO DAY",
    "a INTERVAL DAY TO",
    "a STRUCT",
    "a ARRAY<>",
    "a MAP<STRING>",
    "a INT COMMENT x",
    "a INT NOT",
    "1 INT",
    "1L INT",
    "a INT /* open",
    "`a INT",
    "a STRING COMMENT 'open",
]


def _spark_ddl(spark, text: str):
    try:
        return json.loads(spark._jvm.org.apache.spark.sql.types.StructType.fromDDL(text).json())
    except Exception:  # py4j carries the JVM's ParseException / AnalysisException
        return "refused"


def _ours(text: str):
    try:
        return spark_types.parse_ddl(text)
    except spark_types.SparkTypeError:
        return "refused"


def test_ddl_parser_gives_sparks_answers(spark):
    wrong = []
    for text in DDL_CASES:
        want, got = _spark_ddl(spark, text), _ours(text)
        if want != got:
            wrong.append(f"{text!r}:\n  spark: {want}\n  ours:  {got}")
    assert not wrong, "\n".join(wrong)
    # the table holds both answers
    answers = [_ours(t) for t in DDL_CASES]
    assert answers.count("refused") >= 20 and len(answers) - answers.count("refused") >= 15


ARROW_CASES = [
    pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64()), ("d", pa.bool_())]),
    pa.schema([("s", pa.struct([("x", pa.int32()), ("y", pa.list_(pa.struct([("z", pa.decimal128(38, 0))])))]))]),
    pa.schema([("t", pa.timestamp("us", tz="UTC")), ("n", pa.timestamp("us")), ("d", pa.date32())]),
    pa.schema([("i8", pa.int8()), ("i16", pa.int16()), ("f", pa.float32()), ("v", pa.null())]),
    pa.schema([("ls", pa.large_string()), ("ll", pa.large_list(pa.string())), ("e", pa.struct([]))]),
]


@pytest.mark.parametrize("schema", ARROW_CASES, ids=range(len(ARROW_CASES)))
def test_summary_schema_json_is_what_pyspark_writes(schema):
    from pyspark.sql import types as T

    def spark_type(t):
        if pa.types.is_struct(t):
            return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in t])
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return T.ArrayType(spark_type(t.value_type), True)
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
        return simple[t]

    want = spark_type(pa.struct(list(schema)))
    ours = schema_json(schema)
    assert json.dumps(ours) == json.dumps(want.jsonValue())  # same keys, in the same order
    assert T.StructType.fromJson(ours) == want


JSON_CASES = [
    {"type": "struct", "fields": [{"name": "a", "type": "long", "nullable": True, "metadata": {}}]},
    {"type": "struct", "fields": [{"name": "a", "type": "decimal", "nullable": False, "metadata": {"comment": "c"}}]},
    {"type": "struct", "fields": [{"name": "a", "type": "decimal(12, 3)", "nullable": True, "metadata": {}}]},
    {"type": "struct", "fields": [{"name": "a", "type": "interval day to second", "nullable": True, "metadata": {}}]},
    {"type": "struct", "fields": [{"name": "a", "type": "varchar(4)", "nullable": True, "metadata": {}}]},
    {
        "type": "struct",
        "fields": [
            {
                "name": "m",
                "type": {"type": "map", "keyType": "string", "valueType": "integer", "valueContainsNull": True},
                "nullable": True,
                "metadata": {},
            },
            {
                "name": "l",
                "type": {"type": "array", "elementType": "timestamp_ntz", "containsNull": False},
                "nullable": True,
                "metadata": {},
            },
        ],
    },
    {"type": "struct", "fields": []},
    # refused by pyspark
    {"type": "struct", "fields": [{"name": "a", "type": "long", "nullable": True}]},
    {"type": "struct", "fields": [{"name": "a", "type": "lng", "nullable": True, "metadata": {}}]},
    {
        "type": "struct",
        "fields": [{"name": "a", "type": {"type": "array", "elementType": "long"}, "nullable": True, "metadata": {}}],
    },
    {"type": "struct", "fields": [{"name": "a", "type": {"type": "set"}, "nullable": True, "metadata": {}}]},
    {"type": "struct"},
]


@pytest.mark.parametrize("case", JSON_CASES, ids=range(len(JSON_CASES)))
def test_structtype_json_is_read_as_pyspark_reads_it(case):
    from pyspark.sql import types as T

    try:
        want = T.StructType.fromJson(case).jsonValue()
    except Exception:
        want = "refused"
    try:
        got = spark_types.parse_json(case)
    except spark_types.SparkTypeError:
        got = "refused"
    assert got == want


def test_schema_file_errors_name_the_problem():
    with pytest.raises(SchemaError, match="not valid Spark DDL: syntax error at or near end of input"):
        parse_schema_text("a INT, b")
    with pytest.raises(SchemaError, match="unsupported data type 'FOO'"):
        parse_schema_text("a FOO")
