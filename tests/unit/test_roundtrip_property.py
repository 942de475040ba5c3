"""Round-trip property tests: arbitrary NDJSON through the job's conversion, back from Parquet, against
an independent oracle of docs/json-shapes.md (tests/json_shapes_oracle.py; it imports nothing from glue/).

Default profile: few examples (make test). ``HYPOTHESIS_PROFILE=fuzz`` (make fuzz): many.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conversion_harness import convert_manifest, variant
from tests.json_shapes_oracle import Expected, check, expect


def assert_matches(exp: Expected, table: pa.Table, bad: list[dict]) -> None:
    problems = check(exp, table, bad)
    assert not problems, "\n".join(problems[:15])


# ---- strategies ----------------------------------------------------------------------------------

KEYS = st.sampled_from(
    ["id", "Id", "ID", "a", "A", "b", "", "x.y", "with space", 'q"uote', "é", "É", "$k", "a/b", "t~1", "\t", "k" * 256]
)
TOP_EXTRA = st.sampled_from(["_source_file", "_Rescued_Data", "_manifest_id"])


NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.integers(-(10**38) + 1, 10**38 - 1).map(str),  # beyond int64, within 38 digits
    st.integers(10**38, 10**45).map(str),  # more than 38 digits
    st.sampled_from(["9007199254740993", "-9007199254740993", "9007199254740992", "1e400", "-1E+400", "0", "-0"]),
    st.sampled_from(["1.5", "-0.25", "123.125", "1e3", "2.5E-3", "0.1", "-0.0"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS.map(lambda s: ("num", s)),
    st.text(max_size=6),
    st.sampled_from(["2024-05-01T00:00:00Z"]),
)


def _render(v: Any) -> str:
    if isinstance(v, tuple) and v[0] == "num":
        return v[1]
    if isinstance(v, tuple) and v[0] == "obj":
        return "{" + ",".join(f"{json.dumps(k)}:{_render(x)}" for k, x in v[1]) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_render(x) for x in v) + "]"
    return json.dumps(v)


def _obj(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(st.tuples(KEYS, children), max_size=4).map(lambda pairs: ("obj", pairs))


VALUES = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=4), _obj(c)), max_leaves=12)
TOP_KEYS = st.one_of(KEYS, KEYS, KEYS, TOP_EXTRA)
OBJECT_LINES = st.lists(st.tuples(TOP_KEYS, VALUES), max_size=5).map(lambda p: _render(("obj", p)).encode())
OTHER_LINES = st.one_of(
    VALUES.filter(lambda v: not (isinstance(v, tuple) and v[0] == "obj")).map(lambda v: _render(v).encode()),
    st.sampled_from(
        [
            b'{"a": 1',
            b"{'a': 1}",
            b'{"a": NaN}',
            b'{"a": 1} x',
            b'{"a": 1,}',
            b'{"a": "\xff"}',
            b'{"a": "\\ud800"}',
            b"",
            b"  \t",
            b'{"a":' * 513 + b"1" + b"}" * 513,
            b"[" * 513,
        ]
    ),
    # around the depth rules: a column holds 32 levels (the 33rd is JSON text), a line 512 levels
    st.sampled_from([31, 32, 33, 34, 511]).flatmap(
        lambda n: st.sampled_from(
            [
                b'{"d":' + b'{"a":' * (n - 1) + b'{"A":1,"a":2.50,"a":null}' + b"}" * (n - 1) + b"}",
                b'{"d":' + b"[" * (n - 1) + b"[true,1.0]" + b"]" * (n - 1) + b"}",
                b'{"d":' + b"[" * (n - 1) + b"[]" + b"]" * (n - 1) + b"}",
                b'{"d":' + b"[" * n + b"]" * n + b', "D": 1}',
            ]
        )
    ),
)
LINES = st.lists(st.one_of(OBJECT_LINES, OBJECT_LINES, OTHER_LINES), min_size=0, max_size=8)


@st.composite
def files(draw: st.DrawFn, max_files: int = 3) -> list[tuple[str, bytes]]:
    out = []
    for i in range(draw(st.integers(1, max_files))):
        body = b"\n".join(draw(LINES))
        style = draw(st.sampled_from(["lf", "final-lf", "crlf", "bom", "gz"]))
        name = f"s3://in/f{i}.ndjson"
        if style == "final-lf" and body:
            body += b"\n"
        elif style == "crlf":
            body = body.replace(b"\n", b"\r\n") + b"\r\n"
        elif style == "bom":
            body = b"\xef\xbb\xbf" + body
        elif style == "gz":
            half = len(body) // 2
            body, name = gzip.compress(body[:half]) + gzip.compress(body[half:]), name + ".gz"
        out.append((name, body))
    return out


COMMON = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)

# ---- properties ----------------------------------------------------------------------------------


@COMMON
@given(files())
def test_every_line_is_one_row_or_one_quarantine_record_with_the_documented_values(manifest):
    # GIVEN arbitrary files WHEN the job's conversion runs and the Parquet is read back
    exp = expect(manifest)
    table, bad = convert_manifest(manifest)
    # THEN rows, values, schema, _rescued_data and quarantine reasons are what the contract says
    assert_matches(exp, table, bad)
    for uri, c in exp.counts.items():
        assert c["lines"] == c["rows"] + c["quarantined"] + c["blank"]
        assert sum(1 for f in table.column("_source_file").to_pylist() if f == uri) == c["rows"]


@COMMON
@given(files(max_files=2))
def test_fast_and_slow_paths_give_the_same_table(manifest):
    fast = convert_manifest(manifest)
    with variant(slow=True):
        slow = convert_manifest(manifest)
    assert slow[1] == fast[1]
    assert slow[0].schema == fast[0].schema
    assert slow[0].to_pylist() == fast[0].to_pylist()


@COMMON
@given(files(max_files=2))
def test_orjson_and_stdlib_parsers_give_the_same_verdicts_and_values(manifest):
    with_orjson = convert_manifest(manifest)
    with variant(stdlib=True):
        stdlib = convert_manifest(manifest)
    assert [(q["line_number"], q["reason"].split(":")[0]) for q in stdlib[1]] == [
        (q["line_number"], q["reason"].split(":")[0]) for q in with_orjson[1]
    ]
    assert stdlib[0].schema == with_orjson[0].schema
    assert stdlib[0].to_pylist() == with_orjson[0].to_pylist()


@COMMON
@given(OBJECT_LINES)
def test_one_object_on_both_parsers_and_both_paths(line):
    exp = expect([("s3://in/one.ndjson", line)])
    for slow in (False, True):
        for stdlib in (False, True):
            with variant(slow=slow, stdlib=stdlib):
                table, bad = convert_manifest([("s3://in/one.ndjson", line)])
            problems = check(exp, table, bad)
            assert not problems, f"slow={slow} stdlib={stdlib}: " + "\n".join(problems[:10])


# ---- pinned examples (the property's oracle on known inputs) ---------------------------------------


@pytest.mark.parametrize(
    ("lines_", "column", "values", "rescued"),
    [
        (
            [b'{"events": [null, "Elect Leader", "Do Ballot"]}', b'{"events": ["x"]}', b'{"events": null}'],
            "events",
            [[None, "Elect Leader", "Do Ballot"], ["x"], None],
            [None, None, None],
        ),
        ([b'{"n": 1}', b'{"n": 12345678901234567890}'], "n", [1, 12345678901234567890], [None, None]),
        ([b'{"n": 1.5}', b'{"n": 9007199254740993}'], "n", [1.5, None], [None, {"/n": 9007199254740993}]),
        ([b'{"n": 1}', b'{"n": "a"}', b'{"n": {"b": 1}}'], "n", ["1", "a", '{"b":1}'], [None, None, None]),
        ([b'{"id": 1, "Id": 2}'], "id", [1], [{"/Id": 2}]),
        ([b'{"a": 1, "a": 2, "a": 3}'], "a", [3], [{"/a": 1, "/a#2": 2}]),
        # the first casing seen is where a key FIRST appears, even when a later duplicate wins the value
        ([b'{"id": null, "Id": 1, "id": 2}'], "id", [2], [{"/id": None, "/Id": 1}]),
        ([b'{"id":null,"Id":null,"id":null}'], "id", [None], [{"/id": None}]),
        ([b'{"x": [1, "a", null]}'], "x", [["1", "a", None]], [None]),
        ([b'{"e": []}'], "e", [[]], [None]),
        ([b'{"o": {}}'], "o", ["{}"], [None]),
        ([b'{"z": null}'], "z", [None], [None]),
        (
            [b'{"big": 1234567890123456789012345678901234567890}'],
            "big",
            ["1234567890123456789012345678901234567890"],
            [None],
        ),
        ([b'{"f": 1e400}'], "f", ["1e400"], [None]),
    ],
)
def test_pinned_shapes(lines_, column, values, rescued):
    manifest = [("s3://in/p.ndjson", b"\n".join(lines_))]
    table, bad = convert_manifest(manifest)
    assert_matches(expect(manifest), table, bad)
    assert table.column(column).to_pylist() == values  # Decimal(n) == n: decimal columns compare too
    got_r = [json.loads(r) if r else None for r in table.column("_rescued_data").to_pylist()]
    assert got_r == rescued


@pytest.mark.parametrize(
    ("line", "column", "value", "rescued_text"),
    [
        # a rescued number keeps its literal text; a rescued object keeps its keys in source order
        (b'{"k": 1, "_source_file": {"a": 1.50}}', "k", 1, '{"/_source_file":{"a":1.50}}'),
        (b'{"k": 1, "_source_file": {"b": 1, "a": 2, "a": 3}}', "k", 1, '{"/_source_file":{"b":1,"a":2,"a":3}}'),
        # a rescued mixed array keeps its values' JSON types
        (b'{"A": null, "a": [false, 0]}', "A", None, '{"/a":[false,0]}'),
        # JSON text of an object holds the source values, not their string conversions
        (b'{"Id": {"\\t": [{"x": "s"}, 1]}}', "Id", '{"\\t":[{"x":"s"},1]}', None),
        # number literals keep their text: 1.0 is not 1, 1e400 and integers beyond int64 stay exact, -0 stays -0
        (
            b'{"A": 0, "a": [1.0, 1, 1e400, 123456789012345678901234567890, -0, 2.50E+3]}',
            "A",
            0,
            '{"/a":[1.0,1,1e400,123456789012345678901234567890,-0,2.50E+3]}',
        ),
        # an object stored as JSON text keeps its null members and its duplicate keys in source order
        (b'{"Id": {"\\t": {"z": null, "z": 1.0}, "\\t": null}}', "Id", '{"\\t":{"z":null,"z":1.0},"\\t":null}', None),
        # a row whose only keys are rescued is still a row
        (b'{"_source_file": 1}', None, None, '{"/_source_file":1}'),
    ],
)
def test_pinned_text_and_rescue_exactness(line, column, value, rescued_text):
    for slow in (False, True):
        with variant(slow=slow):
            table, bad = convert_manifest([("s3://in/p.ndjson", line)])
        assert not bad and table.num_rows == 1, f"slow={slow}"
        if column is not None:
            assert table.column(column).to_pylist() == [value], f"slow={slow}"
        assert table.column("_rescued_data").to_pylist() == [rescued_text], f"slow={slow}"


@pytest.mark.parametrize("slow", [False, True])
def test_text_and_rescue_across_files_come_from_the_source(slow):
    # GIVEN files converted on their own (the first on Arrow's fast path) whose fields the manifest's
    # schema turns into JSON text (a conflict across files) or rescues (another casing, first seen earlier)
    manifest = [
        ("s3://in/f0.ndjson", b'{"id": 1, "n": {"x": 1.50, "b": [true, false], "z": null}}'),
        ("s3://in/f1.ndjson", b'{"n": "text", "Id": [false, 1e400, 2.0], "m": 12345678901234567890123}'),
        ("s3://in/f2.ndjson", b'{"m": 1.25}'),
    ]
    # WHEN the manifest converts
    with variant(slow=slow):
        table, bad = convert_manifest(manifest)
    # THEN the text and the rescued values are the source's, literally
    assert not bad
    assert table.column("n").to_pylist() == ['{"x":1.50,"b":[true,false],"z":null}', "text", None]
    assert table.column("m").to_pylist() == [None, "12345678901234567890123", "1.25"]
    assert table.column("_rescued_data").to_pylist() == [None, '{"/Id":[false,1e400,2.0]}', None]
    assert_matches(expect(manifest), table, bad)


def test_booleans_stay_boolean_across_files():
    # GIVEN two files with the same nested boolean (the polars delta-log files of the peer corpus)
    manifest = [("s3://in/f0.ndjson", b'{"s": {"b": true}}'), ("s3://in/f1.ndjson", b'{"s": {"b": false}}')]
    # WHEN the manifest converts THEN the field is boolean, not the text "true"
    table, _ = convert_manifest(manifest)
    assert str(table.schema.field("s").type) == "struct<b: bool>"
    assert table.column("s").to_pylist() == [{"b": True}, {"b": False}]
    top = [("s3://in/f0.ndjson", b'{"b": true}'), ("s3://in/f1.ndjson", b'{"b": false}')]
    assert convert_manifest(top)[0].column("b").to_pylist() == [True, False]


def test_512_levels_convert_on_the_fast_path():
    line = b'{"a":' + b"[" * 511 + b"]" * 511 + b"}"
    table, bad = convert_manifest([("s3://in/deep.ndjson", line)])
    assert not bad and table.num_rows == 1
