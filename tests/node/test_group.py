# SPDX-License-Identifier: GPL-3.0-or-later
"""A node of an Auto Scaling group: the group takes it only once its task is stored, and its
budget stops the fleet (moto's Auto Scaling, a real node)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from brenda_node.budget import BUDGET_CHECK, BUDGET_CHECKERS, check_interval
from brenda_node.group import GROUP_TAG_PATH
from brenda_node.spot import DRAIN_PATH, LIFECYCLE_PATH
from shared.jobs.costs import Ledger, Machine, PricePoint, TaskCost, cost_between
from tests.node.conftest import (
    Farm,
    MetadataServer,
    empty_project,
    logged_seconds_between,
    processes_running,
    script_tasks,
    submit_job,
    wait_for,
)

# A task that sleeps for a length of its own, so that pgrep finds this test's sleep only.
SLOW = f"40.{os.getpid()}"


def protected(scaling: Any, instance: str) -> bool:
    [item] = scaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
    return bool(item["ProtectedFromScaleIn"])


def group_with_a_node(boto_client: Any, metadata: MetadataServer, *, tagged: bool = True) -> str:
    """An Auto Scaling group with one instance, which the metadata server says this node is
    (with its group's name among its tags if ``tagged``)."""
    ec2, scaling = boto_client("ec2"), boto_client("autoscaling")
    ec2.create_launch_template(
        LaunchTemplateName="brenda-test", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="brenda-test",
        LaunchTemplate={"LaunchTemplateName": "brenda-test", "Version": "$Latest"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    [instance] = [
        item["InstanceId"]
        for item in scaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]
    ]
    metadata.values["/latest/meta-data/instance-id"] = instance
    if tagged:
        metadata.values[GROUP_TAG_PATH] = "brenda-test"
    return instance


def test_a_node_its_group_terminates_finishes_its_task_then_lets_the_group_go(
    farm: Farm, metadata: MetadataServer, boto_client: Any
) -> None:
    """No scale-in protection: a node that could set its own could set every node's."""
    instance = group_with_a_node(boto_client, metadata)
    metadata.values[LIFECYCLE_PATH] = "InService"
    farm.push(script_tasks('sleep 4\necho > "$OUTDIR/frame_$START.txt"\n', range(1, 3)))
    node = farm.start_node(
        "a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, METADATA_POLL="1", DONE="poll"
    )
    wait_for(lambda: farm.status("a").get("state") == "rendering", 60, "the task to start")
    metadata.values[LIFECYCLE_PATH] = "Terminated"  # the group's termination hook holds it
    assert node.wait(timeout=60) == 0, farm.console("a")
    assert farm.stored() == ["frame_1.txt"]  # the task in hand finished and was stored ...
    counts = farm.counts()
    assert (counts.pending, counts.in_flight) == (1, 0)  # ... the next one was not taken
    assert not protected(boto_client("autoscaling"), instance)  # the node never sets it
    console = farm.console("a")
    assert "draining (its Auto Scaling group is terminating it)" in console
    assert logged_seconds_between(console, "draining (its Auto", "stored frame_1.txt") > 0
    # It extends the hook's wait and ends it after storing (moto lacks both calls: the hook's
    # wait would end on its own).
    for call in ("extending the group's wait", "letting the group terminate this node"):
        assert call in console or "the group may terminate this node now" in console, call
    assert logged_seconds_between(console, "stored frame_1.txt", "letting the group terminate") >= 0


def test_a_spot_notice_still_stops_a_terminating_node_at_once(
    farm: Farm, metadata: MetadataServer, boto_client: Any
) -> None:
    group_with_a_node(boto_client, metadata)
    farm.push(script_tasks(f"sleep {SLOW}\n", range(1, 2)))
    node = farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, METADATA_POLL="1")
    wait_for(lambda: farm.status("a").get("state") == "rendering", 60, "the task to start")
    metadata.values[LIFECYCLE_PATH] = "Terminated"
    wait_for(lambda: "draining" in farm.console("a"), 30, "the node to see its termination")
    time.sleep(2)  # terminating: the node renders on
    assert node.poll() is None
    metadata.values["/latest/meta-data/spot/instance-action"] = '{"action": "terminate"}'
    assert node.wait(timeout=30) == 0
    assert farm.counts().pending == 1
    console = farm.console("a")
    assert logged_seconds_between(console, "stopping: a spot interruption", "goes back to") < 5
    assert processes_running(SLOW) == []


def test_a_fleet_whose_spending_reaches_its_budget_stops_growing(
    farm: Farm, metadata: MetadataServer, boto_client: Any
) -> None:
    scaling = boto_client("autoscaling")
    group_with_a_node(boto_client, metadata, tagged=False)  # found by DescribeAutoScalingInstances
    scaling.create_or_update_tags(
        Tags=[
            {
                "ResourceId": "brenda-test",
                "ResourceType": "auto-scaling-group",
                "Key": "brenda:budget",
                "Value": "2.50",
                "PropagateAtLaunch": False,
            }
        ]
    )
    # What the farm's nodes spent so far: 2 h of a g5.xlarge at the spot prices of the day.
    history = [PricePoint(0, 0.45), PricePoint(3600, 0.62)]
    spent = cost_between(history, 0, 7200)
    assert spent == pytest.approx(1.07)
    earlier = Ledger("node-0", Machine("spot", "g5.xlarge", "us-east-1a"), None, 0, [
        TaskCost("frames 1", 1, 0, 7200, 7000, 0.45, spent, "stored"),
    ])  # fmt: skip
    (farm.output / ".brenda" / "nodes").mkdir(parents=True)
    ledger = farm.output / ".brenda" / "nodes" / "node-0.json"
    ledger.write_text(earlier.to_json())
    farm.push(script_tasks('echo > "$OUTDIR/frame_$START.txt"\n', range(2, 4)))
    assert farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url).wait(timeout=60) == 0
    [group] = scaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert group["MaxSize"] == 1  # US$ 1.07 of 2.50: the fleet goes on

    # Another node has rendered one task for two hours at $0.75/h: US$ 1.50 that no stored
    # task records yet, which the budget counts before the task ends.
    began = time.time() - 7200
    rendering = Ledger("node-1", earlier.machine, "frames 9", began, [], began, 0.75)
    (farm.output / ".brenda" / "nodes" / "node-1.json").write_text(rendering.to_json())
    farm.push(script_tasks('echo > "$OUTDIR/frame_$START.txt"\n', range(4, 5)))
    node = farm.start_node("b", RUNNING_ON_EC2="1", METADATA_URL=metadata.url)
    assert node.wait(timeout=60) == 0, farm.console("b")
    [group] = scaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert (group["MaxSize"], group["DesiredCapacity"]) == (0, 0)  # US$ 2.57: stop growing
    assert (
        "the farm spent $1.07, and its tasks rendering now will cost about $1.50 more: $2.57 of "
        "its $2.50 budget" in farm.console("b")
    )
    assert "frame_4.txt" in farm.stored()  # its own task finished first
    [instance] = boto_client("ec2").describe_instances()["Reservations"][0]["Instances"]
    assert {"Key": "brenda:drain", "Value": "budget reached"} in instance["Tags"]  # all drain


def budget_of(boto_client: Any, dollars: str) -> None:
    boto_client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": "brenda-test",
                "ResourceType": "auto-scaling-group",
                "Key": "brenda:budget",
                "Value": dollars,
                "PropagateAtLaunch": False,
            }
        ]
    )


@pytest.mark.parametrize(
    ("dollars", "refused"),
    [("5.00", "'dollars' is '5.00', not a number"), (-1e9, "'dollars' is -1000000000.0, not")],
    ids=["dollars as a string", "negative dollars"],
)
def test_a_ledger_that_is_not_one_stops_a_budgeted_fleet_and_says_why(
    farm: Farm, metadata: MetadataServer, boto_client: Any, dollars: object, refused: str
) -> None:
    """A string crashed every node at its budget check; -1e9 hid what the other ledger spent."""
    group_with_a_node(boto_client, metadata, tagged=False)
    budget_of(boto_client, "2.50")
    ledgers = farm.output / ".brenda" / "nodes"
    ledgers.mkdir(parents=True)
    machine = Machine("spot", "g5.xlarge", "us-east-1a")
    spent = Ledger("node-0", machine, None, 0, [TaskCost("frames 1", 1, 0, 7200, 7000, 2.5, 5.0)])
    (ledgers / "node-0.json").write_text(spent.to_json())
    crafted = json.loads(Ledger("node-1", machine, None, 0, [spent.tasks[0]]).to_json())
    crafted["tasks"][0]["dollars"] = dollars
    (ledgers / "node-1.json").write_text(json.dumps(crafted))
    farm.push(script_tasks('echo > "$OUTDIR/frame_$START.txt"\n', range(1, 2)))
    node = farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url)
    assert node.wait(timeout=60) == 0, farm.console("a")
    [group] = boto_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert (group["MaxSize"], group["DesiredCapacity"]) == (0, 0), farm.console("a")
    console = farm.console("a")
    assert "Traceback" not in console
    assert "the fleet's budget could not be checked, so the fleet stops" in console
    assert f"The ledger .brenda/nodes/node-1.json in file://{farm.output}" in console
    assert refused in console
    [instance] = boto_client("ec2").describe_instances()["Reservations"][0]["Instances"]
    assert {"Key": "brenda:drain", "Value": "budget not checkable"} in instance["Tags"]


def test_a_node_of_the_farms_jobs_counts_every_jobs_ledgers_against_the_budget(
    job_farm: Farm,
    metadata: MetadataServer,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    group_with_a_node(boto_client, metadata, tagged=False)
    budget_of(boto_client, "2.50")
    job = submit_job(capsys, empty_project(tmp_path / "shot"))
    machine = Machine("spot", "g5.xlarge", "us-east-1a")
    spent = Ledger("node-0", machine, None, 0, [TaskCost("frames 1", 1, 0, 7200, 7000, 2.5, 5.0)])
    boto_client("s3").put_object(
        Bucket="studio",
        Key=f"frames/{job}/.brenda/nodes/node-0.json",
        Body=spent.to_json().encode(),
    )
    blender = tmp_path / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        "output=$(python3 -c 'import json,sys; print(json.loads(sys.argv[-1])[\"output\"])' "
        '"${@: -1}")\n'
        'echo frame > "${output%%#*}000001.txt"\necho "BRENDA-OUTPUT: ${output%%#*}000001.txt"\n'
    )
    blender.chmod(0o755)
    node = job_farm.start_node(
        "a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, BLENDER=str(blender), WARM_BLENDER="0"
    )
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    [group] = boto_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert (group["MaxSize"], group["DesiredCapacity"]) == (0, 0), job_farm.console("a")
    assert "the farm spent $5.00" in job_farm.console("a")


def test_a_drained_node_finishes_the_task_in_hand_and_takes_no_other(
    farm: Farm, metadata: MetadataServer, boto_client: Any
) -> None:
    scaling = boto_client("autoscaling")
    instance = group_with_a_node(boto_client, metadata)
    farm.push(script_tasks('sleep 3\necho > "$OUTDIR/frame_$START.txt"\n', range(1, 4)))
    node = farm.start_node(
        "a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, METADATA_POLL="1", DONE="poll"
    )
    wait_for(lambda: farm.status("a").get("state") == "rendering", 60, "the task to start")
    # The fleet is stopped: EC2 shows the drain tag in the node's instance metadata.
    metadata.values[DRAIN_PATH] = "stopped by brenda-run stop"
    assert node.wait(timeout=60) == 0, farm.console("a")
    assert farm.stored() == ["frame_1.txt"]  # finished, then no other taken (even in poll mode)
    assert farm.counts().pending == 2
    assert "draining (stopped by brenda-run stop)" in farm.console("a")
    assert not protected(scaling, instance)  # the group may take it


def test_budget_checks_are_spread_over_a_big_fleet() -> None:
    assert check_interval(1) == check_interval(BUDGET_CHECKERS) == BUDGET_CHECK
    # A thousand nodes check a hundred times less often each: the farm checks as often.
    assert check_interval(1000) == 100 * BUDGET_CHECK
    for size in (1, 10, 100, 1000):
        assert size / check_interval(size) <= BUDGET_CHECKERS / BUDGET_CHECK
