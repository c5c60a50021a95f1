# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run image``: the node image built on EC2 from a stock Ubuntu 24.04, no hand work.
No bpy module use.

The stock image is found through Canonical's public SSM parameter. A builder instance boots it
with the recipe (``deploy/build-node-image.sh``, the unit and the sudoers rule) in its user
data, fetches this Brenda's source and the Blenders of ``BLENDER_VERSIONS``, and says how it
went by putting its log at one of two presigned URLs of the farm's store (so it needs no role
and no key), then stops itself. The workstation waits for that word, makes the image, tags it
``brenda:farm`` and ``brenda:blender-versions``, and terminates the builder whatever happened.
``AMI_ID=latest`` then launches nodes from the farm's newest image.
"""

from __future__ import annotations

import logging
import secrets
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aws import ec2, s3
from ..aws.session import cloud_errors, make_client
from ..core.config import Config
from ..core.errors import BrendaError, ConfigError
from ..core.urls import S3Url
from .releases import RELEASE_VERSION

log = logging.getLogger(__name__)

UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RECIPE_FILES = ("build-node-image.sh", "brenda-node.service", "brenda-sudoers")
BUILDER_ROLE = "image-builder"
BUILDER_TYPE = "c7i.large"
VERSIONS_TAG = "brenda:blender-versions"
IMAGES_FOLDER = "images/"
"""Where the builder's word goes under FARM_PROJECTS: ``images/<build>.done|.failed``."""
WORD_SECONDS = 2 * 3600
"""How long the presigned URLs stay valid, and the longest a build may take."""
POLL_SECONDS = 15.0
ROOT_VOLUME = {"VolumeSize": 30, "VolumeType": "gp3"}
"""The builder's disk: room for two Blenders (some 1 GB each unpacked) and the build."""


@dataclass(frozen=True)
class ImagePlan:
    farm: str
    base_image: str
    instance_type: str
    blender_versions: str
    build: str
    """A name of this build, in the image's name and the builder's word."""
    word: S3Url
    """Where the builder puts ``<build>.done`` or ``<build>.failed``."""

    @property
    def name(self) -> str:
        return f"brenda-{self.farm}-{self.build}"

    def lines(self) -> list[str]:
        return [
            f"Base image: {self.base_image} (Ubuntu 24.04, {UBUNTU_PARAMETER})",
            f"Builder: one {self.instance_type}, terminated after the build",
            f"Blender: {self.blender_versions}",
            f"Image: {self.name}, tagged brenda:farm={self.farm}",
        ]


def checked_versions(text: str) -> str:
    """The Blender releases ``text`` lists, one space apart; each a plain release number, as
    they go into the builder's shell script."""
    versions = text.split()
    if not versions:
        raise ConfigError("No Blender to install: give --blender-versions '4.5.5 5.2.4'.")
    for version in versions:
        if RELEASE_VERSION.match(version) is None:
            raise ConfigError(f"'{version}' is not a Blender release version like 5.2.4.")
    return " ".join(versions)


def plan_image(config: Config, blender_versions: str, instance_type: str | None) -> ImagePlan:
    """What ``brenda-run image`` would do (reads the stock image's id; makes nothing)."""
    projects = config.url("FARM_PROJECTS", S3Url)
    versions = checked_versions(blender_versions)
    with cloud_errors("looking up the Ubuntu 24.04 image"):
        parameter = make_client("ssm", config).get_parameter(Name=UBUNTU_PARAMETER)
    farm = config.text("FARM")
    build = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    return ImagePlan(
        farm=farm,
        base_image=str(parameter["Parameter"]["Value"]),
        instance_type=instance_type or BUILDER_TYPE,
        blender_versions=versions,
        build=build,
        word=S3Url(projects.bucket, projects.prefix + IMAGES_FOLDER),
    )


SOURCE_PARTS = ("pyproject.toml", "README.md", "LICENSE", "shared", "brenda_node")


def brenda_source(folder: Path) -> Path:
    """This Brenda's source as a source archive the builder installs with pip (which builds
    it there, online); made here without building anything."""
    root = DEPLOY.parent
    if not (root / "pyproject.toml").is_file():
        raise BrendaError(f"brenda-run image needs Brenda's source folder; {root} is not one.")
    version = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    archive = folder / f"brenda-{version}.tar.gz"

    def kept(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info

    with tarfile.open(archive, "w:gz") as bundle:
        for part in SOURCE_PARTS:
            bundle.add(root / part, arcname=f"brenda-{version}/{part}", filter=kept)
    return archive


def builder_user_data(plan: ImagePlan, source_url: str, source: str, done: str, failed: str) -> str:
    """The builder's boot script: the recipe's files, this Brenda, the build, its word."""
    files = "".join(
        f"cat > /root/brenda/{name} <<'BRENDA_FILE_END'\n"
        f"{(DEPLOY / name).read_text(encoding='utf-8')}"
        "BRENDA_FILE_END\n"
        for name in RECIPE_FILES
    )
    return (
        "#!/bin/bash\n"
        "# Brenda image builder: the node recipe on a stock Ubuntu 24.04, then its word.\n"
        "set -uo pipefail\n"
        "mkdir -p /root/brenda && cd /root/brenda\n"
        f"{files}"
        "chmod 0755 build-node-image.sh\n"
        "log=/var/log/brenda-image.log\n"
        ': >"$log"\n'
        f"if {{ curl -fsSL --retry 3 -o '{source}' '{source_url}' &&\n"
        f"     BLENDER_VERSIONS='{plan.blender_versions}' ./build-node-image.sh './{source}'; "
        '} >"$log" 2>&1; then\n'
        f"    curl -fsS --retry 3 -X PUT --upload-file \"$log\" '{done}'\n"
        "else\n"
        f"    curl -fsS --retry 3 -X PUT --upload-file \"$log\" '{failed}'\n"
        "fi\n"
        "shutdown -h now\n"
    )


def _presigned(client: Any, method: str, bucket: str, key: str) -> str:
    return str(
        client.generate_presigned_url(
            method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=WORD_SECONDS
        )
    )


def _said(client: Any, plan: ImagePlan) -> bool:
    """True once the builder said it is done; raises with its log's end if it failed."""

    prefix = plan.word.prefix + plan.build
    if s3.head(client, plan.word.bucket, prefix + ".done") is not None:
        return True
    failed = s3.read_text(client, plan.word.bucket, prefix + ".failed")
    if failed is not None:
        tail = failed.strip().splitlines()[-3:] or ["no output"]
        raise BrendaError(f"The image build failed: {' / '.join(tail)}")
    return False


def _wait_for_word(
    s3_client: Any, ec2_client: Any, plan: ImagePlan, builder: str, wait: Callable[[float], bool]
) -> None:
    """Until the builder says it is done; raises when it failed, stopped without a word (it
    could not reach the store), or said nothing in time."""
    started = time.monotonic()
    with cloud_errors(f"waiting for the image builder {builder}"):
        while time.monotonic() - started < WORD_SECONDS:
            if _said(s3_client, plan):
                return
            found = ec2_client.describe_instances(InstanceIds=[builder])["Reservations"]
            state = found[0]["Instances"][0]["State"]["Name"] if found else "terminated"
            if state in ("stopping", "stopped", "shutting-down", "terminated"):
                if _said(s3_client, plan):
                    return
                raise BrendaError(
                    f"The image builder {builder} is {state} without saying how the build went "
                    "(it could not reach the farm's store): see its console output in EC2."
                )
            if wait(POLL_SECONDS):
                raise BrendaError("The image build was interrupted; its builder is terminated.")
    raise BrendaError(f"The builder said nothing in {WORD_SECONDS // 3600} hours: terminated.")


def build_image(
    config: Config, plan: ImagePlan, *, wait: Callable[[float], bool], say: Callable[[str], None]
) -> str:
    """Build the node image as ``plan`` says; its id. The builder is terminated in any case."""

    s3_client, client = make_client("s3", config), make_client("ec2", config)
    with tempfile.TemporaryDirectory(prefix="brenda-image-") as scratch:
        source = brenda_source(Path(scratch))
        key = f"{plan.word.prefix}{plan.build}/{source.name}"
        with cloud_errors(f"storing Brenda's source in s3://{plan.word.bucket}"):
            s3.upload_file(s3_client, source, plan.word.bucket, key)
    prefix = plan.word.prefix + plan.build
    script = builder_user_data(
        plan,
        _presigned(s3_client, "get_object", plan.word.bucket, key),
        source.name,
        _presigned(s3_client, "put_object", plan.word.bucket, prefix + ".done"),
        _presigned(s3_client, "put_object", plan.word.bucket, prefix + ".failed"),
    )
    tags = [
        {"Key": ec2.FARM_TAG, "Value": plan.farm},
        {"Key": ec2.ROLE_TAG, "Value": BUILDER_ROLE},
    ]
    with cloud_errors("starting the image builder"):
        response = client.run_instances(
            ImageId=plan.base_image,
            InstanceType=plan.instance_type,
            MinCount=1,
            MaxCount=1,
            UserData=script,
            InstanceInitiatedShutdownBehavior="stop",
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": ROOT_VOLUME}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
    builder = response["Instances"][0]["InstanceId"]
    say(f"Builder {builder} started; the build takes some 10 minutes.")
    try:
        _wait_for_word(s3_client, client, plan, builder, wait)
        with cloud_errors(f"making the image of {builder}"):
            client.get_waiter("instance_stopped").wait(
                InstanceIds=[builder], WaiterConfig={"Delay": 5, "MaxAttempts": 120}
            )
            image = client.create_image(
                InstanceId=builder,
                Name=plan.name,
                Description=f"Brenda node, Blender {plan.blender_versions}",
                TagSpecifications=[
                    {
                        "ResourceType": "image",
                        "Tags": [
                            {"Key": ec2.FARM_TAG, "Value": plan.farm},
                            {"Key": VERSIONS_TAG, "Value": plan.blender_versions},
                        ],
                    }
                ],
            )["ImageId"]
            client.get_waiter("image_available").wait(
                ImageIds=[image], WaiterConfig={"Delay": 15, "MaxAttempts": 240}
            )
    finally:
        with cloud_errors(f"terminating the builder {builder}"):
            client.terminate_instances(InstanceIds=[builder])
    return str(image)


def latest_image(config: Config) -> str:
    """The id of the farm's newest image (``AMI_ID=latest``)."""
    farm = config.text("FARM")
    with cloud_errors(f"looking for the images of farm {farm}"):
        images = make_client("ec2", config).describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{ec2.FARM_TAG}", "Values": [farm]}]
        )["Images"]
    if not images:
        raise ConfigError(f"Farm {farm} has no node image yet: make one with 'brenda-run image'.")
    return str(max(images, key=lambda image: image["CreationDate"])["ImageId"])
