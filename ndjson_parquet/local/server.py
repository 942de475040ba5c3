"""Start moto's server in this process on 127.0.0.1 and point boto3 at it.

In-process on purpose: moto's Step Functions interpreter calls Lambda and Glue through moto's
own backends, which therefore live in this process where the runtime can serve them.

With ``enforce_iam`` every request after the set-up must be signed by an IAM user whose policy
allows it (``ndjson_parquet.local.iam``); the environment then holds the administrator's keys.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from moto.server import ThreadedMotoServer

from ndjson_parquet.local.iam import Caller, disable_enforcement, enable_enforcement
from ndjson_parquet.sessions import new_session, reset_default_session

LOCAL_REGION = "us-east-1"


class PortInUseError(RuntimeError):
    """The requested port is taken by another process."""


@dataclass(frozen=True)
class LocalEndpoint:
    url: str
    host: str
    port: int
    enforce_iam: bool = False


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use; pick another with --port or use 0"
                ) from None
            raise


def local_aws_environment(url: str) -> dict[str, str]:
    """Environment that sends every boto3 client of this process (and children) to moto."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        # Empty, not absent: a profile's token must not leak in, and moto refuses a token sent
        # with an IAM user's key (botocore sends none when it is empty).
        "AWS_SESSION_TOKEN": "",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


def prepare_account(url: str, execute_state_machines: bool = True, enforce_iam: bool = False) -> Caller | None:
    """Start from an empty account: moto's backends are process-global. With ``enforce_iam``,
    enforcement is on afterwards and the administrator's keys are in the environment."""
    disable_enforcement(url)  # the reset below wipes the administrator: set up again without checks
    requests.post(f"{url}/moto-api/reset", timeout=30).raise_for_status()
    if execute_state_machines:
        # moto executes ASL only when asked; the server takes the switch at /moto-api/config.
        resp = requests.post(
            f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=30
        )
        resp.raise_for_status()
    if not enforce_iam:
        return None
    iam = new_session().client("iam", endpoint_url=url, region_name=LOCAL_REGION)
    admin = enable_enforcement(url, iam)
    os.environ.update({"AWS_ACCESS_KEY_ID": admin.access_key, "AWS_SECRET_ACCESS_KEY": admin.secret_key})
    reset_default_session()  # boto3 keeps the credentials it found first: let boto3.client() see these
    return admin


@contextmanager
def moto_server(
    port: int = 0, host: str = "127.0.0.1", execute_state_machines: bool = True, enforce_iam: bool = False
) -> Iterator[LocalEndpoint]:
    """Run moto on ``host:port`` (0 = a free port) for the duration of the block, with the
    process environment pointed at it; the previous environment is restored afterwards."""
    _check_port_free(host, port)
    # werkzeug logs one line per request; a run makes thousands and they bury the progress bar.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    url = f"http://{bound_host}:{bound_port}"
    saved = {k: os.environ.get(k) for k in local_aws_environment(url)}
    # the administrator's keys go here too (prepare_account); restored like the rest
    saved["AWS_PROFILE"] = os.environ.pop("AWS_PROFILE", None)
    os.environ.update(local_aws_environment(url))
    try:
        prepare_account(url, execute_state_machines, enforce_iam)
        yield LocalEndpoint(url=url, host=bound_host, port=bound_port, enforce_iam=enforce_iam)
    finally:
        # moto's settings are process-wide: leave no enforcement behind for other moto users.
        disable_enforcement(url)
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_default_session()
