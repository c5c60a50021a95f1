# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's Auto Scaling group: the group as it was at the node's start (its maximum and budget,
for ``brenda_node.budget``), and the termination hook's wait. No bpy module use. Outside a group
(a fixed fleet, the local farm) it does nothing.

A node the group terminates (the group shrinks, capacity rebalancing) is held by the group's
termination hook. The node sees that in its instance metadata, finishes the task in hand, takes
no other, and extends the wait with heartbeats until its outputs are stored; then it ends the
wait. So scaling in never stops a render, and no node needs scale-in protection, which IAM
cannot limit to the node's own instance (see ``shared.aws.iam``). Its group's name comes from the
instance's metadata tags (``aws:autoscaling:groupName``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import CloudError
from shared.farm.autoscale import TERMINATION_HOOK, TERMINATION_WAIT_SECONDS, described_group

from .spot import MetadataClient

log = logging.getLogger(__name__)

GROUP_TAG_PATH = "/latest/meta-data/tags/instance/aws:autoscaling:groupName"
HEARTBEAT_SECONDS = TERMINATION_WAIT_SECONDS / 3


class GroupMember:
    def __init__(self, config: Config, metadata: MetadataClient) -> None:
        self.config = config
        self.instance: str | None = None
        self.group: str | None = None
        self.described: dict[str, Any] = {}
        """The group as DescribeAutoScalingGroups gave it at the node's start."""
        self.client: Any = None
        self.terminating = False
        """The group is terminating the node: its hook holds it while it finishes its task."""
        self._ended = threading.Event()
        try:
            instance = metadata.get("/latest/meta-data/instance-id")
            group = metadata.get(GROUP_TAG_PATH) if instance is not None else None
        except OSError as error:
            log.warning("no Auto Scaling group: no instance metadata (%s)", error)
            return
        if instance is None:
            return
        try:
            with cloud_errors("finding this node's Auto Scaling group"):
                self.client = make_client("autoscaling", config)
                self._find_group(instance.strip(), group.strip() if group else None)
        except CloudError as error:
            log.warning("no Auto Scaling group: %s", error)
            return
        if self.group is not None:
            log.info(
                "node of Auto Scaling group %s: a task in hand finishes when the group takes it",
                self.group,
            )

    def _find_group(self, instance: str, group: str | None) -> None:
        if group is None:  # instance metadata tags off, or a group made without them
            found = self.client.describe_auto_scaling_instances(InstanceIds=[instance])
            groups = [item["AutoScalingGroupName"] for item in found["AutoScalingInstances"]]
            if not groups:
                return
            group = groups[0]
        described = described_group(self.client, group)
        if described is None:
            return
        self.instance, self.group = instance, group
        self.described = described

    def hold_termination(self, stop: threading.Event) -> None:
        """The group is terminating this node: extend the hook's wait (at once, then every
        HEARTBEAT_SECONDS) until ``let_go`` or ``stop``, while the task in hand finishes."""
        if self.group is None or self.terminating:
            return
        self.terminating = True

        def beat() -> None:
            while not self._ended.is_set() and not stop.is_set():
                self._call(
                    "extending the group's wait for this node's task",
                    self.client.record_lifecycle_action_heartbeat,
                )
                self._ended.wait(HEARTBEAT_SECONDS)

        threading.Thread(target=beat, name="brenda-termination-wait", daemon=True).start()

    def let_go(self) -> None:
        """The task in hand is stored or given back: end the hook's wait, so that the group
        terminates the node now rather than at the wait's end."""
        self._ended.set()
        if self.group is None or not self.terminating:
            return
        if self._call(
            "letting the group terminate this node",
            self.client.complete_lifecycle_action,
            LifecycleActionResult="CONTINUE",
        ):
            log.info("the group may terminate this node now")

    def _call(self, action: str, call: Any, **arguments: Any) -> bool:
        try:
            with cloud_errors(action):
                call(
                    LifecycleHookName=TERMINATION_HOOK,
                    AutoScalingGroupName=self.group,
                    InstanceId=self.instance,
                    **arguments,
                )
        except CloudError as error:
            log.warning("%s (the hook's wait ends on its own)", error)
            return False
        return True
