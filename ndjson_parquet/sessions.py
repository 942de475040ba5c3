"""New boto3 sessions that share one service-model loader.

The local runtime and the tests make a new session whenever credentials change (every run's
administrator, every acting role, every deploy), so that it signs with the keys of the moment.
A new session also gets a new loader, which reads and parses every service model again from
disk: 0.1 to 0.4 s per client, seconds per run. The loader holds only the models, never
credentials, so one loader serves every session.
"""

from __future__ import annotations

from functools import lru_cache

import boto3
import botocore.loaders
import botocore.session


@lru_cache(maxsize=1)
def shared_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def new_botocore_session() -> botocore.session.Session:
    """A botocore session with the shared loader; region and credentials are read from the
    environment when its first client is made, as usual."""
    core = botocore.session.Session()
    core.register_component("data_loader", shared_loader())
    return core


def new_session(core: botocore.session.Session | None = None, **kwargs: str) -> boto3.session.Session:
    session = boto3.session.Session(botocore_session=core or new_botocore_session(), **kwargs)
    # boto3 appends its own data folder to the loader's search path for every session it makes;
    # on a shared loader that list would grow by one entry per session.
    paths = shared_loader().search_paths
    paths[:] = list(dict.fromkeys(paths))
    return session


def reset_default_session() -> None:
    """Make boto3.client() read the environment again (new credentials, a new endpoint): boto3
    keeps the credentials its default session found first."""
    boto3.DEFAULT_SESSION = new_session()
