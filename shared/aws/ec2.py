# SPDX-License-Identifier: GPL-3.0-or-later
"""EC2 calls for the fleet: instances, spot requests, prices, key pairs, security groups.

No bpy module use. Everything Brenda creates carries the tag ``brenda:farm=<name>``, and every
listing here is of one farm's resources only (the original selected by AMI and cancelled every
spot request in the account). Callers wrap calls in ``cloud_errors``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.config import Config
from ..core.errors import CloudError
from .session import cloud_errors, error_code, make_client

FARM_TAG = "brenda:farm"
DRAIN_TAG = "brenda:drain"
"""On a stopped fleet's nodes: finish the task in hand, take no other (see autoscale)."""
ROLE_TAG = "brenda:role"
NODE_ROLE = "node"
LIVE_STATES = ("pending", "running", "stopping", "stopped")
OPEN_REQUEST_STATES = ("open", "active", "disabled")


def connect(config: Config) -> Any:
    with cloud_errors("connecting to EC2"):
        return make_client("ec2", config)


@dataclass(frozen=True)
class Instance:
    id: str
    type: str
    state: str
    launched: datetime
    address: str
    """Public DNS name, else public IP, else private IP."""
    image: str
    spot_request: str | None
    zone: str
    spot: bool
    role: str
    """``node`` for render nodes; helpers (the EBS helper) carry their own role tag."""

    def uptime(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.launched


@dataclass(frozen=True)
class SpotRequest:
    id: str
    state: str
    kind: str
    """one-time or persistent."""
    price: float | None
    instance: str | None
    status: str
    created: datetime


def farm_tags(farm: str, resource: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": [{"Key": FARM_TAG, "Value": farm}]}]


def _farm_filter(farm: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{FARM_TAG}", "Values": [farm]}]


def spot_requests(client: Any, farm: str) -> list[SpotRequest]:
    requests = client.describe_spot_instance_requests(Filters=_farm_filter(farm))
    return [
        SpotRequest(
            id=item["SpotInstanceRequestId"],
            state=item["State"],
            kind=item.get("Type", "one-time"),
            price=float(item["SpotPrice"]) if item.get("SpotPrice") else None,
            instance=item.get("InstanceId"),
            status=str(item.get("Status", {}).get("Code", "")),
            created=item.get("CreateTime", datetime.now(UTC)),
        )
        for item in requests.get("SpotInstanceRequests", [])
    ]


def _instance(item: dict[str, Any], requests: dict[str, str]) -> Instance:
    address = (
        item.get("PublicDnsName") or item.get("PublicIpAddress") or item.get("PrivateIpAddress")
    )
    return Instance(
        id=item["InstanceId"],
        type=item["InstanceType"],
        state=item["State"]["Name"],
        launched=item["LaunchTime"],
        address=str(address or ""),
        image=item.get("ImageId", ""),
        spot_request=item.get("SpotInstanceRequestId") or requests.get(item["InstanceId"]),
        zone=item.get("Placement", {}).get("AvailabilityZone", ""),
        spot=item.get("InstanceLifecycle") == "spot" or item["InstanceId"] in requests,
        role=next(
            (tag["Value"] for tag in item.get("Tags", []) if tag["Key"] == ROLE_TAG), NODE_ROLE
        ),
    )


def _described(client: Any, **filters: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("describe_instances").paginate(**filters):
        for reservation in page.get("Reservations", []):
            yield from reservation.get("Instances", [])


def instances(client: Any, farm: str, *, states: Sequence[str] = LIVE_STATES) -> list[Instance]:
    """The farm's instances: tagged ones, and those its spot requests launched."""
    by_request = {
        request.instance: request.id for request in spot_requests(client, farm) if request.instance
    }
    state_filter = [{"Name": "instance-state-name", "Values": list(states)}]
    found = {
        item["InstanceId"]: item
        for item in _described(client, Filters=_farm_filter(farm) + state_filter)
    }
    missing = [instance for instance in by_request if instance not in found]
    if missing:
        for item in _described(client, InstanceIds=missing):
            if item["State"]["Name"] in states:
                found[item["InstanceId"]] = item
    listed = [_instance(item, by_request) for item in found.values()]
    return sorted(listed, key=lambda instance: (instance.launched, instance.address, instance.id))


def latest_spot_prices(client: Any, instance_type: str) -> dict[str, tuple[float, datetime]]:
    """The most recent spot price per availability zone over the last day."""
    paginator = client.get_paginator("describe_spot_price_history")
    latest: dict[str, tuple[float, datetime]] = {}
    pages = paginator.paginate(
        InstanceTypes=[instance_type],
        ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=datetime.now(UTC) - timedelta(days=1),
    )
    for page in pages:
        for record in page.get("SpotPriceHistory", []):
            zone, stamp = record["AvailabilityZone"], record["Timestamp"]
            if zone not in latest or stamp > latest[zone][1]:
                latest[zone] = (float(record["SpotPrice"]), stamp)
    return dict(sorted(latest.items()))


def find_security_group(client: Any, name: str) -> str | None:
    groups = client.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    found = groups.get("SecurityGroups", [])
    return str(found[0]["GroupId"]) if found else None


def key_pair_exists(client: Any, name: str) -> bool:
    try:
        client.describe_key_pairs(KeyNames=[name])
    except Exception as error:
        if error_code(error) == "InvalidKeyPair.NotFound":
            return False
        raise
    return True


def spot_request_of(client: Any, instance_id: str) -> str | None:
    """The spot request that launched ``instance_id``, if any."""
    for item in _described(client, InstanceIds=[instance_id]):
        if item.get("SpotInstanceRequestId"):
            return str(item["SpotInstanceRequestId"])
    requests = client.describe_spot_instance_requests().get("SpotInstanceRequests", [])
    for request in requests:
        if request.get("InstanceId") == instance_id:
            return str(request["SpotInstanceRequestId"])
    return None


def find_snapshot(client: Any, name_or_id: str) -> str:
    """A snapshot id from an id or the Name tag of one of the account's own snapshots."""
    if name_or_id.startswith("snap-"):
        return name_or_id
    found = client.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:Name", "Values": [name_or_id]}]
    ).get("Snapshots", [])
    if not found:
        raise CloudError(f"No snapshot of this account is named '{name_or_id}'.")
    return str(max(found, key=lambda snapshot: snapshot["StartTime"])["SnapshotId"])
