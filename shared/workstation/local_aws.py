# SPDX-License-Identifier: GPL-3.0-or-later
"""An AWS-compatible endpoint on loopback (moto's server) for the local farm. No bpy module use.

Brenda's code does not know it is not AWS: it reaches the endpoint through the standard
``AWS_ENDPOINT_URL`` variable, with throw-away credentials that are never real ones.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from ..core.errors import BrendaError
from ..core.http import http_session

LOCAL_REGION = "us-east-1"


def local_environment(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3 at ``endpoint`` with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "brenda-local",
        "AWS_SECRET_ACCESS_KEY": "brenda-local",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


def reset_endpoint(endpoint: str) -> None:
    """Empty the local endpoint: no buckets, queues, instances or roles are left."""
    try:
        http_session().post(f"{endpoint}/moto-api/reset", timeout=(5, 30)).raise_for_status()
    except OSError as error:
        raise BrendaError(
            f"The local AWS endpoint at {endpoint} cannot be reset: {error}."
        ) from error


@contextmanager
def local_endpoint(environ: MutableMapping[str, str] | None = None) -> Iterator[str]:
    """Run moto's server on a free loopback port; yields its URL, with ``environ`` pointed at it.

    The endpoint starts empty. The variables that were set before are restored afterwards.
    """
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto: the [local] extra only
    except ImportError as error:
        raise BrendaError(
            "The local AWS endpoint needs moto's server: pip install 'brenda[local]'."
        ) from error
    environ = os.environ if environ is None else environ
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its state per process: an endpoint started earlier in this process left its
    # buckets and queues behind. Each endpoint starts empty.
    try:
        reset_endpoint(endpoint)
    except BrendaError:
        server.stop()
        raise
    settings = local_environment(endpoint)
    saved = {name: environ.get(name) for name in settings}
    environ.update(settings)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        server.stop()
