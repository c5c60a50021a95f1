# SPDX-License-Identifier: GPL-3.0-or-later
"""Jobs: submit one, and pause, resume, cancel, reprioritise, retry or complete it.

No bpy module use. After every change the farm's self-sizing fleet, if it has one, follows the
jobs active then (a farm with ``WORK_QUEUE`` set follows that queue alone, as its nodes do).
"""

from __future__ import annotations

import logging

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..farm.autoscale import follow_jobs
from ..jobs.registry import Job, JobAction, JobRegistry

log = logging.getLogger(__name__)


def submit(config: Config, job: Job, progress: Progress | None = None) -> Job:
    """Queue the job's tasks and write its record; returns the job as made."""
    registry = JobRegistry(config)
    made = registry.submit(job, progress)
    _follow(config, registry)
    return made


def control(
    config: Config,
    job_id: str,
    action: JobAction,
    *,
    priority: int | None = None,
    progress: Progress | None = None,
) -> str:
    """Apply ``action`` to the job; returns what happened, as a sentence."""
    registry = JobRegistry(config)
    done = registry.control(job_id, action, priority=priority, progress=progress)
    _follow(config, registry)
    return done


def _follow(config: Config, registry: JobRegistry) -> None:
    if not config.serves_jobs:
        return
    try:
        follow_jobs(config, registry.sizing_queues)
    except BrendaError as error:
        log.warning("the farm's fleet does not follow this change: %s", error)
