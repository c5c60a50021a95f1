# SPDX-License-Identifier: GPL-3.0-or-later
"""EC2 instance metadata: spot interruption and rebalance notices, and what the node runs on
(for its costs). No bpy module use.

Uses IMDSv2 (a session token, then ``spot/instance-action`` and
``events/recommendations/rebalance``; 404 means no notice). When a notice appears the node stops
at once and gives its tasks back, well inside the two minutes a spot interruption allows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shared.core.http import http_session
from shared.jobs.costs import Machine

log = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_SECONDS = 21600
NOTICES = {
    "/latest/meta-data/spot/instance-action": "a spot interruption notice",
    "/latest/meta-data/events/recommendations/rebalance": "a spot rebalance recommendation",
}
LIFECYCLE_PATH = "/latest/meta-data/autoscaling/target-lifecycle-state"
"""Where a node of an Auto Scaling group reads ``Terminated`` once the group is removing it
(its termination lifecycle hook holds the instance while the node finishes its task)."""
REQUEST_TIMEOUT = (1.0, 2.0)
"""Connect and read timeouts: the metadata service answers at once or not at all."""


class MetadataClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._http = http_session(retries=2, backoff=0.1)

    def token(self) -> str:
        if self._token is None:
            response = self._http.put(
                self.base_url + TOKEN_PATH,
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
                timeout=REQUEST_TIMEOUT,
            )
            response.raise_for_status()
            self._token = response.text
        return self._token

    def get(self, path: str) -> str | None:
        """The metadata at ``path``, or None where there is none (404)."""
        response = self._http.get(
            self.base_url + path,
            headers={"X-aws-ec2-metadata-token": self.token()},
            timeout=REQUEST_TIMEOUT,
        )
        if response.status_code == 401:
            self._token = None
        if response.status_code in (401, 404):
            return None
        response.raise_for_status()
        return response.text


GROUP_TERMINATES = "its Auto Scaling group is terminating it"
DRAIN_PATH = "/latest/meta-data/tags/instance/brenda:drain"
"""The tag ``autoscale.stop_fleet`` puts on a stopped fleet's nodes (EC2 updates the instance's
metadata tags while it runs)."""


def watch_for_interruption(
    client: MetadataClient,
    period: float,
    stop: threading.Event,
    on_notice: Callable[[str], None],
    on_drain: Callable[[str], None] | None = None,
) -> threading.Thread:
    """Poll the metadata every ``period`` seconds until ``stop``; report the first notice (the
    node stops at once), and the drain tag and the group's termination once each (``on_drain``:
    the node finishes its task first)."""

    def poll() -> None:
        complained = False
        drain, terminating = on_drain, on_drain  # None once reported
        while not stop.is_set():
            try:
                if drain is not None:
                    reason = client.get(DRAIN_PATH)
                    if reason is not None:
                        drain(reason.strip())
                        drain = None
                for path, notice in NOTICES.items():
                    detail = client.get(path)
                    if detail is not None:
                        on_notice(f"{notice} ({detail.strip()})")
                        return
                if (
                    terminating is not None
                    and (client.get(LIFECYCLE_PATH) or "").strip() == "Terminated"
                ):
                    terminating(GROUP_TERMINATES)
                    terminating = None
            except OSError as error:
                if not complained:
                    log.warning("cannot read instance metadata at %s: %s", client.base_url, error)
                    complained = True
            stop.wait(period)

    thread = threading.Thread(target=poll, name="brenda-spot-watch", daemon=True)
    thread.start()
    return thread


def machine_from_metadata(client: MetadataClient) -> Machine:
    """The instance's type, zone and market (``instance-life-cycle``: spot or on-demand)."""
    try:
        instance_type = client.get("/latest/meta-data/instance-type")
        zone = client.get("/latest/meta-data/placement/availability-zone")
        life_cycle = client.get("/latest/meta-data/instance-life-cycle")
    except OSError as error:
        log.warning("costs: cannot read instance metadata at %s: %s", client.base_url, error)
        return Machine("unknown")
    market = "spot" if (life_cycle or "").strip() == "spot" else "on-demand"
    return Machine(market, (instance_type or "").strip(), (zone or "").strip())
