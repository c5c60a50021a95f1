# SPDX-License-Identifier: GPL-3.0-or-later
"""Scale-in protection: a node of an Auto Scaling group protects itself while it holds a task,
so the group shrinking (the queue emptying) never stops a render; idle, it lets the group take
it. No bpy module use. Outside a group (a fixed fleet, the local farm) it does nothing."""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.aws.session import cloud_errors, make_client
from shared.config import Config
from shared.errors import CloudError

from .spot import MetadataClient

log = logging.getLogger(__name__)


class ScaleInProtection:
    def __init__(self, config: Config, metadata: MetadataClient) -> None:
        self.config = config
        self.instance: str | None = None
        self.group: str | None = None
        self.client: Any = None
        self._protected = False
        self._lock = threading.Lock()
        try:
            instance = metadata.get("/latest/meta-data/instance-id")
        except OSError as error:
            log.warning("scale-in protection off: no instance metadata (%s)", error)
            return
        if instance is None:
            return
        try:
            with cloud_errors("finding this node's Auto Scaling group"):
                self.client = make_client("autoscaling", config)
                found = self.client.describe_auto_scaling_instances(InstanceIds=[instance.strip()])
        except CloudError as error:
            log.warning("scale-in protection off: %s", error)
            return
        for item in found.get("AutoScalingInstances", []):
            self.instance, self.group = item["InstanceId"], item["AutoScalingGroupName"]
            log.info("node of Auto Scaling group %s: protected while it holds a task", self.group)

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
