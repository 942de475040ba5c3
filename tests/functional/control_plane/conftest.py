"""Fixtures: the control plane's resources in a clean moto account, env from the test stage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from chalicelib.aws import clients as aws_clients
from chalicelib.batching import Deps
from chalicelib.settings import Settings, get_settings
from tests.conftest import REGION
from tests.functional.control_plane.resources import ControlPlaneResources, create_control_plane, stage_environment


@dataclass
class ControlPlane:
    res: ControlPlaneResources
    env: dict[str, str]
    clients: dict[str, Any]

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env({**self.env, **overrides})

    def deps(self, **overrides: str) -> Deps:
        return Deps.build(settings=self.settings(**overrides))


@pytest.fixture
def cp(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlPlane]:
    env = stage_environment("test")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = {
        s: boto3.client(s, region_name=REGION, endpoint_url=aws)
        for s in ("dynamodb", "dynamodbstreams", "s3", "sqs", "events")
    }
    aws_registry_reset()
    res = create_control_plane(clients, env)
    yield ControlPlane(res=res, env=env, clients=clients)
    aws_registry_reset()


def aws_registry_reset() -> None:
    aws_clients.clear()
    get_settings.cache_clear()
