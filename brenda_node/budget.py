# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet's budget, kept by its own nodes: no controller of Brenda's runs anywhere. No bpy.

``brenda-run fleet --budget USD`` tags the farm's Auto Scaling group with the budget. A node of
that group adds up what the farm has spent and what the tasks rendering now will cost by their
end (the ledgers every node keeps beside the frames); once that reaches the budget, the node sets
the group's maximum and wanted size to zero and drains its nodes (``autoscale.stop_fleet``): the
group starts no more nodes, and those rendering finish their task, take no other and go.

A check that cannot read a ledger, or finds one that is not a node's (a task may write anything
its node may), fails closed: the fleet stops as if its budget were reached, and the node says
why; a sum that left the ledger out could hide any spending.

Each check reads every node's ledger, so checks are spread over the fleet: the farm as a whole
checks about BUDGET_CHECKERS times per BUDGET_CHECK seconds whatever its size (each node every
BUDGET_CHECK x group maximum / BUDGET_CHECKERS seconds, the first at a random moment in that
span), and the reads grow with the fleet, not with its square.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import BrendaError
from shared.core.urls import S3Url
from shared.farm.autoscale import BUDGET_TAG, stop_fleet
from shared.jobs.costs import format_dollars, job_cost, stored_ledgers
from shared.jobs.notify import JobEvent, event_document, send_once, warn_unsent
from shared.jobs.registry import Job, JobRegistry, JobState
from shared.outputs.store import S3Store, open_store

from .group import GroupMember

log = logging.getLogger(__name__)

BUDGET_CHECK = 300.0
BUDGET_CHECKERS = 10


def check_interval(group_maximum: int) -> float:
    """Seconds between one node's budget checks in a group of up to ``group_maximum`` nodes."""
    return BUDGET_CHECK * max(1.0, group_maximum / BUDGET_CHECKERS)


class BudgetWatch:
    def __init__(self, config: Config, group: GroupMember) -> None:
        self.config = config
        self.group = group
        self.budget: float | None = None
        self.interval = BUDGET_CHECK
        self._due = 0.0
        self._registry: JobRegistry | None = None
        """Kept between checks: it reads again only the job records that changed."""
        self._s3: Any = None
        described = group.described
        if not described:
            return
        for tag in described.get("Tags", []):
            if tag["Key"] == BUDGET_TAG:
                self.budget = float(tag["Value"])
                log.info("the fleet stops at a budget of %s", format_dollars(self.budget))
        self.interval = check_interval(int(described["MaxSize"]))
        self._due = time.monotonic() + random.uniform(0, self.interval - BUDGET_CHECK)

    def check(self, *, now: float | None = None) -> None:
        """Stop the fleet growing once the farm's spending, with what its running tasks will
        cost, reaches its budget."""
        now = time.monotonic() if now is None else now
        if self.budget is None or now < self._due:
            return
        self._due = now + self.interval
        try:
            spent, running = self.spending()
        except BrendaError as error:
            self._stop(
                "budget not checkable",
                f"the fleet's budget could not be checked, so the fleet stops: {error}",
            )
            return
        if spent + running < self.budget:
            return
        self._stop(
            "budget reached",
            f"the farm spent {format_dollars(spent)}, and its tasks rendering now will cost about "
            f"{format_dollars(running)} more: {format_dollars(spent + running)} of its "
            f"{format_dollars(self.budget)} budget",
        )

    def _stop(self, reason: str, why: str) -> None:
        """Stop the fleet (its nodes drain with ``reason``) and say ``why``; the next check
        tries again if the group cannot be stopped now."""
        try:
            stop_fleet(self.config, reason, self.group.group)
        except BrendaError as error:
            log.warning("%s, but the fleet could not be stopped: %s", why, error)
            return
        log.warning(
            "%s; the fleet starts no more nodes, and those rendering finish their task", why
        )
        if self.budget is not None and self.config.serves_jobs:
            self._announce(self.budget, reason, why)
        self.budget = None

    def _announce(self, budget: float, reason: str, why: str) -> None:
        """Tell every active job that wants to know (its ``notify``) that the fleet stopped:
        once per job and budget, whichever of the fleet's nodes stopped it."""
        try:
            if self._registry is None:
                self._registry = JobRegistry(self.config)
            jobs = self._registry.jobs()
        except BrendaError as error:
            log.warning("the jobs could not be told that the fleet stopped: %s", error)
            return
        marker = f"{JobEvent.BUDGET_STOPPED}-{budget:g}"
        for job in jobs:
            if job.state != JobState.ACTIVE or not job.notify:
                continue
            document = event_document(
                job, JobEvent.BUDGET_STOPPED, marker, budget=budget, reason=reason, why=why
            )
            try:
                send_once(self.config, self._registry.s3, job, marker, document)
            except BrendaError as error:
                warn_unsent(job, JobEvent.BUDGET_STOPPED, error)

    def spending(self) -> tuple[float, float]:
        """What the farm's nodes have recorded spending, and what the tasks they render now will
        cost by their end: every job's ledgers, or those beside RENDER_OUTPUT for a farm with
        one queue."""
        config = self.config
        if not config.serves_jobs:
            ledgers = stored_ledgers(open_store(config))
            cost = job_cost(
                ledgers, running=len(ledgers), now=time.time(), stale=config.integer("TASK_TIMEOUT")
            )
            return cost.dollars, cost.running_dollars
        if self._registry is None:
            self._registry = JobRegistry(config)
        registry = self._registry
        spent = running = 0.0
        for job in registry.jobs():
            cost = job_cost(
                stored_ledgers(self._outputs_of(job, registry.outputs)),
                running=0,
                now=time.time(),
                stale=config.integer("TASK_TIMEOUT"),
            )
            spent += cost.dollars
            running += cost.running_dollars
        return spent, running

    def _outputs_of(self, job: Job, farm_outputs: S3Url) -> S3Store:
        """Where the job's nodes keep their ledgers: its folder of the farm's outputs, which
        its record must name (a record naming another place would hide them)."""
        outputs = S3Url(farm_outputs.bucket, farm_outputs.key(f"{job.id}/"))
        if job.output != str(outputs):
            raise BrendaError(
                f"The record of job {job.id} puts its outputs at {job.output!r}, not at "
                f"{outputs}, where its nodes' ledgers belong."
            )
        if self._s3 is None:
            with cloud_errors("connecting to S3"):
                self._s3 = make_client("s3", self.config)
        return S3Store(self._s3, outputs)
