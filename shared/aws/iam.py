# SPDX-License-Identifier: GPL-3.0-or-later
"""The nodes' IAM role and instance profile: least privilege, no keys. No bpy module use.

A node renders; it does not govern. Whatever runs on a node can use its credentials (a template
task, a .blend with Python allowed), so the role grants only what rendering needs. A node may take,
renew and delete tasks on its farm's queues (and read its dead-letter queues' attributes), read the
farm's projects, job records and outputs, cancel its own farm's spot requests, end or extend its
group's termination wait, take its group's size down to zero and drain the farm's nodes (the
budget's stop) and, where the farm uses EBS snapshots, make volumes tagged with the farm, attach
them to itself and delete them. In a farm of jobs it stores frames only as new objects (S3
conditional writes: ``If-None-Match: *``, which the ``s3:if-none-match`` condition key enforces), so
no task replaces a frame another stored (nor a job's video, ``<job>/<job>.mp4``, nor the claim to
encode it, nor its report, ``<job>/<job>-report.html``); it writes its own ledgers only, their names
starting with its ``aws:userid`` (``<role id>:<instance id>`` on EC2), a policy variable; it writes
the markers of the jobs' notifications as new objects only, and publishes them to the farm's SNS
topics only (named ``brenda-<farm>-...``); and it may not write job records. A farm with one
WORK_QUEUE runs whatever its queue says (template tasks), so its nodes may store any file under its
outputs, as the original Brenda's did.

IAM has no condition key naming the instance of ``SetInstanceProtection``, so a node that may
set its own scale-in protection may set every node's: nodes are not given it. A node the group
takes while it renders finishes its task under the termination hook instead (brenda_node/group.py).

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


def _objects_arn(url: S3Url, pattern: str = "*") -> str:
    """The objects under ``url`` whose names (after its prefix) match ``pattern``."""
    return f"arn:aws:s3:::{url.bucket}/{url.prefix}{pattern}"


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
    """A farm of jobs' outputs: new frames, failure notes and the node's own ledgers."""
    queue_outputs: tuple[S3Url, ...] = ()
    """A WORK_QUEUE farm's outputs: any file, as its template tasks write them."""
    volumes: bool = False
    releases: tuple[S3Url, ...] = ()
    """The farm's Blender releases, which a node lists to find the newest of a version."""

    def merged(self, other: FarmGrants) -> FarmGrants:
        return FarmGrants(
            projects=_union(self.projects, other.projects),
            outputs=_union(self.outputs, other.outputs),
            queue_outputs=_union(self.queue_outputs, other.queue_outputs),
            volumes=self.volumes or other.volumes,
            releases=_union(self.releases, other.releases),
        )

    def lines(self) -> list[str]:
        """What the grants allow, one sentence each, for ``brenda-run init`` to print."""
        lines = [f"read projects under {url}" for url in self.projects]
        lines += [
            f"read jobs and frames, store new frames and its own ledgers under {url}"
            for url in self.outputs
        ]
        lines += [f"store and read any file under {url}" for url in self.queue_outputs]
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
        outputs=urls("ReadOutputs"),
        # "Outputs": what inits before jobs were checked granted, any file; kept, not narrowed.
        queue_outputs=_union(urls("QueueOutputs"), urls("Outputs")),
        volumes="OwnInstance" in sids,
        releases=urls("Releases"),
    )


@dataclass(frozen=True)
class OutputLayout:
    """Where a farm of jobs keeps what, relative to its outputs prefix."""

    frame_suffixes: tuple[str, ...]
    """The frames' (and their tiles') file name endings: ``.png``, ``.exr``..."""
    records: str
    """The jobs' records: ``.brenda/jobs/``."""
    failures: str
    """Failure notes, in each job's outputs: ``.brenda/failures/``."""
    ledgers: str
    """Ledgers, in each job's outputs: ``.brenda/nodes/``."""
    video_suffix: str
    """A job's video (``--video``), beside its frames: ``.mp4``."""
    report_suffix: str
    """A job's report, stored by the node that sends its ``finished``, beside its frames:
    ``-report.html``."""
    video_claim: str
    """Which node encodes a job's video, in each job's outputs: ``.brenda/video-claim.txt``."""
    events: str
    """Markers of the notifications sent, in each job's outputs: ``.brenda/events/``."""


OWN_LEDGER_VARIABLE = "${aws:userid}"
"""The policy variable a node's ledger names start with: ``<role id>:<instance id>`` on EC2."""


def node_policy(
    *, farm: str, queue_arns: list[str], grants: FarmGrants, layout: OutputLayout, topics: str
) -> dict[str, Any]:
    """The role's policy; ``topics``: how the names of the farm's SNS topics start."""
    farm_tag = {f"aws:ResourceTag/{FARM_TAG}": farm}
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
            "Condition": {"StringEquals": farm_tag},
        },
        {
            # A node the group terminates finishes its task in the hook's wait, then ends it.
            "Sid": "GroupTermination",
            "Effect": "Allow",
            "Action": [
                "autoscaling:RecordLifecycleActionHeartbeat",
                "autoscaling:CompleteLifecycleAction",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": farm_tag},
        },
        {
            # At its budget a node stops its fleet: sizes of zero only, never a larger group.
            "Sid": "StopGroup",
            "Effect": "Allow",
            "Action": ["autoscaling:UpdateAutoScalingGroup"],
            "Resource": "*",
            "Condition": {
                "StringEquals": farm_tag,
                "NumericEquals": {"autoscaling:MinSize": "0", "autoscaling:MaxSize": "0"},
            },
        },
        {
            # ... and drains its nodes: the drain tag alone, on the farm's nodes.
            "Sid": "DrainFarmNodes",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": INSTANCES,
            "Condition": {
                "StringEquals": farm_tag,
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
        statements += _job_outputs(grants.outputs, layout)
        statements.append(
            {
                # A job's notifications go to the farm's topics, never anywhere else.
                "Sid": "FarmTopics",
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": f"arn:aws:sns:*:*:{topics}*",
            }
        )
    if grants.queue_outputs:
        actions = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
        statements.append(_objects("QueueOutputs", actions, grants.queue_outputs))
    outputs = _union(grants.outputs, grants.queue_outputs)
    if outputs:
        statements += _listing("ListOutputs", outputs)
        statements.append(
            {
                "Sid": "NoRecords",
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": [_objects_arn(url, f"{layout.records}*") for url in outputs],
            }
        )
    if grants.releases:
        statements.append(_objects("Releases", ["s3:GetObject"], grants.releases))
        statements += _listing("ListReleases", grants.releases)
    if grants.volumes:
        statements += _volume_statements(farm)
    return {"Version": "2012-10-17", "Statement": statements}


def _job_outputs(urls: tuple[S3Url, ...], layout: OutputLayout) -> list[dict[str, Any]]:
    """A farm of jobs' outputs: read everything (records, frames, ledgers); store new frames,
    new videos, reports and video claims, failure notes and the node's own ledgers only."""
    frames = [_objects_arn(url, f"*{suffix}") for url in urls for suffix in layout.frame_suffixes]
    # A job's video (--video) is stored once, in the job's folder, by the node that claimed it.
    frames += [_objects_arn(url, f"*/*{layout.video_suffix}") for url in urls]
    # So is its report, by the node that sends its ``finished``.
    frames += [_objects_arn(url, f"*/*{layout.report_suffix}") for url in urls]
    return [
        _objects("ReadOutputs", ["s3:GetObject"], urls),
        {
            # A frame is stored once: If-None-Match on the request that creates it (PutObject,
            # CompleteMultipartUpload); the parts of a multipart upload carry no such header.
            "Sid": "StoreNewFrames",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": frames,
            "Condition": {"Null": {"s3:if-none-match": "false"}},
        },
        {
            "Sid": "StoreFrameParts",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": frames,
            "Condition": {"Bool": {"s3:ObjectCreationOperation": "false"}},
        },
        {
            # One claim per job, made once: the node whose claim is stored encodes its video.
            "Sid": "ClaimVideos",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [_objects_arn(url, f"*/{layout.video_claim}") for url in urls],
            "Condition": {"Null": {"s3:if-none-match": "false"}},
        },
        {
            "Sid": "FailureNotes",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [_objects_arn(url, f"*/{layout.failures}*") for url in urls],
        },
        {
            # A notification is sent once: by the node whose marker is new.
            "Sid": "NewEventMarkers",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [_objects_arn(url, f"*/{layout.events}*") for url in urls],
            "Condition": {"Null": {"s3:if-none-match": "false"}},
        },
        {
            "Sid": "OwnLedgers",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [
                _objects_arn(url, f"*/{layout.ledgers}{OWN_LEDGER_VARIABLE}-*") for url in urls
            ],
        },
    ]


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
