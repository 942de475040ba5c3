"""The manifest contract shared by the control plane and the Glue job."""

from __future__ import annotations

import json

import pytest

from chalicelib.manifest import MANIFEST_VERSION, Manifest, ManifestError, ManifestFile, manifest_object_key


def _manifest(**kw) -> Manifest:
    base = {
        "manifest_id": "2024-05-01-000001",
        "date_prefix": "2024-05-01",
        "files": (ManifestFile("s3://b/a.ndjson", 10, "e1"), ManifestFile("s3://b/b.json.gz", 5, "e2", "v9")),
    }
    return Manifest(**{**base, **kw})


def test_round_trip_keeps_every_field():
    m = _manifest(created_at="2024-05-01T00:00:00Z", extra={"seq": 1})
    back = Manifest.from_json(m.to_json())
    assert back == m
    data = json.loads(m.to_json())
    assert data["version"] == MANIFEST_VERSION and data["file_count"] == 2 and data["total_bytes"] == 15
    assert data["files"][0] == {"uri": "s3://b/a.ndjson", "size": 10, "etag": "e1"}
    assert data["files"][1]["version_id"] == "v9"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"manifest_id": "m", "date_prefix": "2024-05-01"}, "missing files"),
        ({"manifest_id": "m", "date_prefix": "2024-05-01", "files": {}}, "'files' must be a list"),
        ({"manifest_id": "m", "date_prefix": "2024-05-01", "files": []}, "lists no files"),
        ({"manifest_id": "m", "date_prefix": "2024-05-01", "files": [{"size": 1}]}, "file #0 has no 'uri'"),
        ({"manifest_id": "m", "date_prefix": "May 1", "files": [{"uri": "x"}]}, "invalid date_prefix"),
        ({"manifest_id": "a/b", "date_prefix": "2024-05-01", "files": [{"uri": "x"}]}, "invalid manifest_id"),
        ({"manifest_id": "m", "date_prefix": "2024-05-01", "files": [{"uri": "x"}, {"uri": "x"}]}, "twice"),
        ({"version": 99, "manifest_id": "m", "date_prefix": "2024-05-01", "files": [{"uri": "x"}]}, "version 99"),
    ],
)
def test_invalid_manifests_are_rejected(data, message):
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(data)


def test_not_json():
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_json(b"{nope")


def test_object_key():
    assert manifest_object_key("manifests/", "2024-05-01", "m1") == "manifests/dt=2024-05-01/m1.json"
    assert manifest_object_key("", "2024-05-01", "m1") == "dt=2024-05-01/m1.json"
