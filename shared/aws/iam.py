# SPDX-License-Identifier: GPL-3.0-or-later
"""The nodes' IAM role and instance profile: least privilege, no keys. No bpy module use.

A node may take, renew and delete tasks on its farm's queue (and read its dead-letter queue's
attributes), read the farm's projects, write and read the farm's outputs, cancel its own farm's
spot requests and, where the farm uses EBS snapshots, make volumes tagged with the farm, attach
them to itself and delete them. Nothing else.

The grants are the farm's, not one job's: every project under the farm's project prefix and
every output under its output prefix, so a second .blend on the same farm needs no new policy.
``brenda-run init`` only ever adds to what the role grants (nodes already running keep what they
use); to narrow it, delete the role first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.urls import S3Url, parse_url
from .ec2 import DRAIN_TAG, FARM_TAG
from .session import error_code

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
POLICY_NAME = "brenda-node"
VOLUMES = "arn:aws:ec2:*:*:volume/*"
SNAPSHOTS = "arn:aws:ec2:*::snapshot/*"
INSTANCES = "arn:aws:ec2:*:*:instance/*"


def role_name(farm: str) -> str:
    return f"brenda-node-{farm}"


def _objects_arn(url: S3Url) -> str:
    return f"arn:aws:s3:::{url.bucket}/{url.prefix}*"


def _url_of_objects_arn(arn: str) -> S3Url | None:
    if not arn.startswith("arn:aws:s3:::") or not arn.endswith("*"):
        return None
    url = parse_url("s3://" + arn.removeprefix("arn:aws:s3:::").removesuffix("*"), allowed=("s3",))
    return url if isinstance(url, S3Url) else None


@dataclass(frozen=True)
class FarmGrants:
    """What a farm's nodes may reach beyond their queue: S3 prefixes and EBS volumes."""

    projects: tuple[S3Url, ...] = ()
    outputs: tuple[S3Url, ...] = ()
    volumes: bool = False
    releases: tuple[S3Url, ...] = ()
    """The farm's Blender releases, which a node lists to find the newest of a version."""

    def merged(self, other: FarmGrants) -> FarmGrants:
        return FarmGrants(
            projects=_union(self.projects, other.projects),
            outputs=_union(self.outputs, other.outputs),
            volumes=self.volumes or other.volumes,
            releases=_union(self.releases, other.releases),
        )

    def lines(self) -> list[str]:
        """What the grants allow, one sentence each, for ``brenda-run init`` to print."""
        lines = [f"read projects under {url}" for url in self.projects]
        lines += [f"store and read frames under {url}" for url in self.outputs]
        lines += [f"list and read Blender releases under {url}" for url in self.releases]
        if self.volumes:
            lines.append(
                "make volumes from snapshots tagged with the farm, attach them to itself only, "
                "and delete them"
            )
        return lines


def _union(first: tuple[S3Url, ...], second: tuple[S3Url, ...]) -> tuple[S3Url, ...]:
    return tuple(sorted(set(first) | set(second), key=str))


def grants_of(policy: dict[str, Any]) -> FarmGrants:
    """The grants a node policy written by ``node_policy`` holds."""

    def urls(sid: str) -> tuple[S3Url, ...]:
        found: list[S3Url] = []
        for statement in policy.get("Statement", []):
            if statement.get("Sid") != sid:
                continue
            resources = statement.get("Resource", [])
            for arn in [resources] if isinstance(resources, str) else resources:
                url = _url_of_objects_arn(str(arn))
                if url is not None:
                    found.append(url)
        return tuple(found)

    sids = {statement.get("Sid") for statement in policy.get("Statement", [])}
    return FarmGrants(
        projects=urls("Projects"),
        outputs=urls("Outputs"),
        volumes="OwnInstance" in sids,
        releases=urls("Releases"),
    )


def node_policy(*, farm: str, queue_arns: list[str], grants: FarmGrants) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WorkQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            ],
            "Resource": queue_arns,
        },
        {
            "Sid": "OwnSpotRequests",
            "Effect": "Allow",
            "Action": ["ec2:CancelSpotInstanceRequests"],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{FARM_TAG}": farm}},
        },
        {
            "Sid": "OwnScaleInProtection",
            "Effect": "Allow",
            "Action": [
                "autoscaling:SetInstanceProtection",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:CompleteLifecycleAction",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{FARM_TAG}": farm}},
        },
        {
            # At its budget a node drains its fleet: the drain tag alone, on the farm's nodes.
            "Sid": "DrainFarmNodes",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": INSTANCES,
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{FARM_TAG}": farm},
                "ForAllValues:StringEquals": {"aws:TagKeys": [DRAIN_TAG]},
            },
        },
        {
            "Sid": "DescribeSelf",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeInstances",
                "ec2:DescribeSpotInstanceRequests",
                "ec2:DescribeSpotPriceHistory",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeAutoScalingGroups",
            ],
            "Resource": "*",
        },
    ]
    if grants.projects:
        statements.append(_objects("Projects", ["s3:GetObject"], grants.projects))
    if grants.outputs:
        actions = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
        statements.append(_objects("Outputs", actions, grants.outputs))
        statements += _listing("ListOutputs", grants.outputs)
    if grants.releases:
        statements.append(_objects("Releases", ["s3:GetObject"], grants.releases))
        statements += _listing("ListReleases", grants.releases)
    if grants.volumes:
        statements += _volume_statements(farm)
    return {"Version": "2012-10-17", "Statement": statements}


def _objects(sid: str, actions: list[str], urls: tuple[S3Url, ...]) -> dict[str, Any]:
    """``actions`` on the objects under each of ``urls``."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": [_objects_arn(url) for url in urls],
    }


def _listing(sid: str, urls: tuple[S3Url, ...]) -> list[dict[str, Any]]:
    """ListBucket on each bucket of ``urls``, for their prefixes only."""
    statements = []
    for index, bucket in enumerate(sorted({url.bucket for url in urls})):
        prefixes = [f"{url.prefix}*" for url in urls if url.bucket == bucket]
        statements.append(
            {
                "Sid": f"{sid}{index}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": prefixes}},
            }
        )
    return statements


def _volume_statements(farm: str) -> list[dict[str, Any]]:
    """Volumes from snapshots (brenda_node/ebs.py): the farm's own volumes, on the node itself."""
    farm_volume = {"StringEquals": {f"aws:ResourceTag/{FARM_TAG}": farm}}
    return [
        {
            "Sid": "DescribeVolumes",
            "Effect": "Allow",
            "Action": ["ec2:DescribeVolumes", "ec2:DescribeSnapshots"],
            "Resource": "*",
        },
        {
            "Sid": "CreateFarmVolumes",
            "Effect": "Allow",
            "Action": ["ec2:CreateVolume"],
            "Resource": VOLUMES,
            "Condition": {"StringEquals": {f"aws:RequestTag/{FARM_TAG}": farm}},
        },
        {
            "Sid": "VolumesFromSnapshots",
            "Effect": "Allow",
            "Action": ["ec2:CreateVolume"],
            "Resource": SNAPSHOTS,
        },
        {
            # Tags only as part of CreateVolume: a node can never retag a volume or itself.
            "Sid": "TagOnCreate",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": VOLUMES,
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateVolume"}},
        },
        {
            "Sid": "FarmVolumes",
            "Effect": "Allow",
            "Action": ["ec2:AttachVolume", "ec2:DetachVolume", "ec2:DeleteVolume"],
            "Resource": VOLUMES,
            "Condition": farm_volume,
        },
        {
            "Sid": "OwnInstance",
            "Effect": "Allow",
            "Action": ["ec2:AttachVolume", "ec2:DetachVolume", "ec2:ModifyInstanceAttribute"],
            "Resource": INSTANCES,
            "Condition": {"StringEquals": {"aws:ARN": "${ec2:SourceInstanceARN}"}},
        },
    ]


def current_policy(client: Any, farm: str) -> dict[str, Any] | None:
    """The node policy the farm's role holds now, or None before the first ``init``."""
    try:
        document = client.get_role_policy(RoleName=role_name(farm), PolicyName=POLICY_NAME)[
            "PolicyDocument"
        ]
    except Exception as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    parsed = json.loads(document) if isinstance(document, str) else document
    return dict(parsed)


def ensure_node_profile(client: Any, farm: str, policy: dict[str, Any]) -> str:
    """Create or update the farm's node role and instance profile; returns the profile name."""
    name = role_name(farm)
    tags = [{"Key": FARM_TAG, "Value": farm}]
    try:
        client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), Tags=tags)
    except Exception as error:
        if error_code(error) != "EntityAlreadyExists":
            raise
    client.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    try:
        client.create_instance_profile(InstanceProfileName=name, Tags=tags)
        client.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    except Exception as error:
        if error_code(error) != "EntityAlreadyExists":
            raise
    return name


def profile_exists(client: Any, name: str) -> bool:
    try:
        client.get_instance_profile(InstanceProfileName=name)
    except Exception as error:
        if error_code(error) == "NoSuchEntity":
            return False
        raise
    return True
