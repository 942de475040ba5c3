"""Lazy, injectable boto3 clients shared by every handler.

Clients are created on first use (not at import, so importing ``app`` needs no credentials) and
cached per service. Tests and the local runtime inject their own with ``clients.set(...)`` or
drop the cache with ``clients.clear()``, so nothing needs ``importlib.reload``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, also for
# TransactWriteItems conflicts. Adaptive mode would add client-side rate limiting we do not need.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=20)


class ClientRegistry:
    """One boto3 client per service name, created lazily and thread-safely from one session."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self._lock = threading.Lock()
        # Where clients get region, endpoint and credentials. The local runtime swaps in a session
        # whose credentials are those of the function acting in the calling context.
        self._session_factory: Callable[[], Any] = boto3.session.Session

    @property
    def session_factory(self) -> Callable[[], Any]:
        return self._session_factory

    @session_factory.setter
    def session_factory(self, factory: Callable[[], Any]) -> None:
        with self._lock:
            self._session_factory = factory
            self._session = None

    def get(self, service: str) -> Any:
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                # One session for every service: it reads each service model once (a session per
                # client would parse them again, 0.1-0.4 s each, at every cold start). Client
                # creation is not thread-safe on a shared session: it happens under the lock.
                # boto3 reads region, credentials and AWS_ENDPOINT_URL from the environment.
                if self._session is None:
                    self._session = self._session_factory()
                found = self._clients[service] = self._session.client(service, config=_CONFIG)
            return found

    def set(self, service: str, client: Any) -> None:
        with self._lock:
            self._clients[service] = client

    def clear(self) -> None:
        """Drop every client and the session: the next ones read the environment again."""
        with self._lock:
            self._clients.clear()
            self._session = None


clients = ClientRegistry()


def client(service: str) -> Any:
    """The process-wide client for ``service`` (``dynamodb``, ``s3``, ``sqs``, ``events``, ...)."""
    return clients.get(service)
