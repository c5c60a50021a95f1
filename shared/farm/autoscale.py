# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet that sizes itself, on AWS's own machinery: an EC2 Auto Scaling group per farm. No bpy.

``brenda-<farm>`` is both the launch template (the node image, the farm's instance profile,
IMDSv2 required, the boot script, the farm's tags) and the group: several instance types of
similar size (``INSTANCE_TYPES``), spot with the price-capacity-optimized allocation across every
zone's default subnet, an optional on-demand base, capacity rebalancing on, from 0 to ``-N``
nodes. A target-tracking policy keeps the backlog per node (tasks waiting plus tasks held, from
the queues' CloudWatch metrics, over the nodes in service) at one task per node, as AWS
documents for SQS workers: the group grows with the queue and shrinks to zero when it is empty.
A farm with ``WORK_QUEUE`` follows that queue; a farm of jobs follows its active jobs' queues,
and every submit and job control (pause, resume, cancel, retry, missing, priority) points the
policy at the jobs active then, the MAX_SIZED_QUEUES of highest priority holding tasks (metric
math in a target-tracking policy takes at most ten metrics: two per queue and the nodes); with
no such job the group is taken to zero.
Scaling in never stops a render: a node the group terminates (it shrinks, capacity rebalancing,
a change of types) is held by a termination lifecycle hook; the node sees that in its instance
metadata, finishes the task in hand while it extends the hook's wait, then ends the wait (see
``brenda_node.group``). Nodes are not protected from scale-in: a node that could set its own
protection could set every node's (IAM has no condition on the instance), see ``aws.iam``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..aws import ec2, iam
from ..aws.session import cloud_errors, make_client
from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..jobs.registry import JobRegistry
from .fleet import cheapest_spot_price, node_image, require_profile, security_group_id, user_data
from .quotas import fit_spot_quota

POLICY = "brenda-backlog-per-node"
TASKS_PER_NODE = 1.0
"""The backlog per node the scaling policy keeps: tasks waiting plus tasks held, per node."""
TAGGED_AT_ONCE = 1000
MAX_SIZED_QUEUES = 4
BUDGET_TAG = "brenda:budget"
TERMINATION_HOOK = "brenda-give-back"  # named when nodes gave their task back in the wait
ACTIVITIES_READ = 100
INTERRUPTED = re.compile(
    r"rebalance recommendation|indicating it has been terminated or stopped|spot instance "
    r"interruption",
    re.IGNORECASE,
)
"""How Auto Scaling words the cause of replacing a node that spot took back: after a rebalance
recommendation (capacity rebalancing), else once EC2 reports it gone."""


TERMINATION_WAIT_SECONDS = 600
"""How long the hook holds a terminating node between its heartbeats (the node sends one every
third of that while it finishes its task); a node that died is terminated after this."""


def group_name(farm: str) -> str:
    return f"brenda-{farm}"


@dataclass(frozen=True)
class FleetPlan:
    farm: str
    types: tuple[str, ...]
    maximum: int
    on_demand_base: int
    image: str
    key_name: str
    security_group: str
    profile: str
    user_data: str
    queues: tuple[str, ...]
    """The queues whose backlog sizes the group: WORK_QUEUE, or the active jobs' queues."""
    jobs: bool
    """A farm of jobs: its submits and job controls point the policy at its jobs' queues."""
    budget: float | None = None
    """US$ the farm may spend; its nodes stop the fleet growing once it has."""

    def summary(self) -> list[str]:
        base = f", {self.on_demand_base} of them on-demand" if self.on_demand_base else ""
        if not self.jobs:
            followed = f"sqs://{self.queues[0]}"
        elif self.queues:
            followed = f"{len(self.queues)} active job(s) ({', '.join(self.queues)})"
        else:
            followed = "the farm's active jobs (none now: 0 nodes until one is submitted)"
        scaling = f"follows the backlog of {followed}: {TASKS_PER_NODE:g} task(s) per node"
        budget = f"; it stops at US$ {self.budget:.2f} spent" if self.budget else ""
        return [
            f"Auto Scaling group {group_name(self.farm)}: 0 to {self.maximum} nodes{base}{budget}",
            f"Types                {', '.join(self.types)} (spot, price-capacity-optimized)",
            f"Image                {self.image}",
            f"Size                 {scaling}",
        ]


def described_group(scaling: Any, group: str) -> dict[str, Any] | None:
    """The group as DescribeAutoScalingGroups gives it; None if there is no such group."""
    found = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return dict(found["AutoScalingGroups"][0]) if found["AutoScalingGroups"] else None


def fleet_types(config: Config, types: str | None) -> tuple[str, ...]:
    """The instance types to mix: ``types`` (--types), else INSTANCE_TYPES, else INSTANCE_TYPE."""
    listed = types or config.optional_text("INSTANCE_TYPES") or config.text("INSTANCE_TYPE")
    chosen = tuple(item.strip() for item in str(listed).split(",") if item.strip())
    if not chosen or any("." not in item for item in chosen):
        raise UsageError(f"Instance types '{listed}' must be like c7i.2xlarge,c6i.2xlarge.")
    return chosen


def cautious_spot_price(config: Config, types: Sequence[str]) -> float | None:
    """The dearest of the types' cheapest spot prices now, US$ per hour; None if none is known."""

    known = [found[0] for name in types if (found := cheapest_spot_price(config, name))]
    return max(known) if known else None


def plan_fleet(
    config: Config,
    *,
    maximum: int,
    types: str | None,
    on_demand_base: int,
    image: str | None,
    budget: float | None = None,
) -> FleetPlan:

    if maximum < 1:
        raise UsageError(f"The fleet's maximum (-N) must be 1 or more, not {maximum}.")
    if budget is not None and not budget > 0:
        raise UsageError(f"--budget must be a sum of US$ above 0, not {budget}.")
    if not 0 <= on_demand_base <= maximum:
        raise UsageError(f"--on-demand-base must be between 0 and -N ({maximum}).")
    chosen = fleet_types(config, types)
    farm = config.text("FARM")
    queue = config.work_queue()
    if queue is not None:
        queues: tuple[str, ...] = (queue.queue,)
    else:
        queues = tuple(JobRegistry(config).sizing_queues(MAX_SIZED_QUEUES))
    return FleetPlan(
        farm=farm,
        types=chosen,
        maximum=maximum,
        on_demand_base=on_demand_base,
        image=node_image(config, image),
        key_name=config.text("SSH_KEY_NAME"),
        security_group=config.text("SECURITY_GROUP"),
        profile=iam.role_name(farm),
        user_data=user_data(config),
        queues=queues,
        jobs=queue is None,
        budget=budget,
    )


def fit_quota(config: Config, plan: FleetPlan) -> tuple[FleetPlan, tuple[str, ...]]:
    """The plan with its spot nodes cut to what the account's spot vCPU quota leaves room for,
    and what to say about it; raises when not one spot node fits."""
    spot = plan.maximum - plan.on_demand_base
    if spot == 0:
        return plan, ()
    fit = fit_spot_quota(config, plan.types, spot)
    return replace(plan, maximum=plan.on_demand_base + fit.nodes), fit.notes


def backlog_per_node(queues: Sequence[str], group: str) -> dict[str, Any]:
    """Target tracking on (visible + in flight, over ``queues``) / nodes in service."""

    def metric(ident: str, namespace: str, name: str, dimension: tuple[str, str]) -> dict[str, Any]:
        return {
            "Id": ident,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
                },
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    metrics: list[dict[str, Any]] = []
    for index, queue in enumerate(queues):
        metrics += [
            metric(
                f"waiting{index}",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                ("QueueName", queue),
            ),
            metric(
                f"held{index}",
                "AWS/SQS",
                "ApproximateNumberOfMessagesNotVisible",
                ("QueueName", queue),
            ),
        ]
    tasks = " + ".join(item["Id"] for item in metrics)
    return {
        "TargetValue": TASKS_PER_NODE,
        "CustomizedMetricSpecification": {
            "Metrics": [
                *metrics,
                metric(
                    "nodes",
                    "AWS/AutoScaling",
                    "GroupInServiceInstances",
                    ("AutoScalingGroupName", group),
                ),
                {
                    "Id": "backlog_per_node",
                    "Expression": f"({tasks}) / MAX([nodes, 1])",
                    "Label": "Tasks per node",
                    "ReturnData": True,
                },
            ]
        },
    }


def _follow(scaling: Any, group: str, queues: Sequence[str]) -> None:
    """Size the group on the backlog of ``queues``; with none, no policy and no nodes."""
    if queues:
        scaling.put_scaling_policy(
            AutoScalingGroupName=group,
            PolicyName=POLICY,
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration=backlog_per_node(queues, group),
        )
        return
    policies = scaling.describe_policies(AutoScalingGroupName=group, PolicyNames=[POLICY])
    if policies["ScalingPolicies"]:
        scaling.delete_policy(AutoScalingGroupName=group, PolicyName=POLICY)
    scaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0)


def follow_jobs(config: Config, sizing_queues: Callable[[int], list[str]]) -> bool:
    """Point the farm's group at its active jobs' queues, as ``sizing_queues(limit)`` lists
    them (after a submit or a job control); False if the farm has no group."""
    group = group_name(config.text("FARM"))
    with cloud_errors(f"sizing the Auto Scaling group {group} on the farm's jobs"):
        scaling = make_client("autoscaling", config)
        if described_group(scaling, group) is None:
            return False
        _follow(scaling, group, sizing_queues(MAX_SIZED_QUEUES))
    return True


def ensure_fleet(config: Config, plan: FleetPlan) -> str:
    """Make or update the farm's launch template, group and scaling policy; returns the group."""

    group = group_name(plan.farm)
    client = ec2.connect(config)
    with cloud_errors(f"making the Auto Scaling group {group}"):
        require_profile(config, plan.profile)
        data = {
            "ImageId": plan.image,
            "KeyName": plan.key_name,
            "SecurityGroupIds": [security_group_id(client, plan.security_group)],
            "IamInstanceProfile": {"Name": plan.profile},
            "UserData": base64.b64encode(plan.user_data.encode()).decode(),
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpEndpoint": "enabled",
                "InstanceMetadataTags": "enabled",  # nodes read their group's name there
            },
            "TagSpecifications": ec2.farm_tags(plan.farm, "instance"),
        }
        existing = client.describe_launch_templates(
            Filters=[{"Name": "launch-template-name", "Values": [group]}]
        )["LaunchTemplates"]
        if existing:
            client.create_launch_template_version(LaunchTemplateName=group, LaunchTemplateData=data)
        else:
            client.create_launch_template(
                LaunchTemplateName=group,
                LaunchTemplateData=data,
                TagSpecifications=ec2.farm_tags(plan.farm, "launch-template"),
            )
        subnets = [
            subnet["SubnetId"]
            for subnet in client.describe_subnets(
                Filters=[{"Name": "default-for-az", "Values": ["true"]}]
            )["Subnets"]
        ]
        if not subnets:
            raise BrendaError("The region has no default subnets for the fleet to spread over.")
        scaling = make_client("autoscaling", config)
        settings: dict[str, Any] = {
            "AutoScalingGroupName": group,
            "MinSize": 0,
            "MaxSize": plan.maximum,
            "CapacityRebalance": True,
            "NewInstancesProtectedFromScaleIn": False,  # groups made before kept it on
            "VPCZoneIdentifier": ",".join(subnets),
            "MixedInstancesPolicy": {
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateName": group,
                        "Version": "$Latest",
                    },
                    "Overrides": [{"InstanceType": name} for name in plan.types],
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": plan.on_demand_base,
                    "OnDemandPercentageAboveBaseCapacity": 0,
                    "SpotAllocationStrategy": "price-capacity-optimized",
                },
            },
        }
        if described_group(scaling, group) is not None:
            scaling.update_auto_scaling_group(**settings)
        else:
            tags = [
                {"Key": ec2.FARM_TAG, "Value": plan.farm, "PropagateAtLaunch": True},
                {"Key": ec2.ROLE_TAG, "Value": "node", "PropagateAtLaunch": True},
            ]
            scaling.create_auto_scaling_group(**{"DesiredCapacity": 0, **settings}, Tags=tags)
        scaling.put_lifecycle_hook(
            LifecycleHookName=TERMINATION_HOOK,
            AutoScalingGroupName=group,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=TERMINATION_WAIT_SECONDS,
            DefaultResult="CONTINUE",
        )
        budget_tag = {
            "ResourceId": group,
            "ResourceType": "auto-scaling-group",
            "Key": BUDGET_TAG,
            "PropagateAtLaunch": False,
        }
        if plan.budget is not None:
            scaling.create_or_update_tags(Tags=[{**budget_tag, "Value": f"{plan.budget:.2f}"}])
        else:
            scaling.delete_tags(Tags=[budget_tag])
        _follow(scaling, group, plan.queues)
    return group


def stop_fleet(config: Config, reason: str, group: str | None = None) -> list[str] | None:
    """Take the farm's group to no nodes and drain them: each is tagged ``brenda:drain`` with
    ``reason``, which it reads in its instance metadata, finishes the task it renders, takes no
    other and lets the group take it (a protected node busy with the queue would otherwise
    render on). ``group``: the farm's unless named. Returns the nodes drained; None if there is
    no such group."""

    group = group or group_name(config.text("FARM"))
    with cloud_errors(f"stopping the Auto Scaling group {group}"):
        scaling = make_client("autoscaling", config)
        described = described_group(scaling, group)
        if described is None:
            return None
        scaling.update_auto_scaling_group(
            AutoScalingGroupName=group, MinSize=0, MaxSize=0, DesiredCapacity=0
        )
        instances = [item["InstanceId"] for item in described["Instances"]]
        client = ec2.connect(config)
        for start in range(0, len(instances), TAGGED_AT_ONCE):
            client.create_tags(
                Resources=instances[start : start + TAGGED_AT_ONCE],
                Tags=[{"Key": ec2.DRAIN_TAG, "Value": reason}],
            )
    return instances


@dataclass(frozen=True)
class GroupState:
    """The farm's group as ``brenda-run status`` shows it."""

    name: str
    desired: int
    maximum: int
    running: int
    pending: int
    placements: dict[str, int]
    """Nodes per "type in zone"."""
    problems: list[str]
    """The latest failed scaling activities' messages (capacity, quota)."""
    interrupted: int
    """Nodes the group replaced after a spot interruption or rebalance recommendation, among
    its latest ACTIVITIES_READ activities."""

    def lines(self) -> list[str]:
        """What ``brenda-run status`` and the add-on's panel show of it."""
        return [
            f"Fleet {self.name}: {self.desired} wanted (at most {self.maximum}), "
            f"{self.running} running, {self.pending} starting",
            *(f"  {count:>4}  {where}" for where, count in self.placements.items()),
            f"  spot interruptions so far: {self.interrupted}",
            *(f"  failed: {problem}" for problem in self.problems),
        ]


def interruptions(activities: list[dict[str, Any]]) -> int:
    """Scaling activities that replaced a node spot took back."""
    return sum(bool(INTERRUPTED.search(str(item.get("Cause", "")))) for item in activities)


def group_state(config: Config) -> GroupState | None:
    group = group_name(config.text("FARM"))
    with cloud_errors(f"reading the Auto Scaling group {group}"):
        scaling = make_client("autoscaling", config)
        described = described_group(scaling, group)
        if described is None:
            return None
        activities = scaling.describe_scaling_activities(
            AutoScalingGroupName=group, MaxRecords=ACTIVITIES_READ
        ).get("Activities", [])
    instances = described.get("Instances", [])
    placements: dict[str, int] = {}
    for item in instances:
        where = f"{item.get('InstanceType', '?')} in {item['AvailabilityZone']}"
        placements[where] = placements.get(where, 0) + 1
    return GroupState(
        name=group,
        desired=int(described["DesiredCapacity"]),
        maximum=int(described["MaxSize"]),
        running=sum(item["LifecycleState"] == "InService" for item in instances),
        pending=sum(item["LifecycleState"].startswith("Pending") for item in instances),
        placements=dict(sorted(placements.items())),
        problems=[
            str(activity.get("StatusMessage") or activity.get("Description"))
            for activity in activities
            if activity.get("StatusCode") in ("Failed", "Cancelled")
        ][:3],
        interrupted=interruptions(activities),
    )
