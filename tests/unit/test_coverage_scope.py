"""tests/coverage_scope.py: which moto requests run untraced under coverage."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.coverage_scope import RUN_PROJECT_CODE, signed_service, untraced_moto_requests, wants_tracing


def _environ(service: str) -> dict[str, Any]:
    """The WSGI environ of a request botocore signed for ``service``."""
    request = AWSRequest(method="POST", url="http://127.0.0.1:5000/", data=b"{}")
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), service, "us-east-1").add_auth(request)
    return {"HTTP_AUTHORIZATION": request.headers["Authorization"]}


@pytest.mark.parametrize("service", ["dynamodb", "s3", "sqs", "iam", "cloudformation", "lambda", "states"])
def test_the_service_is_read_from_a_signed_request(service: str) -> None:
    assert signed_service(_environ(service)) == service


def test_only_services_that_never_run_project_code_go_untraced() -> None:
    assert not wants_tracing(_environ("dynamodb"))
    assert not wants_tracing(_environ("s3"))
    assert all(wants_tracing(_environ(s)) for s in RUN_PROJECT_CODE)
    # unsigned or unreadable: the service is unknown, so the request stays traced
    assert wants_tracing({})
    assert wants_tracing({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=KEY/20260101/us-east-1"})


def test_inside_the_block_a_dynamodb_request_runs_untraced_and_a_lambda_one_traced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    # GIVEN moto's entry point replaced by one that records the thread's tracer
    seen: list[Any] = []
    monkeypatch.setattr(DomainDispatcherApplication, "__call__", lambda self, env, start: seen.append(sys.gettrace()))

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return None

    def request(environ: dict[str, Any]) -> None:
        sys.settrace(tracer)  # what coverage does on every new thread
        DomainDispatcherApplication.__call__(None, environ, None)  # type: ignore[arg-type]

    def on_a_thread(environ: dict[str, Any]) -> None:
        thread = threading.Thread(target=request, args=(environ,))
        thread.start()
        thread.join()

    # WHEN requests arrive inside the block, then one after it
    with untraced_moto_requests():
        on_a_thread(_environ("dynamodb"))
        on_a_thread(_environ("lambda"))
        on_a_thread({})
    on_a_thread(_environ("dynamodb"))
    # THEN only the DynamoDB request inside the block lost its tracer
    assert seen == [None, tracer, tracer, tracer]
