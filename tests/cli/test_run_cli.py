# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run`` against moto's server: init, launches, status, stop, cancel, price, script."""

from __future__ import annotations

import base64
import http.server
import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.cli.run import main

AMI = "ami-12c6146b"


@pytest.fixture
def farm_env(aws: str, monkeypatch: pytest.MonkeyPatch, isolated_environment: Path) -> Path:
    settings = {
        "WORK_QUEUE": "sqs://frames",
        "BLENDER_PROJECT": "s3://projects/shot.tar.gz",
        "RENDER_OUTPUT": "s3://frames/shot1",
        "AMI_ID": AMI,
        "SSH_FROM": "203.0.113.7/32",
        "FARM": "test-farm",
        "AWS_ACCESS_KEY": "AKIASECRETKEYID00000",
        "AWS_SECRET_KEY": "very-secret-value-that-must-not-leak",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    return isolated_environment


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def instances(boto_client: Any) -> list[dict[str, Any]]:
    reservations = boto_client("ec2").describe_instances()["Reservations"]
    return [item for reservation in reservations for item in reservation["Instances"]]


def running(boto_client: Any) -> list[str]:
    return sorted(
        i["InstanceId"] for i in instances(boto_client) if i["State"]["Name"] == "running"
    )


@pytest.fixture
def initialised(farm_env: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(capsys, "init")[0] == 0
    return farm_env


def test_init_admits_ssh_from_the_caller_only_and_makes_a_least_privilege_role(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "SSH from 203.0.113.7/32 only" in out
    private_key = farm_env / ".ssh" / "id_rsa.brenda"
    assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
    assert "BEGIN" in private_key.read_text()
    [group] = boto_client("ec2").describe_security_groups(GroupNames=["brenda"])["SecurityGroups"]
    ranges = [r["CidrIp"] for rule in group["IpPermissions"] for r in rule["IpRanges"]]
    assert ranges == ["203.0.113.7/32"]
    iam = boto_client("iam")
    policy = iam.get_role_policy(RoleName="brenda-node-test-farm", PolicyName="brenda-node")
    document = policy["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    actions = {action for statement in document["Statement"] for action in statement["Action"]}
    assert "sqs:DeleteMessage" in actions and "s3:PutObject" in actions
    assert not any(action.endswith("*") for action in actions)
    resources = [s["Resource"] for s in document["Statement"] if s["Sid"] == "Outputs"]
    assert resources == ["arn:aws:s3:::frames/shot1/*"]
    profile = iam.get_instance_profile(InstanceProfileName="brenda-node-test-farm")
    assert [role["RoleName"] for role in profile["InstanceProfile"]["Roles"]] == [
        "brenda-node-test-farm"
    ]
    assert run(capsys, "init")[0] == 0  # a second init changes nothing and does not fail
    [group] = boto_client("ec2").describe_security_groups(GroupNames=["brenda"])["SecurityGroups"]
    assert sum(len(rule["IpRanges"]) for rule in group["IpPermissions"]) == 1


def test_init_imports_an_existing_public_key(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    ssh = farm_env / ".ssh"
    ssh.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(ssh / "id_rsa")],
        check=True,
    )
    code, out, _ = run(capsys, "init")
    assert code == 0 and f"brenda (imported from {ssh / 'id_rsa.pub'})" in out
    assert not (ssh / "id_rsa.brenda").exists()
    assert boto_client("ec2").describe_key_pairs(KeyNames=["brenda"])["KeyPairs"]


class CheckIp(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"198.51.100.23\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def checkip() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), CheckIp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_init_learns_the_callers_address(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    checkip: str,
) -> None:
    monkeypatch.delenv("BRENDA_SSH_FROM")
    monkeypatch.setenv("BRENDA_CHECKIP_URL", checkip)
    code, out, _ = run(capsys, "--no-ssh-keys", "init")
    assert code == 0 and "SSH from 198.51.100.23/32 only" in out


def test_init_refuses_ssh_from_the_whole_internet(
    farm_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRENDA_SSH_FROM", "0.0.0.0/0")
    code, _, err = run(capsys, "init")
    assert code == 1
    assert err == "brenda-run: SSH_FROM must not admit the whole Internet; give your own address.\n"


def test_dry_run_spot_launches_nothing(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    code, out, _ = run(capsys, "-N", "3", "-p", "0.25", "-d", "spot")
    assert code == 0
    assert "Instance count       3" in out and "Max price            US$ 0.25/hour" in out
    assert "systemctl enable --now brenda-node.service" in out
    assert out.endswith("Dry run: nothing was launched.\n")
    assert instances(boto_client) == []


def test_spot_nodes_boot_the_service_without_secrets_and_show_in_status(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    code, out, _ = run(capsys, "-N", "2", "-p", "0.3", "-z", "us-east-1b", "spot")
    assert code == 0 and out.startswith("Farm                 test-farm\n")
    launched = instances(boto_client)
    assert len(launched) == 2
    assert {item["Placement"]["AvailabilityZone"] for item in launched} == {"us-east-1b"}
    attribute = boto_client("ec2").describe_instance_attribute(
        InstanceId=launched[0]["InstanceId"], Attribute="userData"
    )

    script = base64.b64decode(attribute["UserData"]["Value"]).decode()
    assert "very-secret-value-that-must-not-leak" not in script
    assert "AKIASECRETKEYID00000" not in script and "AWS_SECRET" not in script
    assert "<<'BRENDA_NODE_ENV_END'" in script
    assert 'BRENDA_WORK_QUEUE="sqs://frames"' in script
    assert 'BRENDA_EC2_REGION="us-east-1"' in script
    assert script.rstrip().endswith("systemctl enable --now brenda-node.service")
    code, out, _ = run(capsys, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Nodes of farm test-farm:"
    assert sum(" spot " in line and "running" in line for line in lines) == 2


def test_script_prints_the_user_data(
    initialised: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "script")
    assert code == 0 and out.startswith("#!/bin/bash\n")
    assert 'BRENDA_DONE="exit"' in out
    script = tmp_path / "user-data.sh"
    script.write_text(out)
    result = subprocess.run(
        ["shellcheck", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_persistent_spot_requests_and_cancel_touches_only_this_farm(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    ec2 = boto_client("ec2")
    other = ec2.request_spot_instances(
        SpotPrice="0.1", InstanceCount=1, LaunchSpecification={"ImageId": AMI}
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    code, out, _ = run(capsys, "-N", "2", "-p", "0.3", "-P", "spot")
    assert code == 0 and "Launched 2 spot requests: sir-" in out
    code, out, _ = run(capsys, "status")
    assert out.count(" persistent ") == 2
    code, out, _ = run(capsys, "cancel")
    assert code == 0 and out.startswith("CANCEL sir-") and other not in out
    cancelled = out.split()[1:]
    assert len(cancelled) == 2
    states = {
        r["SpotInstanceRequestId"]: r["State"]
        for r in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    }
    # moto forgets cancelled requests; AWS lists them as cancelled.
    assert all(states.get(request, "cancelled") == "cancelled" for request in cancelled)
    assert states[other] in ("open", "active")


def test_stop_terminates_only_this_farms_nodes(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    other = boto_client("ec2").run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    other_id = other["Instances"][0]["InstanceId"]
    assert run(capsys, "-N", "2", "demand")[0] == 0
    assert run(capsys, "-N", "1", "-P", "-p", "0.2", "spot")[0] == 0
    assert len(running(boto_client)) == 4
    code, out, _ = run(capsys, "-d", "-T", "stop")
    assert code == 0 and out.endswith("(dry run)\n") and len(running(boto_client)) == 4
    code, out, _ = run(capsys, "-T", "stop")
    assert code == 0 and out.startswith("TERMINATE i-")
    assert running(boto_client) == [other_id]
    requests = boto_client("ec2").describe_spot_instance_requests()["SpotInstanceRequests"]
    assert all(r["State"] == "cancelled" for r in requests)


def test_demand_nodes_terminate_when_they_shut_down(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    assert run(capsys, "demand")[0] == 0
    [node] = instances(boto_client)
    behaviour = boto_client("ec2").describe_instance_attribute(
        InstanceId=node["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


def test_price_lists_every_zone(farm_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-i", "c7i.2xlarge", "price")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Spot price of c7i.2xlarge:"
    assert len(lines) > 2 and all("US$ " in line for line in lines[1:])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-N", "0", "spot"], "The number of nodes (-N) must be 1 or more, not 0."),
        (["-p", "cheap", "spot"], "Price -p cheap is not a number of US$ per hour."),
        (["-P", "demand"], "-P (persistent) applies to spot nodes only."),
        (
            ["spot"],
            "The nodes' instance profile brenda-node-test-farm does not exist: run "
            "'brenda-run init' first.",
        ),
    ],
    ids=["count", "price", "persistent demand", "no init"],
)
def test_launch_errors_are_one_line(
    farm_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err == f"brenda-run: {message}\n"


def test_image_type_and_subnet_options(
    initialised: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    ec2 = boto_client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    code, _, _ = run(
        capsys, "-a", "ami-1e749f67", "-i", "m7i.large", "-z", subnet["SubnetId"], "demand"
    )
    assert code == 0
    [node] = instances(boto_client)
    assert (node["ImageId"], node["InstanceType"], node["SubnetId"]) == (
        "ami-1e749f67",
        "m7i.large",
        subnet["SubnetId"],
    )
    profile = node["IamInstanceProfile"]["Arn"]
    assert profile.endswith("instance-profile/brenda-node-test-farm")
