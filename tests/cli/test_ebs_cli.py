# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-ebs`` against moto's server: helpers with new and copied volumes, snapshots."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.cli.ebs import main
from shared.cli.run import main as brenda_run
from shared.farm.ebs import helper_user_data

AMI = "ami-12c6146b"


@pytest.fixture
def ebs_env(aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {
        "AMI_ID": AMI,
        "FARM": "ebs-farm",
        "SSH_FROM": "203.0.113.7/32",
        "WORK_QUEUE": "sqs://frames",
        "BLENDER_PROJECT": "ebs://shot-42",
        "RENDER_OUTPUT": "s3://frames/out",
    }.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_run(["init"]) == 0
    capsys.readouterr()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def helper_volumes(ec2: Any) -> list[dict[str, Any]]:
    filters = [{"Name": "tag:brenda:role", "Values": ["ebs-helper"]}]
    return list(ec2.describe_volumes(Filters=filters)["Volumes"])


def test_new_volume_then_snapshot_by_name(
    ebs_env: None, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    ec2 = boto_client("ec2")
    code, out, _ = run(capsys, "-s", "20", "-z", "us-east-1b", "-m", "new")
    assert code == 0 and "Helper i-" in out
    [volume] = helper_volumes(ec2)
    assert (volume["Size"], volume["AvailabilityZone"]) == (20, "us-east-1b")
    [instance] = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    [mapping] = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
    assert mapping["Ebs"]["DeleteOnTermination"] is False
    code, out, _ = run(capsys, "-N", "shot-42", "snapshot")
    assert code == 0 and out.startswith("Snapshot snap-")
    snapshots = ec2.describe_snapshots(Filters=[{"Name": "tag:Name", "Values": ["shot-42"]}])
    [snapshot] = snapshots["Snapshots"]
    assert snapshot["VolumeId"] == volume["VolumeId"]


def test_existing_copies_a_named_snapshot(
    ebs_env: None, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    ec2 = boto_client("ec2")
    source = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot = ec2.create_snapshot(
        VolumeId=source,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "textures"}]}
        ],
    )["SnapshotId"]
    code, out, _ = run(capsys, "-S", "textures", "existing")
    assert code == 0 and f"from {snapshot}" in out
    [volume] = helper_volumes(ec2)
    assert volume["SnapshotId"] == snapshot


def test_dry_run_launches_nothing(
    ebs_env: None, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    code, out, _ = run(capsys, "-s", "5", "-m", "-d", "new")
    assert code == 0 and "mkfs -t ext4" in out and out.endswith("nothing was launched.\n")
    assert helper_volumes(boto_client("ec2")) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["existing"], "existing needs the snapshot to copy: -S snap-ID or -S NAME."),
        (["-S", "nope", "existing"], "No snapshot of this account is named 'nope'."),
        (["-s", "0", "new"], "The volume size (-s) must be 1 GB or more, not 0."),
        (["snapshot"], "snapshot needs a name: brenda-ebs -N NAME snapshot."),
        (["-N", "x", "snapshot"], "Farm ebs-farm needs exactly one EBS helper volume"),
    ],
    ids=["no snapshot", "unknown snapshot", "size", "no name", "no helper"],
)
def test_errors_are_one_line(
    ebs_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    # Exit status 2 for a wrong command line, 1 for what the command could not do.
    assert code == (1 if message.startswith(("No snapshot", "Farm ")) else 2)
    assert err.startswith(f"brenda-ebs: {message}") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("format_volume", "fill_from"),
    [(True, None), (False, None), (True, "s3://projects/projects/shot 1.tar.gz")],
    ids=["new", "existing", "filled from a project"],
)
def test_helper_boot_script_passes_shellcheck(
    format_volume: bool, fill_from: str | None, tmp_path: Path
) -> None:
    script = tmp_path / "user-data.sh"
    text = helper_user_data(format_volume=format_volume, owner="ubuntu", fill_from=fill_from)
    if fill_from:
        assert "shared.cli.fill_volume 's3://projects/projects/shot 1.tar.gz'" in text
        assert text.endswith("shutdown -h now\n")
    script.write_text(text)
    for check in (["bash", "-n"], ["shellcheck", "--severity=style"]):
        result = subprocess.run([*check, str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
