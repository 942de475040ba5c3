"""Coverage traces the project, not moto's request handling.

moto's in-process server handles each request on a thread of its own (werkzeug closes every
connection), and coverage traces every thread: under ``make test`` it follows each call inside
moto's DynamoDB, S3, SQS, IAM and CloudFormation code, which is none of the project's, and that
made a fault-injection scenario about 60 % slower than without coverage. This module stops
tracing a request's thread when the request is for a service whose handling never runs project
code. The services that do (the local task host serves the state machine's Lambda functions,
the rule's StartExecution and the Glue job from inside moto: ``ndjson_parquet/local/
stepfunctions.py``) stay traced, and so does every request that is not SigV4-signed (the
service is unknown). The threads that moto starts from a request (a state machine's execution)
are traced as usual. So the report covers the same lines; only the cost changes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Services whose requests can run the project's code inside moto (the local task host).
RUN_PROJECT_CODE = frozenset({"lambda", "events", "states", "glue"})


def signed_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4 ``Authorization`` header names (``Credential=KEY/date/region/service/
    aws4_request``), or None."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    _, found, credential = header.partition("Credential=")
    parts = credential.split(",", 1)[0].split("/")
    return parts[3] if found and len(parts) == 5 else None


def wants_tracing(environ: dict[str, Any]) -> bool:
    service = signed_service(environ)
    return service is None or service in RUN_PROJECT_CODE


@contextmanager
def untraced_moto_requests() -> Iterator[None]:
    """Within the block, a moto request for a service outside ``RUN_PROJECT_CODE`` runs untraced
    (only its own thread: werkzeug's request threads end with their request)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original: Callable[..., Any] = DomainDispatcherApplication.__call__

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if not wants_tracing(environ):
            sys.settrace(None)
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__  # type: ignore[method-assign]
    try:
        yield
    finally:
        DomainDispatcherApplication.__call__ = original  # type: ignore[method-assign]
