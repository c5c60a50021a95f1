# SPDX-License-Identifier: GPL-3.0-or-later
"""Jobs: submit one (the scene's, of its project's newest upload), list them, and pause, resume,
cancel, reprioritise, retry or complete one. Cancelling a job sends its ``cancelled`` notification
from here (``shared.jobs.notify``).

No bpy module use. After every change the farm's self-sizing fleet, if it has one, follows the
jobs active then (a farm with ``WORK_QUEUE`` set follows that queue alone, as its nodes do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..core.text import printable
from ..core.urls import S3Url
from ..farm.autoscale import follow_jobs
from ..jobs.notify import JobEvent, event_document, send, warn_unsent
from ..jobs.registry import REPORT_COLUMNS, Job, JobAction, JobRegistry, report_row
from ..jobs.settings import JobSettings
from ..project.scenes import BlendContents, read_blend
from .project import ensure_bucket, latest_version

log = logging.getLogger(__name__)


def read_project_blend(
    config: Config, project: str, blend: str | None, progress: Progress | None = None
) -> BlendContents:
    """The .blend a job of ``project`` renders, as ``read_blend`` reads it; a project outside
    the farm's (FARM_PROJECTS) is refused before it is read."""
    JobRegistry(config).check_project(project)
    return read_blend(config, project, blend, progress)


def checked(
    config: Config,
    job: Job,
    contents: BlendContents | None = None,
    progress: Progress | None = None,
) -> Job:
    """The job, once its project, .blend and scene are found where its nodes will look (a
    UsageError names the one that is not), with the Blender version that saved its .blend;
    ``contents``: its .blend as ``read_project_blend`` read it already."""
    if contents is None:
        contents = read_project_blend(config, job.project, job.settings.blend, progress)
    contents.scene(job.settings.scene)
    if contents.scenes is None:
        log.warning(
            "%s of %s is not read as a .blend here: its scenes are not checked",
            contents.path,
            job.project,
        )
    blender = contents.blender or job.settings.blender
    return replace(job, settings=replace(job.settings, blender=blender))


def submit(
    config: Config,
    job: Job,
    progress: Progress | None = None,
    *,
    contents: BlendContents | None = None,
) -> Job:
    """Check the job (``checked``), queue its tasks and write its record (the outputs' bucket
    made if needed); returns the job as made."""
    job = checked(config, job, contents, progress)
    ensure_bucket(config, config.url("FARM_OUTPUTS", S3Url).bucket)
    registry = JobRegistry(config)
    made = registry.submit(job, progress)
    _follow(config, registry)
    return made


def submit_scene(config: Config, scene: JobSettings, progress: Progress | None = None) -> Job:
    """Submit the add-on's job of a scene: its frames of its .blend's newest upload."""
    version = latest_version(config, scene.project, scene.blend_path)
    return submit(config, scene.farm_job(config, version), progress)


@dataclass(frozen=True)
class JobTable:
    """The farm's jobs as ``brenda-work jobs`` shows them: a row of ``REPORT_COLUMNS`` each,
    newest first."""

    farm: str
    rows: list[tuple[str, ...]]

    def lines(self) -> list[str]:
        if not self.rows:
            return [f"Farm {self.farm} has no jobs: submit one with 'brenda-work submit'."]
        # Every cell is shown, not obeyed: the farm's nodes write the records and ledgers.
        rows = [REPORT_COLUMNS, *(tuple(printable(cell) for cell in row) for row in self.rows)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        return [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]


def job_table(config: Config) -> JobTable:
    """Every job of the farm with its progress, cost and ETA."""
    registry = JobRegistry(config)
    return JobTable(registry.farm, [report_row(registry.report(job)) for job in registry.jobs()])


def control(
    config: Config,
    job_id: str,
    action: JobAction,
    *,
    priority: int | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> str:
    """Apply ``action`` to the job (``force``: missing queues even while the job holds tasks);
    returns what happened, as a sentence."""
    registry = JobRegistry(config)
    job_id = registry.resolve(job_id)
    done = registry.control(job_id, action, priority=priority, progress=progress, force=force)
    if action == JobAction.CANCEL:
        _announce_cancel(config, registry.job(job_id))
    _follow(config, registry)
    return done


def _announce_cancel(config: Config, job: Job) -> None:
    """Whoever cancels a job tells it (no node makes that event); a failure to is said, and the
    job stays cancelled."""
    if not job.notify:
        return
    document = event_document(job, JobEvent.CANCELLED, JobEvent.CANCELLED)
    try:
        send(config, job.notify, document)
    except BrendaError as error:
        warn_unsent(job, JobEvent.CANCELLED, error)


def _follow(config: Config, registry: JobRegistry) -> None:
    if not config.serves_jobs:
        return
    try:
        follow_jobs(config, registry.sizing_queues)
    except BrendaError as error:
        log.warning("the farm's fleet does not follow this change: %s", error)
