# SPDX-License-Identifier: GPL-3.0-or-later
"""The account's spot vCPU quotas, read before launching, so that a launch over them is shrunk
or refused in one sentence instead of failing later with ``MaxSpotInstanceCountExceeded``.
No bpy module use.

Spot quotas are counted in vCPUs per family group and region: the vCPUs of running and pending
spot instances plus those of open spot requests. The quota comes from Service Quotas (the value
applied to the account); where it cannot be read (no permission, a region without Service
Quotas), the launch goes on with a note saying why, since EC2 itself still enforces it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..aws import ec2
from ..aws.session import cloud_errors, make_client
from ..core.config import Config
from ..core.errors import BrendaError, CloudError


@dataclass(frozen=True)
class SpotQuota:
    code: str
    name: str
    families: re.Pattern[str]
    """Instance families (the part of the type before its generation digit) it counts."""


SPOT_QUOTAS = (
    SpotQuota(
        "L-34B43A08",
        "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
        re.compile(r"[acdhimrtz]"),
    ),
    SpotQuota("L-3819A6DF", "All G and VT Spot Instance Requests", re.compile(r"g|vt")),
)


def family(instance_type: str) -> str:
    """``c7i.2xlarge`` → ``c``, ``vt1.3xlarge`` → ``vt``, ``inf2.xlarge`` → ``inf``."""
    found = re.match(r"[a-z]+", instance_type.lower())
    return found.group(0) if found else ""


def quota_of(instance_type: str) -> SpotQuota | None:
    name = family(instance_type)
    return next((quota for quota in SPOT_QUOTAS if quota.families.fullmatch(name)), None)


@dataclass(frozen=True)
class QuotaFit:
    """How many spot nodes the quotas leave room for, and what to tell the user about it."""

    nodes: int
    notes: tuple[str, ...] = ()


def _vcpus(client: Any, types: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    paginator = client.get_paginator("describe_instance_types")
    for page in paginator.paginate(InstanceTypes=sorted(set(types))):
        for item in page["InstanceTypes"]:
            found[item["InstanceType"]] = int(item["VCpuInfo"]["DefaultVCpus"])
    return found


def _quota_value(config: Config, quota: SpotQuota) -> float | str:
    """The quota applied to the account, or why it cannot be read."""
    try:
        with cloud_errors(f"reading the spot quota {quota.code}"):
            client = make_client("service-quotas", config)
            found = client.get_service_quota(ServiceCode="ec2", QuotaCode=quota.code)
    except CloudError as error:
        return str(error)
    return float(found["Quota"]["Value"])


def _spot_vcpus_in_use(client: Any, quota: SpotQuota) -> int:
    """vCPUs of the account's spot instances running or starting, and of open spot requests,
    of the families the quota counts."""
    types: list[str] = []
    pages = client.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            types += [
                item["InstanceType"]
                for item in reservation["Instances"]
                if item.get("InstanceLifecycle") == "spot"
            ]
    requests = client.describe_spot_instance_requests(
        Filters=[{"Name": "state", "Values": ["open"]}]
    )["SpotInstanceRequests"]
    types += [request["LaunchSpecification"]["InstanceType"] for request in requests]
    counted = [name for name in types if quota_of(name) == quota]
    sizes = _vcpus(client, counted) if counted else {}
    return sum(sizes.get(name, 0) for name in counted)


def _raise_command(quota: SpotQuota, vcpus: float) -> str:
    return (
        "raise it in the Service Quotas console (Amazon EC2) or with 'aws service-quotas "
        f"request-service-quota-increase --service-code ec2 --quota-code {quota.code} "
        f"--desired-value {math.ceil(vcpus)}'"
    )


def fit_spot_quota(config: Config, types: Sequence[str], wanted: int) -> QuotaFit:
    """Room for up to ``wanted`` spot nodes of ``types`` (each counted at the largest type's
    vCPUs, since the group may start any of them). Raises when not one node fits."""

    client = ec2.connect(config)
    with cloud_errors("reading the vCPUs of the instance types"):
        sizes = _vcpus(client, types)
    region = client.meta.region_name
    room = 0
    notes: list[str] = []
    shortfalls: list[str] = []
    checked = False
    for quota in SPOT_QUOTAS:
        counted = [name for name in types if quota_of(name) == quota]
        if not counted:
            continue
        limit = _quota_value(config, quota)
        if isinstance(limit, str):
            return QuotaFit(wanted, (f"{limit.rstrip('.')}: EC2 still applies the quota.",))
        checked = True
        with cloud_errors("counting the spot vCPUs in use"):
            used = _spot_vcpus_in_use(client, quota)
        largest = max(sizes.get(name, 0) for name in counted) or 1
        fits = max(0, int((limit - used) // largest))
        room += fits
        need = used + wanted * largest
        where = (
            f"Your spot quota '{quota.name}' ({quota.code}) is {limit:g} vCPUs in {region}, "
            f"{used} of them in use"
        )
        if fits == 0:
            shortfalls.append(
                f"{where}: not one {largest}-vCPU node fits; {_raise_command(quota, need)}."
            )
        elif fits < wanted:
            notes.append(
                f"{where}: room for {fits} of the {wanted} nodes of {largest} vCPUs; "
                f"{_raise_command(quota, need)}."
            )
    if not checked:
        return QuotaFit(wanted)
    if room == 0:
        raise BrendaError(" ".join(shortfalls))
    return QuotaFit(min(room, wanted), tuple(shortfalls + notes))
