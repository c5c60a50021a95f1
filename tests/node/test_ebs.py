# SPDX-License-Identifier: GPL-3.0-or-later
"""``ebs://`` projects and ADDITIONAL_EBS volumes: real EC2 calls to moto's server, with the
block devices (which device node a volume became, mount, unmount) behind the node's seam."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from brenda_node.ebs import EbsVolumes, device_candidates, mount_additional
from brenda_node.project import fetch_project
from shared.core.config import load_config
from shared.core.errors import BrendaError
from tests.node.conftest import MetadataServer


class FakeBlockDevices:
    """Each volume's "device" is a folder holding its snapshot's files; mounting links it."""

    def __init__(self, ec2: Any, contents: dict[str, Path]) -> None:
        self.ec2 = ec2
        self.contents = contents
        self.mounted: dict[Path, tuple[str, Path]] = {}
        self.log: list[str] = []

    def find(self, volume_id: str, attached_as: str) -> Path | None:
        volume = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        self.log.append(f"find {attached_as}")
        return self.contents[volume["SnapshotId"]]

    def mount(self, device: Path, folder: Path) -> None:
        folder.rmdir()
        folder.symlink_to(device)
        self.mounted[folder] = (device.name, folder)
        self.log.append(f"mount {folder.name}")

    def unmount(self, folder: Path) -> None:
        folder.unlink()
        folder.mkdir()
        del self.mounted[folder]
        self.log.append(f"unmount {folder.name}")


@pytest.fixture
def node_metadata(boto_client: Any, metadata: MetadataServer) -> tuple[str, str]:
    instance = boto_client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-east-1c"}
    )["Instances"][0]["InstanceId"]
    metadata.values.update(
        {
            "/latest/meta-data/instance-id": instance,
            "/latest/meta-data/placement/availability-zone": "us-east-1c",
        }
    )
    return instance, metadata.url


def snapshot(ec2: Any, name: str | None) -> str:
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    tags = [{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": name}]}] if name else []
    return str(ec2.create_snapshot(VolumeId=volume, TagSpecifications=tags)["SnapshotId"])


def test_project_and_additional_volumes_are_made_attached_mounted_and_removed(
    aws: str, boto_client: Any, node_metadata: tuple[str, str], tmp_path: Path
) -> None:
    ec2 = boto_client("ec2")
    instance, metadata_url = node_metadata
    project_snapshot = snapshot(ec2, "shot-42")
    textures_snapshot = snapshot(ec2, None)
    project_files = tmp_path / "project-volume"
    (project_files / "shot").mkdir(parents=True)
    (project_files / "shot" / "scene.blend").write_bytes(b"blend")
    (project_files / "lost+found").mkdir()
    texture_files = tmp_path / "texture-volume"
    texture_files.mkdir()
    (texture_files / "wood.png").write_bytes(b"png")
    devices = FakeBlockDevices(
        ec2, {project_snapshot: project_files, textures_snapshot: texture_files}
    )
    environ = {
        **os.environ,
        "BRENDA_BLENDER_PROJECT": "ebs://shot-42",
        "BRENDA_ADDITIONAL_EBS_0": f"ebs://{textures_snapshot},textures",
        "BRENDA_METADATA_URL": metadata_url,
        "BRENDA_FARM": "f",
    }
    volumes = EbsVolumes(load_config(environ=environ), devices)
    work = tmp_path / "work"
    project = fetch_project(volumes.config, work, volumes)
    mount_additional(volumes, project)
    assert project == work / "project-ebs" / "shot"
    assert (project / "scene.blend").read_bytes() == b"blend"
    assert (project / "textures" / "wood.png").read_bytes() == b"png"
    made = ec2.describe_volumes(Filters=[{"Name": "tag:brenda:farm", "Values": ["f"]}])["Volumes"]
    assert sorted(volume["SnapshotId"] for volume in made) == sorted(
        [project_snapshot, textures_snapshot]
    )
    assert {volume["AvailabilityZone"] for volume in made} == {"us-east-1c"}
    attachments = sorted(
        (a["Device"], a["InstanceId"]) for volume in made for a in volume["Attachments"]
    )
    assert attachments == [("/dev/sdf", instance), ("/dev/sdg", instance)]
    [node] = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"]
    deleted_with_instance = {
        m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in node["BlockDeviceMappings"]
    }
    assert deleted_with_instance["/dev/sdf"] and deleted_with_instance["/dev/sdg"]
    volumes.release()
    assert devices.log == [
        "find /dev/sdf",
        "mount project-ebs",
        "find /dev/sdg",
        "mount textures",
        "unmount textures",
        "unmount project-ebs",
    ]
    remaining = ec2.describe_volumes(Filters=[{"Name": "tag:brenda:farm", "Values": ["f"]}])
    assert remaining["Volumes"] == []


def test_unknown_snapshot_name_is_one_sentence(
    aws: str, boto_client: Any, node_metadata: tuple[str, str], tmp_path: Path
) -> None:
    environ = {
        **os.environ,
        "BRENDA_BLENDER_PROJECT": "ebs://no-such-shot",
        "BRENDA_METADATA_URL": node_metadata[1],
    }
    volumes = EbsVolumes(load_config(environ=environ), FakeBlockDevices(boto_client("ec2"), {}))
    with pytest.raises(BrendaError, match="^No snapshot of this account is named 'no-such-shot'.$"):
        fetch_project(volumes.config, tmp_path, volumes)


def test_device_names_for_xen_and_nitro() -> None:
    assert [str(p) for p in device_candidates("vol-0abc123", "/dev/sdg")] == [
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc123",
        "/dev/xvdg",
        "/dev/sdg",
    ]
