# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run`` against moto's server: init, launches, status, stop, cancel, price, script."""

from __future__ import annotations

import base64
import fnmatch
import http.server
import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.cli.run import main
from shared.farm.fleet import GPU_INSTANCE_TYPES
from tests.conftest import QuietHandler, serving_http

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
    document = node_policy(boto_client)
    actions = {action for statement in document["Statement"] for action in statement["Action"]}
    assert "sqs:DeleteMessage" in actions and "s3:PutObject" in actions
    assert not any(action.endswith("*") for action in actions)
    assert not any(action.startswith("ec2:") and "Volume" in action for action in actions)
    resources = [s["Resource"] for s in document["Statement"] if s["Sid"] == "QueueOutputs"]
    assert resources == [["arn:aws:s3:::frames/*"]]
    granted_lines = [line for line in out.splitlines() if line.startswith("  - ")]
    assert granted_lines[:2] == [
        "  - take, renew and delete tasks of sqs://frames and its dead-letter queue",
        "  - take, renew and delete tasks of every job's queue (sqs://test-farm-job-*)",
    ]
    assert "  - read projects under s3://projects\n" in out
    assert "  - store and read any file under s3://frames\n" in out  # a WORK_QUEUE farm's
    profile = iam.get_instance_profile(InstanceProfileName="brenda-node-test-farm")
    assert [role["RoleName"] for role in profile["InstanceProfile"]["Roles"]] == [
        "brenda-node-test-farm"
    ]
    assert run(capsys, "init")[0] == 0  # a second init changes nothing and does not fail
    [group] = boto_client("ec2").describe_security_groups(GroupNames=["brenda"])["SecurityGroups"]
    assert sum(len(rule["IpRanges"]) for rule in group["IpPermissions"]) == 1


def test_init_on_a_farm_of_jobs_says_which_queues_its_nodes_serve(
    farm_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRENDA_WORK_QUEUE")
    monkeypatch.setenv("BRENDA_FARM_OUTPUTS", "s3://studio/frames/")
    code, out, _ = run(capsys, "--no-ssh-keys", "--no-security-group", "init")
    assert code == 0 and "None" not in out
    granted_lines = [line for line in out.splitlines() if line.startswith("  - ")]
    assert granted_lines[0] == (
        "  - take, renew and delete tasks of every job's queue (sqs://test-farm-job-*)"
    )


def test_init_lets_the_nodes_list_and_read_the_farms_blender_releases_only(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "  - list and read Blender releases under s3://studio/projects/blender/\n" in out
    statements = {item["Sid"]: item for item in node_policy(boto_client)["Statement"]}
    assert statements["Releases"]["Action"] == ["s3:GetObject"]
    assert statements["Releases"]["Resource"] == ["arn:aws:s3:::studio/projects/blender/*"]
    listing = statements["ListReleases0"]
    assert (listing["Action"], listing["Resource"]) == (["s3:ListBucket"], "arn:aws:s3:::studio")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["projects/blender/*"]}}


def node_policy(boto_client: Any) -> dict[str, Any]:
    policy = boto_client("iam").get_role_policy(
        RoleName="brenda-node-test-farm", PolicyName="brenda-node"
    )
    document = policy["PolicyDocument"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    [found] = [item for item in document["Statement"] if item["Sid"] == sid]
    return dict(found)


def granted(document: dict[str, Any], sid: str, arn: str) -> bool:
    """Whether the statement's Resource patterns cover ``arn`` (IAM's * and ? wildcards)."""
    resources = statement(document, sid)["Resource"]
    patterns = [resources] if isinstance(resources, str) else resources
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns)


def test_the_node_role_covers_every_job_of_the_farm_and_a_new_init_only_adds(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the add-on stores them: projects/<name>.tar.gz and frames/<name>/ per .blend.
    monkeypatch.setenv("BRENDA_BLENDER_PROJECT", "s3://studio-projects/projects/shot1.tar.gz")
    monkeypatch.setenv("BRENDA_RENDER_OUTPUT", "s3://studio-frames/frames/shot1")
    assert run(capsys, "--no-ssh-keys", "--no-security-group", "init")[0] == 0
    first = node_policy(boto_client)
    for job in ("shot1", "shot2"):
        assert granted(first, "Projects", f"arn:aws:s3:::studio-projects/projects/{job}.tar.gz")
        assert granted(first, "QueueOutputs", f"arn:aws:s3:::studio-frames/frames/{job}/0001.png")
    assert not granted(first, "Projects", "arn:aws:s3:::studio-frames/frames/shot1/0001.png")
    assert not granted(first, "QueueOutputs", "arn:aws:s3:::studio-projects/projects/shot1.tar.gz")
    assert not granted(first, "QueueOutputs", "arn:aws:s3:::other-bucket/frames/shot1/0001.png")
    # Every job of the farm: its queue, its dead letters and frames; never a job's record.
    account = boto_client("sts").get_caller_identity()["Account"]
    queues = f"arn:aws:sqs:us-east-1:{account}"
    assert granted(first, "WorkQueue", f"{queues}:test-farm-job-shot2-20261125-1a2b")
    assert granted(first, "WorkQueue", f"{queues}:test-farm-job-shot2-20261125-1a2b-dead")
    assert not granted(first, "WorkQueue", f"{queues}:other-farm-job-shot2-20261125-1a2b")
    assert granted(first, "NoRecords", "arn:aws:s3:::studio-frames/frames/.brenda/jobs/a.json")
    # Its ledgers beside each job's frames, and the spot price that prices them.
    ledger = "arn:aws:s3:::studio-frames/frames/shot2/.brenda/nodes/a.json"
    assert granted(first, "QueueOutputs", ledger)
    assert "ec2:DescribeSpotPriceHistory" in statement(first, "DescribeSelf")["Action"]
    # The lifecycle hook and the budget's stop (to zero only), on the farm's own group (its
    # tag); no scale-in protection, which IAM cannot limit to the node's own instance.
    farm = {"aws:ResourceTag/brenda:farm": "test-farm"}
    hook = statement(first, "GroupTermination")
    assert hook["Action"] == [
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:CompleteLifecycleAction",
    ]
    assert hook["Condition"] == {"StringEquals": farm}
    stop = statement(first, "StopGroup")
    assert stop["Action"] == ["autoscaling:UpdateAutoScalingGroup"]
    assert stop["Condition"] == {
        "StringEquals": farm,
        "NumericEquals": {"autoscaling:MinSize": "0", "autoscaling:MaxSize": "0"},
    }
    actions = {action for item in first["Statement"] for action in item["Action"]}
    assert "autoscaling:SetInstanceProtection" not in actions

    # The second .blend's init leaves the policy as it was under the running nodes.
    monkeypatch.setenv("BRENDA_BLENDER_PROJECT", "s3://studio-projects/projects/shot2.tar.gz")
    monkeypatch.setenv("BRENDA_RENDER_OUTPUT", "s3://studio-frames/frames/shot2")
    assert run(capsys, "--no-ssh-keys", "--no-security-group", "init")[0] == 0
    assert node_policy(boto_client) == first

    # Another bucket is added; what running nodes use stays granted.
    monkeypatch.setenv("BRENDA_FARM_OUTPUTS", "s3://archive/renders")
    code, out, _ = run(capsys, "--no-ssh-keys", "--no-security-group", "init")
    assert code == 0
    both = node_policy(boto_client)
    assert granted(both, "QueueOutputs", "arn:aws:s3:::studio-frames/frames/shot1/0001.png")
    assert granted(both, "QueueOutputs", "arn:aws:s3:::archive/renders/shot2/0001.png")
    assert "  - store and read any file under s3://archive/renders/\n" in out
    assert "  - store and read any file under s3://studio-frames/frames/\n" in out


def test_init_without_the_farms_prefixes_says_so_and_makes_nothing(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRENDA_BLENDER_PROJECT")
    monkeypatch.delenv("BRENDA_RENDER_OUTPUT")
    code, _, err = run(capsys, "init")
    assert code == 1
    assert err == (
        "brenda-run: The nodes' role needs the farm's S3 output prefix: set FARM_OUTPUTS (or "
        "RENDER_OUTPUT) to an s3:// address before 'brenda-run init'.\n"
    )
    assert boto_client("iam").list_roles()["Roles"] == []
    assert boto_client("ec2").describe_key_pairs()["KeyPairs"] == []
    assert not (farm_env / ".ssh").exists()


@pytest.mark.parametrize(
    "settings",
    [
        {"BLENDER_PROJECT": "ebs://project-volume"},
        {"ADDITIONAL_EBS_0": "ebs://textures,textures"},
    ],
    ids=["ebs project", "additional volume with an s3 project"],
)
def test_volume_actions_are_scoped_to_the_farm_and_the_node_itself(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
) -> None:
    for key, value in settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert run(capsys, "--no-ssh-keys", "--no-security-group", "init")[0] == 0
    document = node_policy(boto_client)
    # Every call brenda_node/ebs.py makes is granted ...
    actions = {action for item in document["Statement"] for action in item["Action"]}
    for call in (
        "CreateVolume",
        "AttachVolume",
        "ModifyInstanceAttribute",
        "DetachVolume",
        "DeleteVolume",
        "DescribeVolumes",
        "DescribeSnapshots",
    ):
        assert f"ec2:{call}" in actions, call
    # ... but only on the farm's volumes, the node's own instance, and tags at creation only.
    for item in document["Statement"]:
        touches = set(item["Action"]) & {
            "ec2:AttachVolume",
            "ec2:DetachVolume",
            "ec2:DeleteVolume",
            "ec2:ModifyInstanceAttribute",
            "ec2:CreateTags",
        }
        if touches:
            assert item["Resource"] != "*" and item.get("Condition"), item["Sid"]
    assert statement(document, "DrainFarmNodes")["Condition"] == {
        "StringEquals": {"aws:ResourceTag/brenda:farm": "test-farm"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["brenda:drain"]},
    }
    assert statement(document, "TagOnCreate")["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "CreateVolume"}
    }
    assert statement(document, "CreateFarmVolumes")["Condition"] == {
        "StringEquals": {"aws:RequestTag/brenda:farm": "test-farm"}
    }
    assert statement(document, "FarmVolumes")["Condition"] == {
        "StringEquals": {"aws:ResourceTag/brenda:farm": "test-farm"}
    }
    assert statement(document, "OwnInstance")["Condition"] == {
        "StringEquals": {"aws:ARN": "${ec2:SourceInstanceARN}"}
    }


def test_a_second_key_pair_gets_its_own_key_file_and_no_key_is_overwritten(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(capsys, "--no-security-group", "init")[0] == 0
    first = farm_env / ".ssh" / "id_rsa.brenda"
    first_key = first.read_text()
    monkeypatch.setenv("BRENDA_SSH_KEY_NAME", "studio-b")
    code, out, _ = run(capsys, "--no-security-group", "init")
    second = farm_env / ".ssh" / "id_rsa.studio-b"
    assert code == 0 and f"studio-b (new; private key saved to {second})" in out
    assert first.read_text() == first_key and second.read_text() != first_key
    assert stat.S_IMODE(second.stat().st_mode) == 0o600

    # A key file left from a deleted key pair is never replaced.
    boto_client("ec2").delete_key_pair(KeyName="studio-b")
    code, _, err = run(capsys, "--no-security-group", "init")
    assert code == 1
    assert f"{second} already holds a private key" in err
    assert second.read_text() != first_key
    assert (
        boto_client("ec2").describe_key_pairs(
            Filters=[{"Name": "key-name", "Values": ["studio-b"]}]
        )["KeyPairs"]
        == []
    )


def ssh_rules(boto_client: Any) -> tuple[list[str], list[str]]:
    [group] = boto_client("ec2").describe_security_groups(GroupNames=["brenda"])["SecurityGroups"]
    rules = [rule for rule in group["IpPermissions"] if rule.get("FromPort") == 22]
    ipv4 = [item["CidrIp"] for rule in rules for item in rule.get("IpRanges", [])]
    ipv6 = [item["CidrIpv6"] for rule in rules for item in rule.get("Ipv6Ranges", [])]
    return ipv4, ipv6


@pytest.mark.parametrize(
    ("ssh_from", "addresses"),
    [("0.0.0.0/1", "2,147,483,648"), ("1.2.3.4/2", "1,073,741,824"), ("2001::/16", "")],
)
def test_ssh_from_refuses_wide_ranges_without_the_override(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    ssh_from: str,
    addresses: str,
) -> None:
    monkeypatch.setenv("BRENDA_SSH_FROM", ssh_from)
    code, _, err = run(capsys, "--no-ssh-keys", "init")
    assert code == 1
    assert err.startswith(f"brenda-run: SSH_FROM {ssh_from} admits {addresses}")
    assert "or set SSH_FROM_WIDE=1 if you mean it." in err
    assert (
        boto_client("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["brenda"]}]
        )["SecurityGroups"]
        == []
    )
    monkeypatch.setenv("BRENDA_SSH_FROM", "10.0.0.0/16")
    monkeypatch.setenv("BRENDA_SSH_FROM_WIDE", "1")
    assert run(capsys, "--no-ssh-keys", "init")[0] == 0
    assert ssh_rules(boto_client) == (["10.0.0.0/16"], [])


def test_ipv6_goes_to_ipv6_ranges_and_a_new_address_replaces_the_old_rule(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(capsys, "--no-ssh-keys", "init")[0] == 0
    assert ssh_rules(boto_client) == (["203.0.113.7/32"], [])
    monkeypatch.setenv("BRENDA_SSH_FROM", "2001:db8:1:2::/64")
    code, out, _ = run(capsys, "--no-ssh-keys", "init")
    assert code == 0 and ", replacing 203.0.113.7/32 (SSH from 2001:db8:1:2::/64 only)" in out
    assert ssh_rules(boto_client) == ([], ["2001:db8:1:2::/64"])
    monkeypatch.setenv("BRENDA_SSH_FROM", "198.51.100.23")
    assert run(capsys, "--no-ssh-keys", "init")[0] == 0
    assert ssh_rules(boto_client) == (["198.51.100.23/32"], [])


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


class CheckIp(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 (named by http.server)
        self.reply(200, "198.51.100.23\n")


@pytest.fixture
def checkip() -> Iterator[str]:
    with serving_http(http.server.HTTPServer(("127.0.0.1", 0), CheckIp)) as url:
        yield f"{url}/"


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
    initialised: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    spot_quotas: dict[str, float],
) -> None:
    spot_quotas["L-34B43A08"] = 64  # room enough: nothing to note
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


def test_price_offers_the_gpu_types_with_spot_and_on_demand_prices(
    farm_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "price", "--gpu")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert list(rows) == list(GPU_INSTANCE_TYPES)
    assert {name.split(".")[0] for name in rows} == {"g4dn", "g5", "g6"}
    # moto's spot price is US$ 0.00001 everywhere; the on-demand ones are AWS's list prices.
    assert rows["g4dn.xlarge"][:3] == ["spot", "0.0000", "in"]
    assert rows["g4dn.xlarge"][-2:] == ["on-demand", "0.5260"]
    assert rows["g6.xlarge"][-2:] == ["on-demand", "0.8048"]


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
    # Exit status 2 for a wrong command line, 1 for what the command could not do.
    assert code == (1 if "instance profile" in message else 2)
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
