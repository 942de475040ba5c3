"""Who is calling AWS, per thread of work: the local runtime's stand-in for Lambda execution roles.

In AWS each function runs with its own role. Locally all handlers share one process and one set
of boto3 clients (``chalicelib.aws.clients``), so the clients sign each request with the
credentials of the caller acting in the current context (``acting_as``), resolved when the
request is signed. A request made where no caller acts is refused before it is sent: nothing
falls back to the administrator's keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import boto3
from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

from ndjson_parquet.local.iam import Caller
from ndjson_parquet.sessions import new_botocore_session, new_session

_acting: ContextVar[Caller | None] = ContextVar("ndjson_parquet_acting_caller", default=None)


class NoCallerError(RuntimeError):
    """An AWS call of a handler was made outside ``acting_as``: no role to sign it with."""


@contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    token = _acting.set(caller)
    try:
        yield
    finally:
        _acting.reset(token)


def current() -> Caller | None:
    return _acting.get()


class ActingCredentials(Credentials):
    """Credentials whose keys are those of the caller acting when a request is signed."""

    def __init__(self) -> None:
        super().__init__("acting", "acting")

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        caller = _acting.get()
        if caller is None:
            raise NoCallerError("an AWS call was made outside acting_as(caller): no role to sign it with")
        # No session token: moto refuses a token with an IAM user's key.
        return ReadOnlyCredentials(caller.access_key, caller.secret_key, None)


class _ActingProvider(CredentialProvider):
    METHOD = "ndjson-parquet-acting"

    def load(self) -> Credentials:
        return ActingCredentials()


def acting_session() -> boto3.session.Session:
    """A boto3 session (region and endpoint from the environment, as usual) whose clients sign
    with the acting caller's keys."""
    core = new_botocore_session()
    core.get_component("credential_provider").insert_before("env", _ActingProvider())
    return new_session(core)
