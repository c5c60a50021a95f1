# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain HTTP (instance metadata, the caller's address) through requests. No bpy module use.

Every request has explicit connect and read timeouts and retries connection errors and server
errors with exponential backoff; requests' errors are ``OSError`` subclasses, so callers catch
``OSError``.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRIED_STATUSES = (429, 500, 502, 503, 504)


def http_session(*, retries: int = 3, backoff: float = 0.3) -> requests.Session:
    """A session that retries each request ``retries`` times (any method: these are idempotent)."""
    retry = Retry(
        total=retries,
        backoff_factor=backoff,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=None,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
