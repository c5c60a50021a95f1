# SPDX-License-Identifier: GPL-3.0-or-later
"""The nodes' IAM role and instance profile: least privilege, no keys. No bpy module use.

A node may take, renew and delete tasks on its farm's queue (and read its dead-letter queue's
attributes), read the project, write and read its outputs, cancel its own farm's spot requests
and, for ``ebs://`` projects, make and attach volumes from snapshots. Nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from ..urls import EbsUrl, S3Url
from .ec2 import FARM_TAG
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


def role_name(farm: str) -> str:
    return f"brenda-node-{farm}"


def _s3_objects(url: S3Url) -> str:
    return f"arn:aws:s3:::{url.bucket}/{url.prefix}*"


def node_policy(
    *,
    farm: str,
    queue_arns: list[str],
    project: object,
    output: object,
) -> dict[str, Any]:
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
            "Sid": "DescribeSelf",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotInstanceRequests"],
            "Resource": "*",
        },
    ]
    if isinstance(project, S3Url):
        statements.append(
            {
                "Sid": "Project",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{project.bucket}/{project.prefix.rstrip('/')}",
            }
        )
    if isinstance(output, S3Url):
        statements.append(
            {
                "Sid": "Outputs",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                "Resource": _s3_objects(output),
            }
        )
        statements.append(
            {
                "Sid": "ListOutputs",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{output.bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{output.prefix}*"]}},
            }
        )
    if isinstance(project, EbsUrl):
        statements.append(
            {
                "Sid": "ProjectVolumes",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateVolume",
                    "ec2:AttachVolume",
                    "ec2:DetachVolume",
                    "ec2:DeleteVolume",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeSnapshots",
                    "ec2:CreateTags",
                ],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def ensure_node_profile(client: Any, farm: str, policy: dict[str, Any]) -> str:
    """Create or update the farm's node role and instance profile; returns the profile name."""
    name = role_name(farm)
    tags = [{"Key": FARM_TAG, "Value": farm}]
    try:
        client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), Tags=tags)
    except Exception as error:
        if error_code(error) != "EntityAlreadyExists":
            raise
    client.put_role_policy(
        RoleName=name, PolicyName="brenda-node", PolicyDocument=json.dumps(policy)
    )
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
