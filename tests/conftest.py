"""Shared fixtures: one in-process moto server per test session (real HTTP, real botocore),
reset between tests, and environment that points every boto3 client at it."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session", autouse=True)
def _shared_model_loader() -> Iterator[None]:
    """The handlers' clients come from sessions sharing one service-model loader: tests drop the
    clients between tests, and a new loader would parse every model again (0.1-0.4 s a client)."""
    from chalicelib import aws
    from ndjson_parquet.sessions import new_session

    saved = aws.clients.session_factory
    aws.clients.session_factory = new_session
    yield
    aws.clients.session_factory = saved


@pytest.fixture(scope="session", autouse=True)
def _coverage_skips_moto_internals() -> Iterator[None]:
    """Under coverage (make test), moto's handling of requests that never run project code goes
    untraced: the same lines are covered at a fraction of the cost (tests/coverage_scope.py)."""
    import coverage

    if coverage.Coverage.current() is None:
        yield
        return
    from tests.coverage_scope import untraced_moto_requests

    with untraced_moto_requests():
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 and a free port; nothing else listens."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto account for one test; boto3 clients created inside it reach moto."""
    from moto import settings as moto_settings

    # moto's IAM switch is process-wide: an enforcing server left running by another fixture
    # (ndjson_parquet/local/iam.py) would refuse this test's unsigned calls with 403s that
    # name nothing useful, so fail here and name the cause instead.
    assert math.isinf(moto_settings.INITIAL_NO_AUTH_ACTION_COUNT), (
        "an IAM-enforcing moto server from another fixture is still alive; scope that fixture "
        "so it is torn down before tests that use the unenforced `aws` fixture"
    )
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=30)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_endpoint
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=30)


@pytest.fixture
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB evaluates a ConditionExpression and applies the write atomically; moto's
    in-process backend checks then writes with no lock, so two threads can both "win" the same
    conditional put under load. Serialise moto's item writes so race tests exercise our
    election logic against the guarantee DynamoDB gives, not against a moto artefact."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def client(service: str, endpoint: str | None = None):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint or os.environ["AWS_ENDPOINT_URL"])


# Hypothesis: few examples by default (make test stays fast); HYPOTHESIS_PROFILE=fuzz (make fuzz) runs many.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("default", max_examples=15, deadline=None)
_hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
