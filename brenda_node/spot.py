# SPDX-License-Identifier: GPL-3.0-or-later
"""Watch EC2 instance metadata for spot interruption and rebalance notices. No bpy module use.

Uses IMDSv2 (a session token, then ``spot/instance-action`` and
``events/recommendations/rebalance``; 404 means no notice). When a notice appears the node stops
at once and gives its tasks back, well inside the two minutes a spot interruption allows.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_SECONDS = 21600
NOTICES = {
    "/latest/meta-data/spot/instance-action": "a spot interruption notice",
    "/latest/meta-data/events/recommendations/rebalance": "a spot rebalance recommendation",
}
REQUEST_TIMEOUT = 2.0


class MetadataClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None

    def _request(self, request: urllib.request.Request) -> str:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return str(response.read().decode("utf-8", "replace"))

    def token(self) -> str:
        if self._token is None:
            request = urllib.request.Request(
                self.base_url + TOKEN_PATH,
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            )
            self._token = self._request(request)
        return self._token

    def get(self, path: str) -> str | None:
        """The metadata at ``path``, or None where there is none (404)."""
        request = urllib.request.Request(
            self.base_url + path, headers={"X-aws-ec2-metadata-token": self.token()}
        )
        try:
            return self._request(request)
        except urllib.error.HTTPError as error:
            if error.code == 401:
                self._token = None
            if error.code in (401, 404):
                return None
            raise


def watch_for_interruption(
    base_url: str, period: float, stop: threading.Event, on_notice: Callable[[str], None]
) -> threading.Thread:
    """Poll the metadata every ``period`` seconds until ``stop``; report the first notice."""
    client = MetadataClient(base_url)

    def poll() -> None:
        complained = False
        while not stop.is_set():
            try:
                for path, notice in NOTICES.items():
                    detail = client.get(path)
                    if detail is not None:
                        on_notice(f"{notice} ({detail.strip()})")
                        return
            except (OSError, urllib.error.URLError) as error:
                if not complained:
                    log.warning("cannot read instance metadata at %s: %s", base_url, error)
                    complained = True
            stop.wait(period)

    thread = threading.Thread(target=poll, name="brenda-spot-watch", daemon=True)
    thread.start()
    return thread
