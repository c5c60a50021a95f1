# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run fleet``: the farm's Auto Scaling group, launch template and backlog policy, made
against moto's server; ``stop`` takes the group to zero."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.farm import autoscale
from shared.jobs.costs import Ledger, Machine, TaskCost
from tests.cli.test_run_cli import (
    farm_env,  # noqa: F401  (the fixture)
    initialised,  # noqa: F401  (the fixture)
    run,
)

GROUP = "brenda-test-farm"


def test_fleet_makes_a_mixed_spot_group_from_zero_that_follows_the_queue(
    initialised: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
) -> None:
    types = "c7i.2xlarge,c6i.2xlarge,c6a.2xlarge"
    code, out, _ = run(capsys, "-N", "40", "--types", types, "-d", "fleet")
    assert code == 0 and "0 to 40 nodes" in out and "Dry run: nothing was made." in out
    scaling = boto_client("autoscaling")
    assert scaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []

    argv = ["-N", "40", "--types", types, "--on-demand-base", "2", "--budget", "80", "fleet"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "it stops at US$ 80.00 spent" in out
    # moto's Service Quotas knows no EC2 quota: the launch goes on and says why.
    assert "(NoSuchResourceException" in out and "EC2 still applies the quota." in out
    [group] = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 40, 0)
    assert group["CapacityRebalance"] is True
    # No node may set scale-in protection (it could set every node's): a node the group takes
    # while it renders finishes its task in the termination hook's wait instead.
    assert group["NewInstancesProtectedFromScaleIn"] is False
    mixed = group["MixedInstancesPolicy"]
    overrides = mixed["LaunchTemplate"]["Overrides"]
    assert [item["InstanceType"] for item in overrides] == types.split(",")
    distribution = mixed["InstancesDistribution"]
    assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert (
        distribution["OnDemandBaseCapacity"],
        distribution["OnDemandPercentageAboveBaseCapacity"],
    ) == (2, 0)
    ec2 = boto_client("ec2")
    zones = {subnet["AvailabilityZone"] for subnet in ec2.describe_subnets()["Subnets"]}
    subnets = group["VPCZoneIdentifier"].split(",")
    assert len(subnets) == len(zones) > 1  # every zone's default subnet
    tags = {tag["Key"]: tag["Value"] for tag in group["Tags"]}
    assert (tags["brenda:farm"], tags["brenda:budget"]) == ("test-farm", "80.00")

    [template] = ec2.describe_launch_template_versions(LaunchTemplateName=GROUP)[
        "LaunchTemplateVersions"
    ]
    data = template["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled"  # the group's name
    assert data["IamInstanceProfile"]["Name"] == "brenda-node-test-farm"
    boot = base64.b64decode(data["UserData"]).decode()
    assert 'BRENDA_WORK_QUEUE="sqs://frames"' in boot and "very-secret" not in boot

    [policy] = scaling.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    tracking = policy["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == 1.0
    metrics = {item["Id"]: item for item in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["backlog_per_node"]["Expression"] == "(waiting0 + held0) / MAX([nodes, 1])"
    waiting = metrics["waiting0"]["MetricStat"]["Metric"]
    assert (waiting["MetricName"], waiting["Dimensions"]) == (
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": "frames"}],
    )

    [hook] = scaling.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)["LifecycleHooks"]
    assert (hook["LifecycleTransition"], hook["DefaultResult"], hook["HeartbeatTimeout"]) == (
        "autoscaling:EC2_INSTANCE_TERMINATING",
        "CONTINUE",
        600,
    )

    scaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "Fleet brenda-test-farm: 2 wanted (at most 40), 2 running, 0 starting" in out
    placements = [line.split(maxsplit=1) for line in out.splitlines() if " in us-east-1" in line]
    assert sum(int(count) for count, _ in placements) == 2

    # A second run changes the group in place; stop takes it to zero.
    assert run(capsys, "-N", "10", "fleet")[0] == 0
    [group] = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    assert group["MaxSize"] == 10
    assert "brenda:budget" not in {tag["Key"] for tag in group["Tags"]}  # no budget any more
    assert (
        len(
            ec2.describe_launch_template_versions(LaunchTemplateName=GROUP)[
                "LaunchTemplateVersions"
            ]
        )
        == 2
    )
    code, out, _ = run(capsys, "stop")
    assert code == 0
    assert f"Fleet {GROUP}: 0 nodes wanted; 2 node(s) finish their task and go." in out
    assert "STOP (no nodes)" in out  # the draining nodes are left to finish
    [group] = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    assert (group["MaxSize"], group["DesiredCapacity"]) == (0, 0)
    drained = [
        tag["Value"]
        for reservation in ec2.describe_instances()["Reservations"]
        for item in reservation["Instances"]
        for tag in item.get("Tags", [])
        if tag["Key"] == "brenda:drain"
    ]
    assert drained == ["stopped by brenda-run stop"] * 2  # both nodes finish their task and go


def followed_queues(scaling: Any) -> list[str]:
    """The queues the group's target-tracking policy counts, in its order; [] for no policy."""
    policies = scaling.describe_policies(AutoScalingGroupName=GROUP)["ScalingPolicies"]
    if not policies:
        return []
    [policy] = policies
    metrics = policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    return [
        item["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for item in metrics
        if item["Id"].startswith("waiting")
    ]


def test_a_farm_of_jobs_sizes_its_fleet_on_the_queues_of_its_active_jobs(
    initialised: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("BRENDA_WORK_QUEUE")
    monkeypatch.setenv("BRENDA_FARM_OUTPUTS", "s3://frames/farm/")
    boto_client("s3").create_bucket(Bucket="frames")
    scaling = boto_client("autoscaling")
    (tmp_path / "scene.blend").write_bytes(b"")  # for nodes that are not there

    def submit(frames: str, *options: str) -> str:
        argv = ["--project", f"file://{tmp_path}", "--frames", frames, *options, "submit"]
        assert brenda_work(argv) == 0
        match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
        assert match
        return match.group(1)

    def control(*argv: str) -> None:
        assert brenda_work(list(argv)) == 0
        capsys.readouterr()

    code, out, _ = run(capsys, "-N", "20", "fleet")  # no job yet: the group waits at zero
    assert code == 0 and "none now: 0 nodes until one is submitted" in out
    assert followed_queues(scaling) == []
    shot1 = submit("1-4")
    shot2 = submit("1-2", "--priority", "5")
    # Highest priority first; a submit is enough for the group to follow the new job.
    assert followed_queues(scaling) == [f"test-farm-job-{shot2}", f"test-farm-job-{shot1}"]
    control("pause", shot2)
    assert followed_queues(scaling) == [f"test-farm-job-{shot1}"]
    control("resume", shot2)
    control("cancel", shot1)
    assert followed_queues(scaling) == [f"test-farm-job-{shot2}"]
    scaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    control("cancel", shot2)  # nothing active: no policy, no nodes
    assert followed_queues(scaling) == []
    [group] = scaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-N", "0", "fleet"], "The fleet's maximum (-N) must be 1 or more, not 0."),
        (
            ["-N", "2", "--on-demand-base", "3", "fleet"],
            "--on-demand-base must be between 0 and -N (2).",
        ),
        (["--types", "big", "fleet"], "Instance types 'big' must be like c7i.2xlarge,c6i.2xlarge."),
        (["--budget", "0", "fleet"], "--budget must be a sum of US$ above 0, not 0.0."),
    ],
    ids=["no nodes", "base over maximum", "bad type", "no budget"],
)
def test_fleet_refuses_bad_settings_in_one_sentence(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and err == f"brenda-run: {message}\n"


def test_launches_are_cut_to_the_spot_vcpu_quota_and_refused_over_it(
    initialised: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    spot_quotas: dict[str, float],
) -> None:
    spot_quotas["L-34B43A08"] = 32  # standard families: 32 vCPUs
    ec2 = boto_client("ec2")
    ec2.request_spot_instances(  # another farm's node already holds 8 of them
        InstanceCount=1,
        LaunchSpecification={"ImageId": "ami-12c6146b", "InstanceType": "c5.2xlarge"},
    )
    types = "c7i.2xlarge,c6i.4xlarge"  # counted at 16 vCPUs each: either may start
    code, out, err = run(capsys, "-N", "40", "--types", types, "fleet")
    assert code == 0, err
    assert (
        "Note: Your spot quota 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests' "
        "(L-34B43A08) is 32 vCPUs in us-east-1, 8 of them in use: room for 1 of the 40 nodes "
        "of 16 vCPUs; raise it in the Service Quotas console (Amazon EC2) or with 'aws "
        "service-quotas request-service-quota-increase --service-code ec2 --quota-code "
        "L-34B43A08 --desired-value 648'." in out
    )
    assert "0 to 1 nodes" in out
    [group] = boto_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["MaxSize"] == 1

    # On-demand nodes do not count against it; a fixed spot launch is cut the same way.
    assert run(capsys, "-N", "3", "--types", types, "--on-demand-base", "2", "fleet")[0] == 0
    code, out, _ = run(capsys, "-N", "5", "-i", "c7i.2xlarge", "-d", "spot")
    assert code == 0 and "room for 3 of the 5 nodes of 8 vCPUs" in out
    assert "Instance count       3" in out

    spot_quotas["L-34B43A08"] = 12  # not one 16-vCPU node fits beside the 8 in use
    code, out, err = run(capsys, "-N", "4", "--types", types, "fleet")
    assert code == 1 and out == ""
    assert err == (
        "brenda-run: Your spot quota 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance "
        "Requests' (L-34B43A08) is 12 vCPUs in us-east-1, 8 of them in use: not one 16-vCPU "
        "node fits; raise it in the Service Quotas console (Amazon EC2) or with 'aws "
        "service-quotas request-service-quota-increase --service-code ec2 --quota-code "
        "L-34B43A08 --desired-value 72'.\n"
    )
    [group] = boto_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["MaxSize"] == 3  # unchanged by the refused launch

    # GPU types count against the G and VT quota, which starts at 0 vCPUs.
    spot_quotas["L-3819A6DF"] = 0
    code, _, err = run(capsys, "-N", "2", "-i", "g5.xlarge", "spot")
    assert code == 1 and "'All G and VT Spot Instance Requests' (L-3819A6DF) is 0" in err
    assert len(ec2.describe_spot_instance_requests()["SpotInstanceRequests"]) == 1


def test_finish_by_sizes_the_fleet_from_the_measured_task_length_and_says_the_cost(
    initialised: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
) -> None:
    boto_client("s3").create_bucket(Bucket="frames")
    sqs = boto_client("sqs")
    url = sqs.create_queue(QueueName="frames")["QueueUrl"]
    for start in range(0, 100, 10):  # 100 tasks waiting
        entries = [{"Id": str(n), "MessageBody": f"frame {n}"} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    code, _, err = run(capsys, "--finish-by", "+3h", "fleet")
    assert code == 1 and "render a few first (brenda-run -N 2 fleet)" in err
    # Ten minutes a task, measured by a node beside the farm's frames.
    measured = Ledger("node-a", Machine("spot", "c7i.2xlarge", "us-east-1a"), None, 0, [
        TaskCost("frame 1", 1, 0, 600, 590, 0.1, 0.0167, "stored"),
        TaskCost("frame 2", 1, 600, 600, 590, 0.1, 0.0167, "stored"),
    ])  # fmt: skip
    boto_client("s3").put_object(
        Bucket="frames", Key="shot1/.brenda/nodes/node-a.json", Body=measured.to_json()
    )

    # 60,000 node-seconds over 3 h less a start (5 min) and one task (10 min): 7 nodes.
    code, out, err = run(capsys, "--finish-by", "+3h", "--budget", "0.0001", "-d", "fleet")
    assert code == 0, err
    assert re.search(r"Finish by .* UTC: 100 tasks of 10m 00s, 16h 40m of node time: 7 node", out)
    assert "about $" in out and "at today's spot prices" in out
    assert "more than the budget of $0.0001: the fleet stops at the budget" in out
    assert "0 to 7 nodes" in out
    code, _, err = run(capsys, "-N", "5", "--finish-by", "+3h", "fleet")
    assert (
        code == 2 and "7 node(s)" in err and "more than -N 5; raise -N or give a later time" in err
    )
    code, _, err = run(capsys, "--finish-by", "+10m", "fleet")
    assert code == 2 and "give a later time" in err
    code, _, err = run(capsys, "--finish-by", "friday", "fleet")
    assert err == (
        "brenda-run: --finish-by 'friday' is not a time: give 2026-11-27T18:00, 18:00 or +6h.\n"
    )
    assert run(capsys, "-N", "10", "--finish-by", "+3h", "fleet")[0] == 0
    [group] = boto_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["MaxSize"] == 7


def test_status_counts_the_nodes_spot_took_back_and_shows_failed_launches() -> None:
    activities = [
        {"Cause": "At 2026-11-26T10:00:00Z an instance was taken out of service in response to "
         "an EC2 instance rebalance recommendation.", "StatusCode": "Successful"},
        {"Cause": "At 2026-11-26T10:05:00Z an instance was taken out of service in response to "
         "an EC2 health check indicating it has been terminated or stopped.",
         "StatusCode": "Successful"},
        {"Cause": "At 2026-11-26T10:06:00Z a user request update of AutoScalingGroup "
         "constraints to min: 0, max: 10, desired: 3 changing the desired capacity from 4 to 3.",
         "StatusCode": "Successful"},
    ]  # fmt: skip
    assert autoscale.interruptions(activities) == 2
    state = autoscale.GroupState(
        GROUP,
        desired=3,
        maximum=10,
        running=2,
        pending=1,
        placements={"c7i.2xlarge in us-east-1a": 2, "c6i.2xlarge in us-east-1b": 1},
        problems=["Could not launch Spot Instances. InsufficientInstanceCapacity."],
        interrupted=2,
    )
    assert state.lines() == [
        f"Fleet {GROUP}: 3 wanted (at most 10), 2 running, 1 starting",
        "     2  c7i.2xlarge in us-east-1a",
        "     1  c6i.2xlarge in us-east-1b",
        "  spot interruptions so far: 2",
        "  failed: Could not launch Spot Instances. InsufficientInstanceCapacity.",
    ]
