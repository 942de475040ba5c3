"""One service-model loader for every local session, and one session per handler client registry."""

from __future__ import annotations

from typing import Any

import boto3

from chalicelib.aws import ClientRegistry
from ndjson_parquet.sessions import new_session, reset_default_session, shared_loader


def test_new_sessions_share_one_loader_and_its_search_path_does_not_grow() -> None:
    first, second = new_session(region_name="us-east-1"), new_session(region_name="us-east-1")
    # two sessions (each reads credentials anew), one loader (models parsed once)
    assert first is not second and first._session is not second._session
    assert first._session.get_component("data_loader") is shared_loader()
    assert second._session.get_component("data_loader") is shared_loader()
    before = list(shared_loader().search_paths)
    for _ in range(5):
        new_session()
    assert shared_loader().search_paths == before  # boto3 appends its data folder per session
    assert len(before) == len(set(before))


def test_reset_default_session_gives_boto3_a_new_session_on_the_shared_loader() -> None:
    old = boto3.DEFAULT_SESSION
    try:
        reset_default_session()
        made = boto3.DEFAULT_SESSION
        assert made is not None and made is not old
        assert made._session.get_component("data_loader") is shared_loader()
    finally:
        boto3.DEFAULT_SESSION = old


class _CountingFactory:
    def __init__(self) -> None:
        self.sessions: list[Any] = []

    def __call__(self) -> Any:
        session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
        self.sessions.append(session)
        return session


def test_registry_makes_every_client_from_one_session_until_cleared() -> None:
    registry, factory = ClientRegistry(), _CountingFactory()
    registry.session_factory = factory
    s3, sqs = registry.get("s3"), registry.get("sqs")
    assert registry.get("s3") is s3  # cached per service
    assert len(factory.sessions) == 1  # one session for both services
    registry.clear()  # the next clients read the environment again: a new session
    assert registry.get("s3") is not s3 and len(factory.sessions) == 2
    other = _CountingFactory()
    registry.session_factory = other  # a new factory drops the old factory's session
    registry.get("dynamodb")
    assert (len(factory.sessions), len(other.sessions)) == (2, 1)
    assert sqs.meta.service_model.service_name == "sqs"
