# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet's budget, kept by its own nodes: no controller of Brenda's runs anywhere. No bpy.

``brenda-run fleet --budget USD`` tags the farm's Auto Scaling group with the budget. A node of
that group adds up what the farm has spent (the ledgers every node keeps beside the frames) at
most every BUDGET_CHECK seconds; once it reaches the budget, the node sets the group's maximum
and wanted size to zero: the group starts no more nodes, and those rendering finish their task
(they are protected from scale-in while they hold one) and then go.
"""

from __future__ import annotations

import logging
import time

from shared.autoscale import BUDGET_TAG
from shared.aws.session import cloud_errors
from shared.config import Config
from shared.costs import format_dollars, job_cost, stored_ledgers
from shared.errors import BrendaError
from shared.jobs import JobRegistry
from shared.store import open_store

from .protection import ScaleInProtection

log = logging.getLogger(__name__)

BUDGET_CHECK = 300.0


class BudgetWatch:
    def __init__(self, config: Config, protection: ScaleInProtection) -> None:
        self.config = config
        self.protection = protection
        self.budget: float | None = None
        self._checked = -float("inf")
        self._registry: JobRegistry | None = None
        """Kept between checks: it reads again only the ledgers that changed."""
        if protection.group is None:
            return
        try:
            with cloud_errors("reading the fleet's budget"):
                groups = protection.client.describe_auto_scaling_groups(
                    AutoScalingGroupNames=[protection.group]
                )["AutoScalingGroups"]
        except BrendaError as error:
            log.warning("the fleet's budget is not known: %s", error)
            return
        for tag in groups[0].get("Tags", []) if groups else []:
            if tag["Key"] == BUDGET_TAG:
                self.budget = float(tag["Value"])
                log.info("the fleet stops at a budget of %s", format_dollars(self.budget))

    def check(self, *, now: float | None = None) -> None:
        """Stop the fleet growing once the farm's spending reaches its budget."""
        now = time.monotonic() if now is None else now
        if self.budget is None or now - self._checked < BUDGET_CHECK:
            return
        self._checked = now
        try:
            spent = self.spent()
            if spent < self.budget:
                return
            with cloud_errors("stopping the fleet at its budget"):
                self.protection.client.update_auto_scaling_group(
                    AutoScalingGroupName=self.protection.group, MaxSize=0, DesiredCapacity=0
                )
        except BrendaError as error:
            log.warning("the fleet's budget could not be checked: %s", error)
            return
        log.warning(
            "the farm spent %s of its %s budget: the fleet starts no more nodes, and those "
            "rendering finish their task",
            format_dollars(spent),
            format_dollars(self.budget),
        )
        self.budget = None

    def spent(self) -> float:
        """What the farm's nodes have recorded spending: every job's ledgers, or the ledgers
        beside RENDER_OUTPUT for a farm with one queue."""
        config = self.config
        if config.get("WORK_QUEUE") is not None:
            ledgers = stored_ledgers(open_store(config))
            return job_cost(ledgers, running=0, now=time.time(), stale=0).dollars
        if self._registry is None:
            self._registry = JobRegistry(config)
        registry = self._registry
        return sum(registry.report(job).cost.dollars for job in registry.jobs())
