"""The sample generator is deterministic and produces what it says it does."""

from __future__ import annotations

import gzip
import json

import pytest

from glue.lines import parse_lines
from ndjson_parquet.cli import main as cli_main
from ndjson_parquet.sample_data import generate


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / "a", files=2, mb=0.05, bad_rate=0.05, seed=3)
    b = generate(tmp_path / "b", files=2, mb=0.05, bad_rate=0.05, seed=3)
    assert [f.path.read_bytes() for f in a] == [f.path.read_bytes() for f in b]
    c = generate(tmp_path / "c", files=1, mb=0.05, bad_rate=0.05, seed=4)
    assert c[0].path.read_bytes() != a[0].path.read_bytes()


def test_records_are_nested_events_and_bad_lines_are_counted(tmp_path):
    [made] = generate(tmp_path, files=1, mb=0.2, bad_rate=0.02, seed=1)
    data = made.path.read_bytes()
    # the job's strict parser agrees with the generator on every bad and blank line
    parsed = parse_lines(data)
    assert parsed.lines == made.lines
    assert len(parsed.quarantined) == made.bad_lines > 0
    assert parsed.blank == made.blank_lines
    good = [json.loads(line) for line in parsed.valid]
    assert {"event_id", "ts", "user", "page", "tags"} <= set(good[0])
    assert isinstance(good[0]["user"], dict) and isinstance(good[0]["tags"], list)
    assert any(not r["user"]["name"].isascii() for r in good)
    assert any("items" in r for r in good) and any("items" not in r for r in good)


def test_gzip_every(tmp_path):
    made = generate(tmp_path, files=2, mb=0.01, bad_rate=0, seed=1, gzip_every=2)
    assert made[1].path.name.endswith(".ndjson.gz")
    assert gzip.decompress(made[1].path.read_bytes()).startswith(b"{")


@pytest.mark.parametrize(("kw", "msg"), [({"files": 0}, "files"), ({"mb": 0}, "mb"), ({"bad_rate": 1}, "bad_rate")])
def test_invalid_parameters(tmp_path, kw, msg):
    args = {"files": 1, "mb": 0.01, "bad_rate": 0.0, "seed": 1, **kw}
    with pytest.raises(ValueError, match=msg):
        generate(tmp_path, **args)


def test_cli_generate(tmp_path, capsys):
    assert cli_main(["generate", "--out", str(tmp_path), "--files", "2", "--mb", "0.01", "--seed", "5"]) == 0
    assert "wrote 2 files" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events-00000.ndjson", "events-00001.ndjson"]
    assert cli_main(["generate", "--out", str(tmp_path), "--files", "0"]) == 2
