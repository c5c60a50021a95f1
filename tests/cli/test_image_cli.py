# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run image`` against moto's server: the stock Ubuntu image found through its public
SSM parameter, a builder launched with the recipe as user data, the builder's word taken from
the farm's store, the image made and tagged, the builder terminated whatever happened, and
``AMI_ID=latest`` resolving to the farm's newest image."""

from __future__ import annotations

import base64
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from moto.ssm.models import Parameter, SimpleSystemManagerBackend

from shared.cli.run import main as brenda_run
from shared.core.config import load_config
from shared.core.errors import ConfigError
from shared.farm import image
from shared.farm.fleet import node_image

UBUNTU = "ami-0ubuntu2404"


@pytest.fixture
def farm_env(aws: str, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The farm's store, and Canonical's public parameter as EC2 in us-east-1 serves it (moto
    has none: its backend answers it here, while the request still goes over HTTP)."""

    boto_client("s3").create_bucket(Bucket="studio")
    monkeypatch.setenv("BRENDA_FARM", "studio")
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    monkeypatch.setattr(image, "POLL_SECONDS", 0.05)
    served = SimpleSystemManagerBackend.get_parameter

    def get_parameter(backend: Any, name: str) -> Any:
        if name != image.UBUNTU_PARAMETER:
            return served(backend, name)
        now = datetime.now(UTC)
        return Parameter("123456789012", name, UBUNTU, "String", None, None, None, now, 1, "text")

    monkeypatch.setattr(SimpleSystemManagerBackend, "get_parameter", get_parameter)
    return boto_client("ec2")


def builders(ec2: Any) -> list[dict[str, Any]]:
    found = ec2.describe_instances(
        Filters=[{"Name": "tag:brenda:role", "Values": ["image-builder"]}]
    )
    return [item for group in found["Reservations"] for item in group["Instances"]]


@pytest.fixture
def builder_says(farm_env: Any) -> Iterator[dict[str, str]]:
    """Plays the builder: once it boots, puts ``word["log"]`` at the URL its user data names
    for ``word["outcome"]`` (done or failed), then stops, as the recipe's last lines do."""
    ec2, word = farm_env, {"outcome": "done", "log": "Done: stop this instance."}
    stop = threading.Event()

    def play() -> None:
        while not stop.wait(0.05):
            running = [item for item in builders(ec2) if item["State"]["Name"] == "running"]
            if not running:
                continue
            [builder] = running
            attribute = ec2.describe_instance_attribute(
                InstanceId=builder["InstanceId"], Attribute="userData"
            )
            script = base64.b64decode(attribute["UserData"]["Value"]).decode()
            url = re.findall(r"--upload-file \"\$log\" '([^']+)'", script)
            if word["outcome"] != "silent":  # silent: it could not reach the store
                target = url[0] if word["outcome"] == "done" else url[1]
                requests.put(target, data=word["log"].encode(), timeout=10).raise_for_status()
            ec2.stop_instances(InstanceIds=[builder["InstanceId"]])
            word["script"] = script
            return

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    try:
        yield word
    finally:
        stop.set()
        thread.join()


def test_the_dry_run_says_what_it_would_build_and_launches_nothing(
    farm_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert brenda_run(["--blender-versions", "4.5.5 5.2.4", "-d", "image"]) == 0
    out = capsys.readouterr().out
    assert f"Base image: {UBUNTU} (Ubuntu 24.04, {image.UBUNTU_PARAMETER})" in out
    assert "Blender: 4.5.5 5.2.4" in out and "Dry run: nothing was launched." in out
    assert builders(farm_env) == []
    # Versions go into the builder's shell script: anything but a release number is refused.
    assert brenda_run(["--blender-versions", "4.5.5 5.2';reboot", "image"]) == 2
    assert "'5.2';reboot' is not a Blender release version" in capsys.readouterr().err
    assert builders(farm_env) == []


def test_image_builds_tags_and_terminates_its_builder_and_latest_finds_it(
    farm_env: Any, builder_says: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert brenda_run(["--blender-versions", "4.5.5 5.2.4", "image"]) == 0
    made = re.findall(r"Image (ami-\w+) is ready", capsys.readouterr().out)[0]
    [described] = farm_env.describe_images(ImageIds=[made])["Images"]
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags == {"brenda:farm": "studio", "brenda:blender-versions": "4.5.5 5.2.4"}
    [builder] = builders(farm_env)
    assert builder["ImageId"] == UBUNTU and builder["State"]["Name"] == "terminated"
    script = builder_says["script"]
    recipe = (Path(image.DEPLOY) / "build-node-image.sh").read_text()
    assert recipe in script and "BLENDER_VERSIONS='4.5.5 5.2.4' ./build-node-image.sh" in script
    assert "aws_secret_access_key" not in script.lower() and "AKIA" not in script
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    assert node_image(load_config(), "latest") == made


def test_a_failed_build_says_why_and_still_terminates_its_builder(
    farm_env: Any, builder_says: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    builder_says.update(outcome="failed", log="Installing Blender 9.9.9\ncurl: (22) 404 Not Found")
    assert brenda_run(["--blender-versions", "9.9.9", "image"]) == 1
    err = capsys.readouterr().err
    assert "The image build failed: Installing Blender 9.9.9 / curl: (22) 404 Not Found" in err
    [builder] = builders(farm_env)
    assert builder["State"]["Name"] == "terminated"
    assert farm_env.describe_images(Owners=["self"])["Images"] == []
    with pytest.raises(ConfigError, match="^Farm studio has no node image yet: make one with"):
        node_image(load_config(), "latest")


def test_a_builder_that_stops_without_a_word_is_named_at_once(
    farm_env: Any, builder_says: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    builder_says["outcome"] = "silent"
    assert brenda_run(["image"]) == 1
    [builder] = builders(farm_env)
    err = capsys.readouterr().err
    assert f"The image builder {builder['InstanceId']} is stopped without saying how" in err
    assert builder["State"]["Name"] == "terminated"
