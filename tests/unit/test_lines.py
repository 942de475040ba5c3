"""Strict line parsing: what is a row, what is quarantined and why, what is blank; both parsers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue.lines import RAW_MAX_BYTES, BadLine, decompress, loads_strict, parse_lines, raw_text, split_lines
from tests.conversion_harness import corpus_missing

PARSERS = [pytest.param(True, id="orjson"), pytest.param(False, id="stdlib")]


def test_split_lines_handles_bom_crlf_and_final_newline():
    assert split_lines(b"\xef\xbb\xbfa\r\nb\r\n") == [b"a", b"b"]
    assert split_lines(b"a\nb") == [b"a", b"b"]
    assert split_lines(b"a\n\n") == [b"a", b""]
    assert split_lines(b"") == [] and split_lines(b"\xef\xbb\xbf") == []
    assert split_lines(b"a\rb\n") == [b"a\rb"]  # a lone CR inside a line is not a line break


@pytest.mark.parametrize("use_orjson", PARSERS)
@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{'a': 1}", "invalid_json"),
        (b'{"a": 1} trailing', "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": Infinity}', "invalid_json"),
        (b'{"a": -Infinity}', "invalid_json"),
        (b'{"a": 1,}', "invalid_json"),
        (b'{"a": "\\ud800"}', "invalid_json"),
        (b'{"a": "\xff"}', "invalid_utf8"),
        (b'{"a": "\xed\xa0\x80"}', "invalid_utf8"),  # an encoded surrogate is not UTF-8
        (b"[1]", "not_an_object"),
        (b"null", "not_an_object"),
        (b"1", "not_an_object"),
    ],
)
def test_loads_strict_rejects_with_stable_codes(use_orjson, line, code):
    with pytest.raises(BadLine) as err:
        loads_strict(line, use_orjson=use_orjson)
    assert err.value.reason.split(":")[0] == code


@pytest.mark.parametrize("use_orjson", PARSERS)
def test_not_an_object_names_the_json_type(use_orjson):
    reasons = []
    for line in (b"[]", b'"s"', b"true", b"null", b"1.5"):
        with pytest.raises(BadLine) as err:
            loads_strict(line, use_orjson=use_orjson)
        reasons.append(err.value.reason)
    assert reasons == [
        "not_an_object: array",
        "not_an_object: string",
        "not_an_object: boolean",
        "not_an_object: null",
        "not_an_object: number",
    ]


@pytest.mark.parametrize("use_orjson", PARSERS)
def test_valid_objects_parse(use_orjson):
    assert loads_strict(b'{"a": [1, {"b": "\\u00e9\\ud83d\\ude00"}]}', use_orjson=use_orjson) == {
        "a": [1, {"b": "é😀"}]
    }


@pytest.mark.parametrize("use_orjson", PARSERS)
def test_parse_lines_counts_every_line_once(use_orjson):
    data = b'{"a":1}\n\n  \t\n[1]\n{"b":2}\r\n{bad\n{"c":3}'
    parsed = parse_lines(data, use_orjson=use_orjson)
    assert parsed.lines == 7 and parsed.blank == 2
    assert parsed.valid == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert parsed.valid_line_numbers == [1, 5, 7]
    assert [(q.line_number, q.reason.split(":")[0], q.raw) for q in parsed.quarantined] == [
        (4, "not_an_object", "[1]"),
        (6, "invalid_json", "{bad"),
    ]


def test_raw_text_is_truncated_and_flagged():
    raw, cut = raw_text(b"x" * (RAW_MAX_BYTES + 10))
    assert cut and len(raw) == RAW_MAX_BYTES
    assert raw_text(b"abc") == ("abc", False)
    assert raw_text(b"a\xffb") == ("a\\xffb", False)


def test_decompress_gzip_and_invalid_gzip():
    assert decompress(gzip.compress(b"x\n") + gzip.compress(b"y\n"), "f.ndjson.gz") == b"x\ny\n"
    assert decompress(b"plain", "f.ndjson") == b"plain"
    with pytest.raises(ValueError, match="not a valid gzip stream"):
        decompress(b"not gzip", "f.json.GZ")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(st.lists(st.one_of(st.dictionaries(st.text(max_size=4), _json_values, max_size=4), _json_values), max_size=8))
def test_both_parsers_agree_and_reconcile(values):
    import json

    data = "\n".join(json.dumps(v, ensure_ascii=False) for v in values).encode()
    fast, std = parse_lines(data, use_orjson=True), parse_lines(data, use_orjson=False)
    assert fast.valid_line_numbers == std.valid_line_numbers
    assert [q.line_number for q in fast.quarantined] == [q.line_number for q in std.quarantined]
    assert fast.lines == len(fast.valid) + len(fast.quarantined) + fast.blank


# ---- parser agreement: orjson path vs standard-library path -------------------------------------

JSONTESTSUITE = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "jsontestsuite" / "test_parsing"


def _verdict(line: bytes, use_orjson: bool) -> tuple[str, object]:
    try:
        return "row", _typed(loads_strict(line, use_orjson=use_orjson))
    except BadLine as exc:
        return exc.reason.split(":")[0], None


def _typed(v: object) -> str:
    """The value's repr: 1, 1.0 and "1" differ, key order counts (repr recurses one frame per level)."""
    return repr(v)


def test_parsers_agree_on_every_jsontestsuite_case():
    reason = corpus_missing(JSONTESTSUITE)
    if reason:
        pytest.skip(reason)
    # GIVEN every case, wrapped in an object so that valid cases are rows and their values compare
    cases = sorted(JSONTESTSUITE.glob("*.json"))
    assert len(cases) > 300
    disagreements = []
    for path in cases:
        data = path.read_bytes()
        for line in (data, b'{"v": ' + data + b"}"):
            # WHEN both parsers read it THEN they give the same verdict and the same typed values
            if _verdict(line, True) != _verdict(line, False):
                disagreements.append((path.name, line[:60], _verdict(line, True), _verdict(line, False)))
    assert not disagreements, disagreements[:10]


@pytest.mark.parametrize("use_orjson", PARSERS)
@pytest.mark.parametrize("levels", [513, 600, 100_000])
def test_too_deep_is_a_reason_not_a_recursion_error(use_orjson, levels):
    # more than 512 levels is too_deep whatever else is wrong with the line (unclosed, short, bad UTF-8)
    for line in (b"{" + b'"a":{' * levels, b"[" * levels, b'{"a":' + b"[" * levels, b"[\xff" + b"[" * levels):
        with pytest.raises(BadLine) as err:
            loads_strict(line, use_orjson=use_orjson)
        assert err.value.reason.startswith("too_deep"), line[:20]
        assert parse_lines(line, use_orjson=use_orjson).quarantined[0].reason.startswith("too_deep")
    valid = b'{"a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    with pytest.raises(BadLine) as err:
        loads_strict(valid, use_orjson=use_orjson)
    assert err.value.reason.startswith("too_deep")
    at_limit = b'{"a":' + b"[" * 511 + b"]" * 511 + b"}"
    assert _typed(loads_strict(at_limit, use_orjson=use_orjson)) is not None


@pytest.mark.parametrize("use_orjson", PARSERS)
def test_big_numbers_are_exact_on_both_parsers(use_orjson):
    big = [9007199254740993, 2**63, -(2**63) - 1, 10**38 - 1, 10**38, 10**60 + 7]
    line = json.dumps({"n": big}).encode()
    assert loads_strict(line, use_orjson=use_orjson)["n"] == big
    assert [type(v) for v in loads_strict(line, use_orjson=use_orjson)["n"]] == [int] * len(big)
    assert str(loads_strict(b'{"f": 1e400}', use_orjson=use_orjson)["f"]) == "1e400"
    assert loads_strict(b'{"f": 1.5}', use_orjson=use_orjson)["f"] == 1.5
