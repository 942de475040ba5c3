"""The Glue job end to end in the shared local SparkSession: values, provenance, quarantine,
encodings, idempotent reruns, schemas and every failure path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib.manifest import ManifestError
from glue.job import JobArgs, JobArgsError, run_job
from glue.storage import MissingObjectError
from tests.functional.glue.conftest import read_quarantine, read_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _args(tmp_path: Path, manifest: Path, **kw: object) -> JobArgs:
    return JobArgs(
        manifest_path=str(manifest), output_path=str(tmp_path / "out"), quarantine_path=str(tmp_path / "q"), **kw
    )


def _folder(tmp_path: Path, root: str, manifest_id: str, date: str = "2024-05-01") -> Path:
    return tmp_path / root / f"dt={date}" / f"manifest={manifest_id}"


def test_nested_values_round_trip_with_provenance(spark, tmp_path, make_manifest):
    # GIVEN two files with nested objects, arrays of objects, optional fields and unicode
    a = tmp_path / "a.ndjson"
    a.write_text(
        '{"id": 1, "user": {"name": "Zoë", "tags": ["x", "ü"]}, "items": [{"sku": "A", "qty": 2}], '
        '"ts": "2024-05-01T10:00:00Z"}\n'
        '{"id": 2, "user": {"name": "李雷", "tags": []}, "score": 1.5}\n',
        encoding="utf-8",
    )
    b = tmp_path / "b.jsonl"
    b.write_text('{"id": 3, "user": null, "items": [{"sku": "B", "qty": 1, "note": "😀"}]}\n', encoding="utf-8")
    manifest = make_manifest("m-nested", [str(a), str(b)])

    # WHEN
    summary = run_job(spark, _args(tmp_path, manifest))

    # THEN every value survives, with provenance, and the schema is inferred and recorded
    rows = read_rows(_folder(tmp_path, "out", "m-nested"))
    assert [(r["_source_file"], r["_source_line"], r["_manifest_id"]) for r in rows] == [
        (str(a), 1, "m-nested"),
        (str(a), 2, "m-nested"),
        (str(b), 1, "m-nested"),
    ]
    assert rows[0]["user"] == {"name": "Zoë", "tags": ["x", "ü"]}
    assert rows[0]["items"] == [{"note": None, "qty": 2, "sku": "A"}]
    assert rows[0]["ts"] == "2024-05-01T10:00:00Z"  # inference keeps timestamps as text
    assert rows[1]["user"] == {"name": "李雷", "tags": []}
    assert rows[1]["score"] == 1.5 and rows[0]["score"] is None
    assert rows[2]["user"] is None
    assert rows[2]["items"] == [{"note": "😀", "qty": 1, "sku": "B"}]
    assert summary.schema_source == "inferred"
    fields = {f["name"]: f["type"] for f in summary.schema["fields"]}
    assert fields["id"] == "long" and fields["score"] == "double" and fields["ts"] == "string"
    written = json.loads((tmp_path / "out" / "_runs" / "m-nested.json").read_text())
    assert written["totals"] == {"lines": 3, "rows": 3, "quarantined": 0, "blank": 0, "bytes": summary.input_bytes}
    assert [f["uri"] for f in written["files"]] == [str(a), str(b)]
    assert not (tmp_path / "out" / "_staging").exists()


def test_bad_lines_are_quarantined_with_line_numbers_and_reasons(spark, tmp_path, make_manifest):
    src = tmp_path / "mixed.ndjson"
    lines = [
        '{"ok": 1}',
        "",
        "{'single': 'quotes'}",
        '{"ok": 2} trailing',
        '{"nan": NaN}',
        "[1, 2]",
        '"text"',
        "   ",
        '{"ok": 3}',
        '{"big": "' + "x" * 70000 + '"',
    ]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"bad": "\xff\xfe"}\n')
    summary = run_job(spark, _args(tmp_path, make_manifest("m-bad", [str(src)])))

    recs = read_quarantine(_folder(tmp_path, "q", "m-bad"))
    assert [(r["line_number"], r["reason"].split(":")[0]) for r in recs] == [
        (3, "invalid_json"),
        (4, "invalid_json"),
        (5, "invalid_json"),
        (6, "not_an_object"),
        (7, "not_an_object"),
        (10, "invalid_json"),
        (11, "invalid_utf8"),
    ]
    assert recs[3]["reason"] == "not_an_object: array" and recs[4]["reason"] == "not_an_object: string"
    assert recs[0]["raw"] == "{'single': 'quotes'}" and recs[0]["source_file"] == str(src)
    assert recs[5]["raw_truncated"] is True and len(recs[5]["raw"]) == 64 * 1024
    assert recs[6]["raw"] == '{"bad": "\\xff\\xfe"}'
    assert all(r["manifest_id"] == "m-bad" for r in recs)
    rows = read_rows(_folder(tmp_path, "out", "m-bad"))
    assert [(r["_source_line"], r["ok"]) for r in rows] == [(1, 1), (9, 3)]
    assert summary.files[0] == {
        "uri": str(src),
        "lines": 11,
        "rows": 2,
        "quarantined": 7,
        "blank": 2,
        "bytes": src.stat().st_size,
    }


def test_gzip_crlf_bom_and_missing_final_newline(spark, tmp_path, make_manifest):
    body = '{"n": 1, "s": "é"}\r\n\r\n{"n": 2, "s": "ß"}'  # CRLF, blank line, no final newline
    plain = tmp_path / "bom.json"
    plain.write_bytes(b"\xef\xbb\xbf" + body.encode())
    gz = tmp_path / "crlf.ndjson.gz"
    gz.write_bytes(gzip.compress(body.encode()))
    summary = run_job(spark, _args(tmp_path, make_manifest("m-enc", [str(plain), str(gz)])))

    rows = read_rows(_folder(tmp_path, "out", "m-enc"))
    assert [(Path(r["_source_file"]).name, r["_source_line"], r["n"], r["s"]) for r in rows] == [
        ("bom.json", 1, 1, "é"),
        ("bom.json", 3, 2, "ß"),
        ("crlf.ndjson.gz", 1, 1, "é"),
        ("crlf.ndjson.gz", 3, 2, "ß"),
    ]
    assert [(f["lines"], f["rows"], f["blank"], f["quarantined"]) for f in summary.files] == [(3, 2, 1, 0)] * 2


def test_rerun_replaces_only_its_own_manifest_folder(spark, tmp_path, make_manifest):
    src = tmp_path / "x.ndjson"
    src.write_text('{"v": 1}\n{"v": 2}\nnot json\n')
    other = tmp_path / "y.ndjson"
    other.write_text('{"v": 9}\n')
    m1 = make_manifest("m-one", [str(src)])
    run_job(spark, _args(tmp_path, m1))
    run_job(spark, _args(tmp_path, make_manifest("m-two", [str(other)])))

    # WHEN the first manifest is reprocessed after its file changed
    src.write_text('{"v": 1}\n{"v": 3}\n')
    run_job(spark, _args(tmp_path, m1))

    # THEN its folders hold only the new result; the other manifest is untouched
    assert [r["v"] for r in read_rows(_folder(tmp_path, "out", "m-one"))] == [1, 3]
    assert read_quarantine(_folder(tmp_path, "q", "m-one")) == []
    assert [r["v"] for r in read_rows(_folder(tmp_path, "out", "m-two"))] == [9]
    assert len(list(_folder(tmp_path, "out", "m-one").glob("*.parquet"))) == 1


def test_missing_object_fails_naming_it_before_any_output(spark, tmp_path, make_manifest):
    ok = tmp_path / "ok.ndjson"
    ok.write_text('{"a": 1}\n')
    gone = tmp_path / "gone.ndjson"
    with pytest.raises(MissingObjectError, match="gone.ndjson"):
        run_job(spark, _args(tmp_path, make_manifest("m-missing", [str(ok), str(gone)])))
    assert not (tmp_path / "out").exists() and not (tmp_path / "q").exists()


def test_empty_manifest_is_a_clear_error(spark, tmp_path):
    manifest = tmp_path / "empty.json"
    manifest.write_text(json.dumps({"version": 1, "manifest_id": "m-empty", "date_prefix": "2024-05-01", "files": []}))
    with pytest.raises(ManifestError, match="lists no files"):
        run_job(spark, _args(tmp_path, manifest))
    assert not (tmp_path / "out").exists()


def test_manifest_path_that_does_not_exist(spark, tmp_path):
    with pytest.raises(MissingObjectError, match="nope.json"):
        run_job(spark, _args(tmp_path, tmp_path / "nope.json"))


def test_bad_compression_is_rejected(spark, tmp_path, make_manifest):
    with pytest.raises(JobArgsError, match="lzo"):
        run_job(spark, _args(tmp_path, make_manifest("m-c", ["x"]), compression="lzo"))


def test_explicit_ddl_schema_rescues_mismatches_and_keeps_every_row(spark, tmp_path, make_manifest):
    src = tmp_path / "typed.ndjson"
    src.write_text(
        '{"id": 1, "at": "2024-05-01T10:00:00.250Z", "user": {"age": 30}, "extra": "kept"}\n'
        '{"id": "2", "at": "2024-05-01T10:00:00Z", "user": {"age": 31}}\n'
        '{"id": 3, "at": "yesterday", "user": {"age": 32}}\n'
        '{"id": 4, "at": null, "user": {"age": "old", "name": "x"}}\n'
        '{"id": 5}\n'
        '{"id": 6, "user": {"age": 4000000000}, "tag": {"k": 1}}\n'
        "[6]\n"
        "not json\n"
    )
    schema = tmp_path / "schema.ddl"
    schema.write_text("id BIGINT, at TIMESTAMP, user STRUCT<age: INT, name: STRING>, tag STRING")
    summary = run_job(spark, _args(tmp_path, make_manifest("m-ddl", [str(src)]), schema_path=str(schema)))

    # THEN only the lines that are not JSON objects are quarantined
    recs = read_quarantine(_folder(tmp_path, "q", "m-ddl"))
    assert [(r["line_number"], r["reason"].split(":")[0]) for r in recs] == [(7, "not_an_object"), (8, "invalid_json")]
    assert (summary.totals["rows"], summary.totals["quarantined"]) == (6, 2)
    # AND every object is a row: a value that does not fit is null in its column and rescued
    table = pq.ParquetFile(next(_folder(tmp_path, "out", "m-ddl").glob("*.parquet"))).read()
    assert table.schema.names == [
        "id", "at", "user", "tag", "_rescued_data", "_source_file", "_source_line", "_manifest_id",
    ]  # fmt: skip
    rows = sorted(table.to_pylist(), key=lambda r: r["_source_line"])
    assert [(r["_source_line"], r["id"], r["user"], r["tag"], r["_rescued_data"]) for r in rows] == [
        (1, 1, {"age": 30, "name": None}, None, '{"/extra":"kept"}'),
        (2, None, {"age": 31, "name": None}, None, '{"/id":"2"}'),
        (3, 3, {"age": 32, "name": None}, None, '{"/at":"yesterday"}'),
        (4, 4, {"age": None, "name": "x"}, None, '{"/user/age":"old"}'),
        (5, 5, None, None, None),
        (6, 6, {"age": None, "name": None}, None, '{"/user/age":4000000000,"/tag":{"k":1}}'),
    ]
    assert rows[0]["at"].isoformat() == "2024-05-01T10:00:00.250000+00:00"
    assert rows[1]["at"].isoformat() == "2024-05-01T10:00:00+00:00" and rows[2]["at"] is None
    assert summary.schema_source == "explicit"
    assert [f["name"] for f in summary.schema["fields"]] == ["id", "at", "user", "tag"]


def test_explicit_structtype_json_schema(spark, tmp_path, make_manifest):
    src = tmp_path / "s.ndjson"
    src.write_text('{"a": 1.5, "b": [true, false]}\n{"a": 2, "b": [1]}\n')
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps(
            {
                "type": "struct",
                "fields": [
                    {"name": "a", "type": "double", "nullable": True, "metadata": {}},
                    {
                        "name": "b",
                        "type": {"type": "array", "elementType": "boolean", "containsNull": True},
                        "nullable": True,
                        "metadata": {},
                    },
                ],
            }
        )
    )
    run_job(spark, _args(tmp_path, make_manifest("m-json", [str(src)]), schema_path=str(schema)))
    assert [(r["a"], r["b"], r["_rescued_data"]) for r in read_rows(_folder(tmp_path, "out", "m-json"))] == [
        (1.5, [True, False], None),
        (2.0, [None], '{"/b/0":1}'),
    ]
    assert read_quarantine(_folder(tmp_path, "q", "m-json")) == []


def test_invalid_schema_file_fails_before_output(spark, tmp_path, make_manifest):
    src = tmp_path / "s.ndjson"
    src.write_text('{"a": 1}\n')
    schema = tmp_path / "bad.ddl"
    schema.write_text("a BIGINT,, b")
    with pytest.raises(ValueError, match="not valid Spark DDL"):
        run_job(spark, _args(tmp_path, make_manifest("m-bs", [str(src)]), schema_path=str(schema)))
    assert not (tmp_path / "out").exists()


def test_type_conflicts_between_files_resolve_by_the_documented_rule(spark, tmp_path, make_manifest):
    # GIVEN files that disagree: number vs string, int vs double, object vs string, null vs int
    f1 = tmp_path / "f1.ndjson"
    f1.write_text('{"k": 1, "n": 1, "o": {"x": 1}, "z": null, "e": {}}\n')
    f2 = tmp_path / "f2.ndjson"
    f2.write_text('{"k": "one", "n": 2.5, "o": "flat", "z": 7}\n')
    summary = run_job(spark, _args(tmp_path, make_manifest("m-conf", [str(f1), str(f2)]), target_file_mb=0.000001))

    # THEN (two tasks, unified afterwards) number|string -> string as JSON text, int|double -> double
    assert summary.tasks == 2
    rows = read_rows(_folder(tmp_path, "out", "m-conf"))
    assert [(r["k"], r["n"], r["o"], r["z"], r["e"]) for r in rows] == [
        ("1", 1.0, '{"x":1}', None, "{}"),
        ("one", 2.5, "flat", 7, None),
    ]
    types = {f["name"]: f["type"] for f in summary.schema["fields"]}
    assert types == {"e": "string", "k": "string", "n": "double", "o": "string", "z": "long"}


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
def test_compression_codecs(spark, tmp_path, make_manifest, codec):
    src = tmp_path / "c.ndjson"
    src.write_text('{"a": 1}\n')
    run_job(spark, _args(tmp_path, make_manifest("m-codec", [str(src)]), compression=codec))
    part = next(_folder(tmp_path, "out", "m-codec").glob("*.parquet"))
    expected = "UNCOMPRESSED" if codec == "none" else codec.upper()
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == expected


def test_output_is_readable_by_spark(spark, tmp_path, make_manifest):
    src = tmp_path / "r.ndjson"
    src.write_text('{"a": {"b": [1, 2]}, "c": "x"}\n{"c": "y"}\n')
    run_job(spark, _args(tmp_path, make_manifest("m-spark", [str(src)])))
    df = spark.read.parquet(str(tmp_path / "out"))
    got = sorted((r["c"], r["a"]["b"] if r["a"] else None, r["dt"], r["manifest"]) for r in df.collect())
    assert [(c, b, str(dt), m) for c, b, dt, m in got] == [
        ("x", [1, 2], "2024-05-01", "m-spark"),
        ("y", None, "2024-05-01", "m-spark"),
    ]


def test_manifest_with_only_bad_lines_commits_an_empty_data_folder(spark, tmp_path, make_manifest):
    src = tmp_path / "bad.ndjson"
    src.write_text("nope\n[1]\n\n")
    out = _folder(tmp_path, "out", "m-allbad")
    out.mkdir(parents=True)
    (out / "part-00000.parquet").write_bytes(b"from an earlier run")
    summary = run_job(spark, _args(tmp_path, make_manifest("m-allbad", [str(src)])))
    assert list(out.iterdir()) == []  # the earlier run's rows are gone: this run has none
    assert summary.totals["rows"] == 0 and summary.totals["quarantined"] == 2 and summary.totals["blank"] == 1
    assert len(read_quarantine(_folder(tmp_path, "q", "m-allbad"))) == 2


def test_generated_sample_with_the_bundled_explicit_schema(spark, tmp_path, make_manifest):
    from ndjson_parquet.sample_data import generate

    made = generate(tmp_path / "in", files=2, mb=0.1, bad_rate=0.02, seed=5, gzip_every=2)
    ddl = Path(__file__).resolve().parents[3] / "samples" / "events.ddl"
    summary = run_job(
        spark, _args(tmp_path, make_manifest("m-sample", [str(f.path) for f in made]), schema_path=str(ddl))
    )
    # every generated bad line is quarantined, no good one is refused by the schema
    assert summary.totals["quarantined"] == sum(f.bad_lines for f in made)
    reasons = {r["reason"].split(":")[0] for r in read_quarantine(_folder(tmp_path, "q", "m-sample"))}
    assert "schema_mismatch" not in reasons
    table = pq.ParquetFile(next(_folder(tmp_path, "out", "m-sample").glob("*.parquet"))).read()
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert summary.totals["rows"] == sum(f.lines - f.bad_lines - f.blank_lines for f in made)
    assert table.column("_rescued_data").null_count == table.num_rows  # every generated value fits
