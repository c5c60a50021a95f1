# SPDX-License-Identifier: GPL-3.0-or-later
"""The notifications a node sends for a job it serves (``shared.jobs.notify``). No bpy module use.

``finished`` when the node stored a task of the job and no frame of it is left unstored (one
LIST of its output after each stored task, for jobs with ``notify`` only), and ``dead-lettered``
when a task fails on its queue's last try. The node that sends ``finished`` first stores the job's
report (``shared.jobs.report``) as a new object, ``<job>-report.html`` beside its frames, and links
it (``report``). A notification never fails a task: one that cannot be sent is logged, and a
report that cannot be made or stored is a warning, the event sent without its link.
"""

from __future__ import annotations

import logging

from shared.aws import s3
from shared.aws.session import cloud_errors
from shared.aws.sqs import Message
from shared.core.errors import BrendaError, TaskError
from shared.core.progress import Progress
from shared.core.urls import S3Url, parse_url
from shared.jobs.notify import (
    JobEvent,
    error_excerpt,
    event_document,
    finished_details,
    send_once,
    warn_unsent,
)
from shared.jobs.registry import Job, JobRegistry, report_name
from shared.jobs.report import gather, report_html
from shared.tasks.task import decode_task, title

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"


class JobNews:
    """The events of one job that this node makes."""

    def __init__(self, registry: JobRegistry, job: Job) -> None:
        self.registry = registry
        self.job = job

    def stored(self) -> None:
        """A task's outputs are stored and its message deleted: the job finished if no frame
        is left (nodes that store the last frames together each see it; one sends)."""
        job = self.job
        if not job.notify:
            return
        try:
            if self.registry.unstored_frames(job):
                return
            report = self.registry.report(job)
            document = event_document(
                job, JobEvent.FINISHED, JobEvent.FINISHED, **finished_details(report)
            )
            send_once(
                self.registry.config,
                self.registry.s3,
                job,
                JobEvent.FINISHED,
                document,
                adding=self.stored_report,
            )
        except BrendaError as error:
            warn_unsent(job, JobEvent.FINISHED, error)

    def stored_report(self) -> dict[str, str]:
        """Store the job's report beside its frames, once (a report stored already stays):
        ``report``, its URL; nothing, with a warning, where it could not be made or stored."""
        job = self.job
        output = parse_url(job.output, allowed=("s3",))
        assert isinstance(output, S3Url), "a believed record's output is under FARM_OUTPUTS"
        key = output.key(report_name(job))
        try:
            page = report_html(gather(self.registry, job, Progress()))
            with cloud_errors(f"storing job {job.id}'s report"):
                s3.write_new_text(self.registry.s3, output.bucket, key, page, content_type=HTML)
        except (BrendaError, OSError) as error:  # OSError: its scratch folder for thumbnails
            log.warning("job %s's report was not stored: %s", job.id, error)
            return {}
        return {"report": f"s3://{output.bucket}/{key}"}

    def failed(self, message: Message, max_tries: int | None, error: str) -> None:
        """A task failed on try ``message.receive_count``: on its last (``max_tries``), SQS
        dead-letters it at its next receive, and this node says so."""
        job = self.job
        if not job.notify or max_tries is None or message.receive_count < max_tries:
            return
        try:
            task = decode_task(message.body)
            frames: list[int] | None = list(task.chunk.frames())
            what = title(task)
        except TaskError:
            frames, what = None, f"message {message.message_id}"
        marker = f"{JobEvent.DEAD_LETTERED}-{message.message_id}"
        document = event_document(
            job,
            JobEvent.DEAD_LETTERED,
            marker,
            task=what,
            frames=frames,
            tries=message.receive_count,
            error=error_excerpt(error),
        )
        try:
            send_once(self.registry.config, self.registry.s3, job, marker, document)
        except BrendaError as unsent:
            warn_unsent(job, JobEvent.DEAD_LETTERED, unsent)
