"""Start moto's server in this process on 127.0.0.1 and point boto3 at it.

In-process on purpose: moto's Step Functions interpreter calls Lambda and Glue through moto's
own backends, which therefore live in this process where the runtime can serve them.
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

LOCAL_REGION = "us-east-1"


class PortInUseError(RuntimeError):
    """The requested port is taken by another process."""


@dataclass(frozen=True)
class LocalEndpoint:
    url: str
    host: str
    port: int


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
        "AWS_SESSION_TOKEN": "local",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


@contextmanager
def moto_server(port: int = 0, host: str = "127.0.0.1", execute_state_machines: bool = True) -> Iterator[LocalEndpoint]:
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
    saved["AWS_PROFILE"] = os.environ.pop("AWS_PROFILE", None)
    os.environ.update(local_aws_environment(url))
    try:
        # moto's backends are process-global: start every run from an empty account.
        requests.post(f"{url}/moto-api/reset", timeout=30).raise_for_status()
        if execute_state_machines:
            # moto executes ASL only when asked; the server takes the switch at /moto-api/config.
            resp = requests.post(
                f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=30
            )
            resp.raise_for_status()
        yield LocalEndpoint(url=url, host=bound_host, port=bound_port)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
