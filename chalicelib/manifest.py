"""The manifest: the one contract between the control plane (which seals it) and the Glue job.

Both sides import this module; it has no dependencies beyond the standard library so the
Glue job can ship it as an ``--extra-py-files`` zip. ``MANIFEST_VERSION`` is bumped on any
incompatible change and readers reject versions they do not know, rather than guessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_VERSION = 1
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class ManifestError(ValueError):
    """A manifest that cannot be trusted: wrong version, missing field, empty file list."""


@dataclass(frozen=True)
class ManifestFile:
    uri: str
    size: int
    etag: str = ""
    version_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.version_id is None:
            out.pop("version_id")
        return out


@dataclass(frozen=True)
class Manifest:
    manifest_id: str
    date_prefix: str
    files: tuple[ManifestFile, ...]
    created_at: str = ""
    version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def validate(self) -> Manifest:
        if self.version != MANIFEST_VERSION:
            raise ManifestError(f"unsupported manifest version {self.version!r} (this code reads {MANIFEST_VERSION})")
        if not _ID_RE.match(self.manifest_id or ""):
            raise ManifestError(f"invalid manifest_id {self.manifest_id!r}: use 1-128 of [A-Za-z0-9._-]")
        if not _DATE_RE.match(self.date_prefix or ""):
            raise ManifestError(f"invalid date_prefix {self.date_prefix!r}: expected YYYY-MM-DD")
        if not self.files:
            raise ManifestError(f"manifest {self.manifest_id} lists no files")
        uris = [f.uri for f in self.files]
        if len(set(uris)) != len(uris):
            raise ManifestError(f"manifest {self.manifest_id} lists a file twice")
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "manifest_id": self.manifest_id,
            "date_prefix": self.date_prefix,
            "created_at": self.created_at,
            "file_count": len(self.files),
            "total_bytes": self.total_bytes,
            "files": [f.to_dict() for f in self.files],
        }
        if self.extra:
            out["extra"] = self.extra
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=None, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        missing = [k for k in ("manifest_id", "date_prefix", "files") if k not in data]
        if missing:
            raise ManifestError(f"manifest is missing {', '.join(missing)}")
        if not isinstance(data["files"], list):
            raise ManifestError("manifest 'files' must be a list")
        files = []
        for i, raw in enumerate(data["files"]):
            if not isinstance(raw, dict) or "uri" not in raw:
                raise ManifestError(f"manifest file #{i} has no 'uri'")
            files.append(
                ManifestFile(
                    uri=str(raw["uri"]),
                    size=int(raw.get("size", 0)),
                    etag=str(raw.get("etag", "")),
                    version_id=raw.get("version_id"),
                )
            )
        return cls(
            manifest_id=str(data["manifest_id"]),
            date_prefix=str(data["date_prefix"]),
            files=tuple(files),
            created_at=str(data.get("created_at", "")),
            version=int(data.get("version", MANIFEST_VERSION)),
            extra=dict(data.get("extra") or {}),
        ).validate()

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def manifest_object_key(prefix: str, date_prefix: str, manifest_id: str) -> str:
    """Where a sealed manifest lives in the manifests bucket (one place decides)."""
    prefix = prefix.strip("/")
    head = f"{prefix}/" if prefix else ""
    return f"{head}dt={date_prefix}/{manifest_id}.json"
