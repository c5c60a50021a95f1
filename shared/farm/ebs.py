# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-ebs``: volumes for projects too big for an S3 tarball. No bpy module use.

``new`` starts a small helper instance with a new empty volume, ``existing`` one with a volume
made from a snapshot; with ``-m`` the helper formats (``new`` only) and mounts it at
``/mnt/brenda-volume``, ready for ``brenda-tool rsync``. ``snapshot`` then snapshots the farm's
helper volume under a name that ``ebs://NAME`` and ``ADDITIONAL_EBS_n`` find. The volume is the
whole device, without a partition table, which is what nodes mount.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..aws import ec2, iam
from ..aws.session import cloud_errors
from ..core.config import Config
from ..core.errors import BrendaError, ConfigError, UsageError
from .fleet import security_group_id
from .image import latest_image

HELPER_ROLE_TAG = ec2.ROLE_TAG
HELPER_ROLE = "ebs-helper"
MOUNT_POINT = "/mnt/brenda-volume"
NODE_PYTHON = "/opt/brenda/venv/bin/python"

_FIND_VOLUME = """\
# The volume is the disk that is neither the root disk nor mounted (/dev/xvdf on Xen, an NVMe
# disk on Nitro instances); it may take a moment to appear.
root_disk="$(lsblk -ndo PKNAME "$(findmnt -n -o SOURCE /)")"
device=""
for _ in $(seq 90); do
    for name in $(lsblk -ndo NAME,TYPE | awk '$2 == "disk" {print $1}'); do
        [[ "$name" == "$root_disk" ]] && continue
        if [[ -z "$(lsblk -no MOUNTPOINT "/dev/$name" | tr -d '[:space:]')" ]]; then
            device="/dev/$name"
            break
        fi
    done
    [[ -n "$device" ]] && break
    sleep 2
done
if [[ -z "$device" ]]; then
    echo "brenda-ebs: the volume never appeared" >&2
    exit 1
fi
"""


def helper_user_data(*, format_volume: bool, owner: str, fill_from: str | None = None) -> str:
    """The helper's boot script for ``-m``: find the volume, format it if new, mount it.

    With ``fill_from`` (an s3:// project archive) it then extracts the project onto the volume,
    unmounts it and powers the helper off (it terminates; the volume stays for ``snapshot``).
    """
    steps = ["#!/bin/bash", "set -euo pipefail", _FIND_VOLUME.rstrip()]
    if format_volume:
        steps.append('mkfs -t ext4 -q "$device"')
    steps += [
        f"mkdir -p {MOUNT_POINT}",
        f'mount "$device" {MOUNT_POINT}',
        f"chown {owner}: {MOUNT_POINT}",
    ]
    if fill_from is not None:
        steps += [
            f"{NODE_PYTHON} -m shared.cli.fill_volume {shlex.quote(fill_from)} {MOUNT_POINT}",
            f"umount {MOUNT_POINT}",
            "shutdown -h now",
        ]
    return "\n".join(steps) + "\n"


@dataclass(frozen=True)
class HelperPlan:
    farm: str
    image: str
    instance_type: str
    zone: str | None
    size: int | None
    snapshot: str | None
    mount: bool
    key_name: str
    security_group: str
    user_data: str | None
    profile: str | None
    """The instance profile, for a helper that reads the project from S3."""

    def summary(self) -> list[str]:
        volume = f"from snapshot {self.snapshot}" if self.snapshot else "new, empty"
        size = f"{self.size} GB" if self.size else "the snapshot's size"
        return [
            f"Farm                 {self.farm}",
            f"Helper image (AMI)   {self.image}",
            f"Helper type          {self.instance_type}",
            f"Zone                 {self.zone or 'chosen by EC2'}",
            f"Volume               {volume}, {size}, kept when the helper ends",
            f"Mounted at           {MOUNT_POINT if self.mount else 'not mounted (no -m)'}",
        ]


def plan_helper(
    config: Config,
    *,
    existing: bool,
    image: str | None,
    size: int,
    snapshot: str | None,
    instance_type: str | None,
    zone: str | None,
    mount: bool,
    fill_from: str | None = None,
) -> HelperPlan:
    image = image or config.optional_text("AMI_ID")
    if not image:
        raise ConfigError("No image for the helper: give -a AMI or set AMI_ID.")
    if image == "latest":
        image = latest_image(config)
    if size < 1:
        raise UsageError(f"The volume size (-s) must be 1 GB or more, not {size}.")
    if existing and not snapshot:
        raise UsageError("existing needs the snapshot to copy: -S snap-ID or -S NAME.")
    if not existing and snapshot:
        raise UsageError("-S applies to existing only; new makes an empty volume.")
    return HelperPlan(
        farm=config.text("FARM"),
        image=image,
        instance_type=instance_type or config.text("EBS_MANAGE_INSTANCE_TYPE"),
        zone=zone or config.optional_text("EBS_MANAGE_AVAILABILITY_ZONE"),
        size=size if not existing or size > 1 else None,
        snapshot=snapshot,
        mount=mount,
        key_name=config.text("SSH_KEY_NAME"),
        security_group=config.text("SECURITY_GROUP"),
        user_data=helper_user_data(
            format_volume=not existing, owner=config.text("AWS_USER"), fill_from=fill_from
        )
        if mount or fill_from
        else None,
        profile=iam.role_name(config.text("FARM")) if fill_from else None,
    )


def _tags(farm: str, resource: str) -> dict[str, Any]:
    return {
        "ResourceType": resource,
        "Tags": [
            {"Key": ec2.FARM_TAG, "Value": farm},
            {"Key": HELPER_ROLE_TAG, "Value": HELPER_ROLE},
        ],
    }


def start_helper(config: Config, plan: HelperPlan) -> tuple[str, str | None]:
    """Launch the helper; returns its instance id and its snapshot's id (existing)."""
    client = ec2.connect(config)
    with cloud_errors("starting the EBS helper"):
        volume: dict[str, Any] = {"VolumeType": "gp3", "DeleteOnTermination": False}
        snapshot_id = None
        if plan.snapshot:
            snapshot_id = ec2.find_snapshot(client, plan.snapshot)
            volume["SnapshotId"] = snapshot_id
        if plan.size:
            volume["VolumeSize"] = plan.size
        group = security_group_id(client, plan.security_group)
        arguments: dict[str, Any] = {
            "ImageId": plan.image,
            "InstanceType": plan.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "KeyName": plan.key_name,
            "SecurityGroupIds": [group],
            "BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": volume}],
            "TagSpecifications": [_tags(plan.farm, "instance"), _tags(plan.farm, "volume")],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "InstanceInitiatedShutdownBehavior": "terminate",
        }
        if plan.zone:
            arguments["Placement"] = {"AvailabilityZone": plan.zone}
        if plan.user_data:
            arguments["UserData"] = plan.user_data
        if plan.profile:
            arguments["IamInstanceProfile"] = {"Name": plan.profile}
        response = client.run_instances(**arguments)
    return str(response["Instances"][0]["InstanceId"]), snapshot_id


def snapshot_helper_volume(config: Config, name: str) -> str:
    """Snapshot the farm's helper volume as ``name``; returns the snapshot id."""
    client = ec2.connect(config)
    farm = config.text("FARM")
    with cloud_errors(f"snapshotting the EBS helper volume of farm {farm}"):
        volumes = client.describe_volumes(
            Filters=[
                {"Name": f"tag:{ec2.FARM_TAG}", "Values": [farm]},
                {"Name": f"tag:{HELPER_ROLE_TAG}", "Values": [HELPER_ROLE]},
            ]
        )["Volumes"]
        if len(volumes) != 1:
            found = ", ".join(volume["VolumeId"] for volume in volumes) or "none"
            raise BrendaError(
                f"Farm {farm} needs exactly one EBS helper volume to snapshot (found {found})."
            )
        snapshot = client.create_snapshot(
            VolumeId=volumes[0]["VolumeId"],
            Description=f"Brenda project volume {name}",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": "Name", "Value": name}, {"Key": ec2.FARM_TAG, "Value": farm}],
                }
            ],
        )
    return str(snapshot["SnapshotId"])
