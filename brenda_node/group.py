# SPDX-License-Identifier: GPL-3.0-or-later
"""Scale-in protection: a node of an Auto Scaling group protects itself while it holds a task,
so the group shrinking (the queue emptying) never stops a render; idle, it lets the group take
it. No bpy module use. Outside a group (a fixed fleet, the local farm) it does nothing.

The farm's group launches its nodes protected (``NewInstancesProtectedFromScaleIn``), so a fleet
growing by a thousand nodes makes no protection calls; a node calls only when it goes idle and
when it takes work again after that. Its group's name comes from the instance's metadata tags
(``aws:autoscaling:groupName``), and one DescribeAutoScalingGroups at start gives the rest: the
node's own protection, the group's maximum and its budget (see ``brenda_node.budget``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import CloudError
from shared.farm.autoscale import GIVE_BACK_HOOK, described_group

from .spot import MetadataClient

log = logging.getLogger(__name__)

GROUP_TAG_PATH = "/latest/meta-data/tags/instance/aws:autoscaling:groupName"


class ScaleInProtection:
    def __init__(self, config: Config, metadata: MetadataClient) -> None:
        self.config = config
        self.instance: str | None = None
        self.group: str | None = None
        self.described: dict[str, Any] = {}
        """The group as DescribeAutoScalingGroups gave it at the node's start."""
        self.client: Any = None
        self._protected = False
        self._lock = threading.Lock()
        try:
            instance = metadata.get("/latest/meta-data/instance-id")
            group = metadata.get(GROUP_TAG_PATH) if instance is not None else None
        except OSError as error:
            log.warning("scale-in protection off: no instance metadata (%s)", error)
            return
        if instance is None:
            return
        try:
            with cloud_errors("finding this node's Auto Scaling group"):
                self.client = make_client("autoscaling", config)
                self._find_group(instance.strip(), group.strip() if group else None)
        except CloudError as error:
            log.warning("scale-in protection off: %s", error)
            return
        if self.group is not None:
            log.info("node of Auto Scaling group %s: protected while it holds a task", self.group)

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
        self._protected = any(
            item["InstanceId"] == instance and item.get("ProtectedFromScaleIn", False)
            for item in self.described.get("Instances", [])
        )

    def let_go(self) -> None:
        """The group is terminating this node and its task is given back: end the termination
        hook's wait now rather than at its timeout."""
        if self.group is None:
            return
        try:
            with cloud_errors("letting the group terminate this node"):
                self.client.complete_lifecycle_action(
                    LifecycleHookName=GIVE_BACK_HOOK,
                    AutoScalingGroupName=self.group,
                    InstanceId=self.instance,
                    LifecycleActionResult="CONTINUE",
                )
        except CloudError as error:
            log.warning("%s (the group terminates it when the hook times out)", error)
            return
        log.info("the group may terminate this node now")

    def hold(self) -> None:
        """A task is held: the group may not take this node."""
        self._set(True)

    def release(self) -> None:
        """Nothing is held: the group may take this node when it shrinks."""
        self._set(False)

    def _set(self, protected: bool) -> None:
        if self.group is None:
            return
        with self._lock:
            if self._protected == protected:
                return
            try:
                with cloud_errors("setting this node's scale-in protection"):
                    self.client.set_instance_protection(
                        InstanceIds=[self.instance],
                        AutoScalingGroupName=self.group,
                        ProtectedFromScaleIn=protected,
                    )
            except CloudError as error:
                log.warning("%s", error)
                return
            self._protected = protected
