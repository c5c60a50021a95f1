# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run fleet --finish-by TIME``: how many nodes end the farm's work in time, and what
that costs, from the seconds its nodes measured per task or frame. No bpy module use.

The work left is what the farm's ledgers say a stored task (a farm with ``WORK_QUEUE``) or a
stored frame (each active job) took in node time, times the tasks or frames left. The nodes
needed share it over the time to the deadline less STARTUP_SECONDS (a node's boot and the
group's metric delay) and one typical task (the last tasks' tail): the fleet's maximum. The
group then scales as usual: one task per node while the queue is longer than the fleet, then
shrinking as the last tasks end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..jobs.costs import format_dollars, format_duration, job_cost, stored_ledgers
from ..jobs.registry import JobRegistry, JobState
from ..outputs.store import open_store
from ..tasks.queue import status

STARTUP_SECONDS = 300.0


def parse_deadline(text: str, now: datetime) -> datetime:
    """``2026-11-27T18:00`` or ``2026-11-27 18:00`` (local time unless it names a zone),
    ``18:00`` (the next time it is that hour), ``+6h`` / ``+90m`` / ``+2d``."""
    relative = re.fullmatch(r"\+(\d+(?:\.\d+)?)([mhd])", text.strip())
    if relative:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[relative.group(2)]
        return now + timedelta(**{unit: float(relative.group(1))})
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    try:
        if clock:
            local = now.astimezone()
            moment = local.replace(
                hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0
            )
            return moment if moment > local else moment + timedelta(days=1)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None:
        raise UsageError(
            f"--finish-by '{text}' is not a time: give 2026-11-27T18:00, 18:00 or +6h."
        )
    return moment if moment.tzinfo else moment.astimezone()


@dataclass(frozen=True)
class WorkLeft:
    node_seconds: float
    """Node time the work left takes, at the seconds measured so far."""
    typical_task: float
    """Node seconds of one task, measured (the tail a fleet cannot shorten)."""
    what: str
    """The work in words: "120 tasks of 4m 10s"."""


def work_left(config: Config) -> WorkLeft:
    """The farm's work left, measured from its ledgers; raises where nothing was measured yet."""

    if not config.serves_jobs:
        ledgers = stored_ledgers(open_store(config))
        cost = job_cost(ledgers, running=0, now=0.0, stale=0.0)
        counts = status(config)
        tasks = counts.pending + counts.in_flight + counts.delayed if counts else 0
        stored = sum(1 for ledger in ledgers for task in ledger.tasks if task.outcome == "stored")
        if tasks and not stored:
            raise BrendaError(
                "No task of the farm has been stored yet to measure its length: render a few "
                "first (brenda-run -N 2 fleet), then give --finish-by."
            )
        per_task = cost.node_seconds / stored if stored else 0.0
        return WorkLeft(
            tasks * per_task, per_task, f"{tasks:,} tasks of {format_duration(per_task)}"
        )

    registry = JobRegistry(config)
    seconds = 0.0
    typical = 0.0
    frames = 0
    for job in registry.jobs():
        if job.state != JobState.ACTIVE:
            continue
        report = registry.report(job)
        if not report.frames_left:
            continue
        if not report.cost.frames_rendered:
            raise BrendaError(
                f"Job {job.id} has no rendered frame yet to measure its frames' length: render "
                "a few first (brenda-run -N 2 fleet), then give --finish-by."
            )
        per_frame = report.cost.node_seconds / report.cost.frames_rendered
        seconds += per_frame * report.frames_left
        typical = max(typical, per_frame * job.chunk)
        frames += report.frames_left
    return WorkLeft(seconds, typical, f"{frames:,} frames of the active jobs")


@dataclass(frozen=True)
class DeadlinePlan:
    deadline: datetime
    work: WorkLeft
    nodes: int
    dollars_per_hour: float | None
    """The dearest of the types' cheapest spot prices now (a cautious figure)."""

    @property
    def dollars(self) -> float | None:
        if self.dollars_per_hour is None:
            return None
        hours = (self.work.node_seconds + self.nodes * STARTUP_SECONDS) / 3600
        return hours * self.dollars_per_hour

    def summary(self) -> str:
        when = self.deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        price = (
            f"about {format_dollars(self.dollars)} at today's spot prices "
            f"(US$ {self.dollars_per_hour:.4f}/h a node at most)"
            if self.dollars_per_hour is not None
            else "cost unknown (no spot price read)"
        )
        return (
            f"Finish by {when}: {self.work.what}, {format_duration(self.work.node_seconds)} of "
            f"node time: {self.nodes} node(s), {price}"
        )


def plan_deadline(
    work: WorkLeft,
    deadline: datetime,
    now: datetime,
    dollars_per_hour: float | None,
) -> DeadlinePlan:
    seconds = (deadline - now).total_seconds()
    usable = seconds - STARTUP_SECONDS - work.typical_task
    if work.node_seconds == 0:
        raise UsageError("The farm has nothing left to render: --finish-by has nothing to size.")
    if usable <= 0:
        raise UsageError(
            f"--finish-by leaves {format_duration(max(seconds, 0))}, less than a node's start "
            f"({format_duration(STARTUP_SECONDS)}) and one task "
            f"({format_duration(work.typical_task)}): give a later time."
        )
    nodes = max(1, math.ceil(work.node_seconds / usable))
    return DeadlinePlan(deadline, work, nodes, dollars_per_hour)
