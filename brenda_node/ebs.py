# SPDX-License-Identifier: GPL-3.0-or-later
"""``ebs://`` projects and ``ADDITIONAL_EBS_n`` volumes on an EC2 node. No bpy module use.

For each snapshot (an id, or the Name tag of one of the account's snapshots) the node creates a
volume in its own availability zone, attaches it under the next free name of ``/dev/sdf`` ..
``/dev/sdp``, marks it to be deleted with the instance (so a crash leaks nothing), finds the
device the kernel made of it and mounts it read-only: the project at ``WORK_DIR/project-ebs``,
additional volumes at their folders inside the project. On exit it unmounts, detaches and
deletes them.

The machine-specific part (which device node a volume became, mount, unmount) sits behind
``BlockDevices``; ``LinuxBlockDevices`` is the real one. Xen instances show ``/dev/sdf`` as
``/dev/xvdf``; Nitro instances show every EBS volume as ``/dev/nvmeXn1``, found through the
``/dev/disk/by-id`` link that carries the volume id.
"""

from __future__ import annotations

import logging
import os
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.aws import ec2
from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import BrendaError
from shared.core.urls import EbsUrl

from .spot import MetadataClient

log = logging.getLogger(__name__)

DEVICE_LETTERS = string.ascii_lowercase[string.ascii_lowercase.index("f") :][:11]
DEVICE_WAIT_SECONDS = 120.0


class BlockDevices(Protocol):
    def find(self, volume_id: str, attached_as: str) -> Path | None:
        """The device node of an attached volume, or None until it appears."""

    def mount(self, device: Path, folder: Path) -> None:
        """Mount ``device`` read-only at ``folder``."""

    def unmount(self, folder: Path) -> None: ...


def device_candidates(volume_id: str, attached_as: str) -> list[Path]:
    """Where a volume attached as ``/dev/sdX`` may appear, most specific first."""
    letter = attached_as.removeprefix("/dev/sd")
    serial = volume_id.replace("-", "")
    return [
        Path(f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}"),
        Path(f"/dev/xvd{letter}"),
        Path(attached_as),
    ]


class LinuxBlockDevices:
    def find(self, volume_id: str, attached_as: str) -> Path | None:
        for candidate in device_candidates(volume_id, attached_as):
            if candidate.exists():
                return candidate.resolve()
        return None

    def _run(self, *command: str) -> None:
        prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrendaError(f"'{' '.join(command)}' failed: {result.stderr.strip()}")

    def mount(self, device: Path, folder: Path) -> None:
        self._run("/usr/bin/mount", "-o", "ro", str(device), str(folder))

    def unmount(self, folder: Path) -> None:
        self._run("/usr/bin/umount", str(folder))


@dataclass
class Attached:
    volume: str
    device: str
    folder: Path


@dataclass
class EbsVolumes:
    """Volumes made from snapshots for this node, and their clean-up."""

    config: Config
    devices: BlockDevices
    attached: list[Attached] = field(default_factory=list)
    _client: Any = None
    _instance: str = ""
    _zone: str = ""

    def _connect(self) -> None:
        if self._client is not None:
            return
        metadata = MetadataClient(self.config.text("METADATA_URL"))
        try:
            instance = metadata.get("/latest/meta-data/instance-id")
            zone = metadata.get("/latest/meta-data/placement/availability-zone")
        except OSError as error:
            raise BrendaError(
                f"ebs:// volumes need EC2 instance metadata, which cannot be read: {error}."
            ) from error
        if not instance or not zone:
            raise BrendaError("ebs:// volumes need an EC2 node: its instance metadata is missing.")
        self._instance, self._zone = instance.strip(), zone.strip()
        with cloud_errors("connecting to EC2"):
            self._client = make_client("ec2", self.config)

    def mount(self, url: EbsUrl, folder: Path) -> Path:
        """Make a volume from ``url``'s snapshot and mount it read-only at ``folder``."""
        self._connect()
        client = self._client
        letter = DEVICE_LETTERS[len(self.attached)]
        attached_as = f"/dev/sd{letter}"
        with cloud_errors(f"attaching {url}"):
            snapshot = ec2.find_snapshot(client, url.snapshot)
            volume = client.create_volume(
                SnapshotId=snapshot,
                AvailabilityZone=self._zone,
                VolumeType="gp3",
                TagSpecifications=ec2.farm_tags(self.config.text("FARM"), "volume"),
            )["VolumeId"]
            self.attached.append(Attached(volume, attached_as, folder))
            client.get_waiter("volume_available").wait(VolumeIds=[volume])
            client.attach_volume(VolumeId=volume, InstanceId=self._instance, Device=attached_as)
            client.get_waiter("volume_in_use").wait(VolumeIds=[volume])
            client.modify_instance_attribute(
                InstanceId=self._instance,
                BlockDeviceMappings=[
                    {"DeviceName": attached_as, "Ebs": {"DeleteOnTermination": True}}
                ],
            )
        device = self._wait_for_device(volume, attached_as)
        folder.mkdir(parents=True, exist_ok=True)
        self.devices.mount(device, folder)
        log.info("mounted %s (%s, %s) read-only at %s", url, volume, device, folder)
        return folder

    def _wait_for_device(self, volume: str, attached_as: str) -> Path:
        deadline = time.monotonic() + DEVICE_WAIT_SECONDS
        while time.monotonic() < deadline:
            device = self.devices.find(volume, attached_as)
            if device is not None:
                return device
            time.sleep(1)
        raise BrendaError(f"Volume {volume} attached as {attached_as} never appeared as a device.")

    def release(self) -> None:
        """Unmount, detach and delete every volume, the last mounted first."""
        for item in reversed(self.attached):
            try:
                self.devices.unmount(item.folder)
            except BrendaError as error:
                log.warning("%s", error)
            try:
                with cloud_errors(f"deleting volume {item.volume}"):
                    self._client.detach_volume(
                        VolumeId=item.volume, InstanceId=self._instance, Device=item.device
                    )
                    self._client.get_waiter("volume_available").wait(VolumeIds=[item.volume])
                    self._client.delete_volume(VolumeId=item.volume)
            except BrendaError as error:
                log.warning("%s; it goes when the instance terminates", error)
        self.attached.clear()


def mount_additional(volumes: EbsVolumes, project: Path) -> None:
    """ADDITIONAL_EBS_n volumes at their folders inside the project."""
    for url in volumes.config.additional_ebs():
        assert url.directory is not None
        volumes.mount(url, project / url.directory)
