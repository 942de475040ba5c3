"""Where the job reads and writes: local paths, ``file://`` and ``s3://`` URIs behind one small API.

S3 goes through boto3 so the same code reaches AWS and the local moto endpoint. Spark workers are
started before a test or the local runtime sets its environment, so the driver captures an
``S3Config`` (endpoint, region and, only when an endpoint override is set, the emulator's keys) and
ships it to tasks; on AWS (no override) tasks use their own role credentials.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from chalicelib.s3_delete import delete_batches


class MissingObjectError(FileNotFoundError):
    """An object named by the manifest does not exist."""


@dataclass(frozen=True)
class S3Config:
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    @classmethod
    def from_env(cls) -> S3Config:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not endpoint:  # real AWS: never copy credentials into task closures
            return cls(region=region)
        return cls(
            endpoint_url=endpoint,
            region=region or "us-east-1",
            access_key=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )


_CLIENTS: dict[S3Config, object] = {}


def s3_client(config: S3Config):
    """One client per config per process (tasks in a reused Python worker share it)."""
    if config not in _CLIENTS:
        import boto3

        _CLIENTS[config] = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key,
            aws_session_token=config.session_token,
        )
    return _CLIENTS[config]


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def local_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)


def join(base: str, *parts: str) -> str:
    base = base.rstrip("/")
    return "/".join([base, *(p.strip("/") for p in parts)])


class Storage:
    def __init__(self, config: S3Config | None = None) -> None:
        self.config = config or S3Config()

    def _s3(self):
        return s3_client(self.config)

    def read_bytes(self, uri: str, version_id: str | None = None) -> bytes:
        """The object's bytes; with ``version_id`` (versioned buckets) exactly the tracked version,
        even if the key was overwritten after the manifest was sealed."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {"VersionId": version_id} if version_id else {}
            try:
                return self._s3().get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
            except self._s3().exceptions.NoSuchKey:
                raise MissingObjectError(f"object not found: {uri}") from None
        try:
            return local_path(uri).read_bytes()
        except FileNotFoundError:
            raise MissingObjectError(f"object not found: {uri}") from None

    @contextlib.contextmanager
    def open_stream(self, uri: str, version_id: str | None = None) -> Iterator[BinaryIO]:
        """The object as a binary stream (``read(n)``), never whole in memory; the same version
        rule as ``read_bytes``."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {"VersionId": version_id} if version_id else {}
            try:
                body = self._s3().get_object(Bucket=bucket, Key=key, **extra)["Body"]
            except self._s3().exceptions.NoSuchKey:
                raise MissingObjectError(f"object not found: {uri}") from None
            try:
                yield body
            finally:
                body.close()
            return
        try:
            stream = local_path(uri).open("rb")
        except FileNotFoundError:
            raise MissingObjectError(f"object not found: {uri}") from None
        with stream:
            yield stream

    def scratch_path(self, uri: str) -> Path:
        """A local file to build ``uri`` in before ``put_file``: next to it for a local target (the
        final rename is then atomic), in the temporary folder for S3."""
        name = f".{uri.rstrip('/').rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
        if is_s3(uri):
            return Path(tempfile.gettempdir()) / name
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(name)

    def put_file(self, scratch: Path, uri: str) -> None:
        """Move a finished scratch file to ``uri`` (S3: one PUT streamed from disk, then removed)."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            try:
                with scratch.open("rb") as body:
                    self._s3().put_object(Bucket=bucket, Key=key, Body=body)
            finally:
                scratch.unlink(missing_ok=True)
            return
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, path)  # readers never see half a file

    def size(self, uri: str, version_id: str | None = None) -> int | None:
        """Size in bytes, or None when the object (or that version of it) does not exist."""
        if is_s3(uri):
            from botocore.exceptions import ClientError

            bucket, key = split_s3(uri)
            extra = {"VersionId": version_id} if version_id else {}
            try:
                return int(self._s3().head_object(Bucket=bucket, Key=key, **extra)["ContentLength"])
            except ClientError as exc:
                # By code: HEAD has no body, so a missing object is a bare "404" ClientError, never
                # the modelled s3.exceptions.NoSuchKey; the other codes are the emulator's spellings.
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
                    return None
                raise
        path = local_path(uri)
        return path.stat().st_size if path.is_file() else None

    def write_bytes(self, uri: str, data: bytes) -> None:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self._s3().put_object(Bucket=bucket, Key=key, Body=data)
            return
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see half a file

    def list(self, prefix_uri: str) -> Iterator[str]:
        """Every object under a folder, as URIs."""
        if is_s3(prefix_uri):
            bucket, key = split_s3(prefix_uri.rstrip("/") + "/")
            pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield f"s3://{bucket}/{obj['Key']}"
            return
        root = local_path(prefix_uri)
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    yield str(path)

    def delete_file(self, uri: str) -> None:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self._s3().delete_object(Bucket=bucket, Key=key)
            return
        local_path(uri).unlink(missing_ok=True)

    def delete_prefix(self, prefix_uri: str) -> None:
        if is_s3(prefix_uri):
            keys = [{"Key": split_s3(u)[1]} for u in self.list(prefix_uri)]
            # Policy: errors ignored, as before; only staging folders are dropped this way, and a
            # leftover there is never read (each run stages under its own token, glue/job.py).
            for _ in delete_batches(self._s3(), split_s3(prefix_uri)[0], keys):
                pass
            return
        shutil.rmtree(local_path(prefix_uri), ignore_errors=True)

    def replace_folder(self, staged: str, final: str) -> None:
        """Make ``final`` hold exactly what ``staged`` holds, then drop ``staged``.

        Local: two renames (the old folder is moved aside first), so readers see the old or the
        new folder. S3 has no rename: the staged objects are copied over, then objects of an
        earlier run that this run did not write are deleted; a reader listing during those
        seconds can see a mix, never a missing file of the new run.
        """
        if is_s3(final):
            fb, fkey = split_s3(final.rstrip("/") + "/")
            sb, skey = split_s3(staged.rstrip("/") + "/")
            new_keys = set()
            for uri in self.list(staged):
                rel = split_s3(uri)[1][len(skey) :]
                self._s3().copy_object(Bucket=fb, Key=fkey + rel, CopySource={"Bucket": sb, "Key": skey + rel})
                new_keys.add(fkey + rel)
            stale = [{"Key": k} for k in (split_s3(u)[1] for u in self.list(final)) if k not in new_keys]
            # Policy: errors ignored, unchanged. A stale part that failed to go would stay beside
            # the new parts, where readers see it; raising instead is a separate decision.
            for _ in delete_batches(self._s3(), fb, stale):
                pass
            self.delete_prefix(staged)
            return
        src, dst = local_path(staged), local_path(final)
        dst.parent.mkdir(parents=True, exist_ok=True)
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex}")
        if dst.exists():
            os.replace(dst, old)
        if src.exists():
            os.replace(src, dst)
        else:
            dst.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):  # the run's ``_staging`` folder, unless another run stages there
            src.parent.rmdir()
