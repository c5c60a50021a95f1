# SPDX-License-Identifier: GPL-3.0-or-later
"""One job in full, as ``brenda-work show JOB`` and the add-on's Jobs panel show it: its record's
settings, its project and Blender, its frames stored, missing and failed, and the last error of
each task that failed or was dead-lettered. No bpy module use.

Reading it costs the job's record, its report (``JobRegistry.report``), its dead-letter queue
(up to ``MAX_DEAD`` messages, hidden while read and shown again), one LIST of its failure notes
and a GET for each of the newest ``MAX_NOTES``. Nodes write the notes, so every word of them is
shown, never obeyed.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..aws import s3
from ..aws.s3 import ObjectInfo
from ..aws.session import cloud_errors
from ..core.config import Config
from ..core.errors import BrendaError, TaskError
from ..core.text import printable
from ..core.urls import S3Url, parse_url
from ..outputs.failures import read_failure_note
from ..outputs.store import FAILURES
from ..project.content import ProjectVersion
from ..tasks.task import Task, decode_task, title
from .notify import shown_target
from .registry import Job, JobRegistry, JobReport, frame_names

MAX_DEAD = 1000
"""Dead-lettered tasks read at most."""
MAX_NOTES = 1000
"""Failure notes read at most, the newest first."""
READERS = 8
NO_NOTE = "no error was noted (its node stopped, or lost the task, before it could note one)"


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed, and why it failed the last time."""

    task: str
    """Its frames (and tile), like ``frames 3``; a message that is no task, by its id."""
    frames: tuple[int, ...]
    error: str
    """The last error noted for it, one line, shown not obeyed."""
    where: str
    """Which node noted it, on which try (empty where no note says)."""
    dead: bool
    """Dead-lettered: it failed on every try and waits for ``retry``."""


@dataclass(frozen=True)
class JobDetails:
    """A job in full: its record, its report, and its failed tasks with their last errors."""

    job: Job
    report: JobReport
    failures: list[TaskFailure]
    """Its dead-lettered tasks, and the failed ones whose frames were not stored since, by their
    first frame."""
    notes_unread: int
    """Failure notes left unread beyond ``MAX_NOTES``."""

    @property
    def failed_frames(self) -> list[int]:
        """The frames not stored whose tasks failed."""
        missing = set(self.report.unstored)
        return sorted({frame for item in self.failures for frame in item.frames} & missing)

    def rows(self) -> list[tuple[str, str]]:
        """The job's settings and progress, each a label and its value (not yet printable)."""
        job, report = self.job, self.report
        settings, counts = job.settings, report.counts
        rows = [
            ("state", f"{report.state}, priority {job.priority}"),
            ("created", f"{job.created} by {job.created_by or 'unknown'}"),
            ("project", job.project),
            ("version", project_version(job.project)),
            ("blend", settings.blend or "the project's one .blend at its top"),
            ("scene", settings.scene or "the file's active scene"),
            ("Blender", blender_text(job)),
            ("frames", frames_text(job)),
            ("render", render_text(job)),
            ("output", f"{job.output}{settings.output_name}"),
            *([("notify", shown_target(job.notify))] if job.notify else []),
            (
                "tasks",
                f"{job.tasks} submitted; "
                + (
                    f"{counts.pending} waiting, {counts.in_flight} running, "
                    f"{'-' if counts.dead is None else counts.dead} dead-lettered"
                    if counts is not None
                    else "its queues are gone (a cancelled job's are deleted)"
                ),
            ),
            ("stored", f"{report.stored} of {report.frames} frames"),
            ("missing", counted_frames(report.unstored)),
            ("failed", counted_frames(self.failed_frames)),
        ]
        environment = settings.environment
        if environment is not None:
            rows.insert(7, ("colour", environment_text(job)))
        return rows

    def lines(self) -> list[str]:
        """The job as ``brenda-work show`` prints it."""
        lines = [f"Job {self.job.id} (farm {self.job.farm})"]
        lines += [f"  {label:<9}{printable(value)}" for label, value in self.rows()]
        if self.failures:
            lines.append("Failed tasks, each with its last error:")
            for failure in self.failures:
                state = "dead-lettered" if failure.dead else "failed"
                where = f" ({failure.where})" if failure.where else ""
                lines.append(f"  {failure.task}, {state}: {failure.error}{where}")
        if self.notes_unread:
            lines.append(f"  ({self.notes_unread} older failure notes were not read.)")
        return lines


def job_details(config: Config, job_id: str) -> JobDetails:
    """The job ``job_id`` in full: its record, progress, failures and their errors."""
    registry = JobRegistry(config)
    job = registry.job(job_id)
    return FailureReader(registry).details(job, registry.report(job))


class FailureReader:
    """Reads jobs' failures; keeps the notes it read by ETag, so that reading a job again (the
    add-on's refresh) costs a GET for a new or changed note only."""

    def __init__(self, registry: JobRegistry) -> None:
        self.registry = registry
        self._notes: dict[str, tuple[str, str | None]] = {}
        """Key: its ETag and text (None: gone when read)."""

    def details(self, job: Job, report: JobReport) -> JobDetails:
        """The job in full, with its ``report`` (``JobRegistry.report``)."""
        url = parse_url(job.output, allowed=("s3",))
        assert isinstance(url, S3Url), "a believed record's output is under FARM_OUTPUTS"
        with cloud_errors(f"reading the failure notes of job {job.id}"):
            listed = list(s3.list_objects(self.registry.s3, url.bucket, url.key(FAILURES)))
        listed.sort(key=lambda item: item.modified, reverse=True)
        notes = self._read_notes(url.bucket, listed[:MAX_NOTES])
        dead = []
        counts = report.counts
        if counts is not None and counts.dead:  # a cancelled job's queues are gone
            queue = self.registry.queue(job)
            if queue is not None:
                with cloud_errors(f"reading the dead-lettered tasks of job {job.id}"):
                    dead = queue.dead_letter_messages(min(counts.dead, MAX_DEAD))
        stored = set(frame_names(job).values()) - set(report.unstored)
        failures: dict[str, TaskFailure] = {}
        for message in dead:
            note = notes.pop(message.message_id, None)
            failure = _failure(message.message_id, message.body, note)
            failures[failure.task] = replace(failure, dead=True)
        for message_id, text in notes.items():  # newest first: the first of a task is its last
            failure = _failure(message_id, None, text)
            # A task whose frames were stored since succeeded on a later try; one whose note
            # names no task (an earlier release's) cannot be told, so it is shown.
            later_stored = bool(failure.frames) and set(failure.frames) <= stored
            if failure.task not in failures and not later_stored:
                failures[failure.task] = failure
        ordered = sorted(failures.values(), key=lambda item: (item.frames[:1] or (0,), item.task))
        return JobDetails(job, report, ordered, max(0, len(listed) - MAX_NOTES))

    def _read_notes(self, bucket: str, listed: list[ObjectInfo]) -> dict[str, str]:
        """Message id: its note's text, in the order listed."""
        client = self.registry.s3

        def read(item: ObjectInfo) -> str | None:
            kept = self._notes.get(item.key)
            if kept is not None and kept[0] == item.etag:
                return kept[1]
            return s3.read_text(client, bucket, item.key)

        with cloud_errors("reading the failure notes"), ThreadPoolExecutor(READERS) as pool:
            texts = list(pool.map(read, listed))
        self._notes = {
            item.key: (item.etag, text) for item, text in zip(listed, texts, strict=True)
        }
        return {
            item.key.rsplit("/", 1)[-1].removesuffix(".txt"): text
            for item, text in zip(listed, texts, strict=True)
            if text is not None
        }


def _failure(message_id: str, body: str | None, note: str | None) -> TaskFailure:
    """A failed task from its message's body (a dead-lettered one) or the one its note holds."""
    read = read_failure_note(note) if note is not None else None
    task = _task(body if body is not None else read.body if read is not None else None)
    lines = read.error.splitlines() if read is not None else []
    where = lines.pop()[1:-1] if lines and lines[-1].startswith("(node ") else ""
    return TaskFailure(
        task=title(task) if task is not None else f"message {printable(message_id)}",
        frames=tuple(task.chunk.frames()) if task is not None else (),
        error=_one_line(" ".join(lines)) or NO_NOTE,
        where=_one_line(where),
        dead=False,
    )


def _task(body: str | None) -> Task | None:
    if body is None:
        return None
    try:
        return decode_task(body)
    except TaskError:
        return None


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


def project_version(project: str) -> str:
    """Which version of its project a job renders."""
    try:
        url = parse_url(project, allowed=("s3", "file"))
    except BrendaError:
        return "unknown"
    version = ProjectVersion.at(url) if isinstance(url, S3Url) else None
    if version is not None:
        return f"{version.name[:12]} (an uploaded version, by content)"
    return "none: a node renders the project as it finds it there"


def blender_text(job: Job) -> str:
    settings = job.settings
    if settings.blender is None:
        return "unknown at submit: each node reads it from the file it fetched"
    newer = "or newer" if settings.blender_newer_ok else "only (not a newer one)"
    return f"{settings.blender} {newer}"


def frames_text(job: Job) -> str:
    tiles = "no tiles" if job.tiles == (0, 0) else f"{job.tiles[0]} x {job.tiles[1]} tiles"
    return f"{job.frames}, {job.chunk} a task, {tiles}"


def render_text(job: Job) -> str:
    settings = job.settings
    timeout = f"{settings.timeout} s" if settings.timeout else "the node's TASK_TIMEOUT"
    switches = (
        ("Python", settings.allow_python),
        ("render anyway", settings.render_anyway),
        ("fail one-colour frames", settings.single_colour),
    )
    return ", ".join(
        [
            f"{settings.file_format} on {settings.device}",
            f"timeout {timeout}",
            *(f"{name} {'on' if value else 'off'}" for name, value in switches),
        ]
    )


def environment_text(job: Job) -> str:
    environment = job.settings.environment
    assert environment is not None
    addons = ", ".join(f"{name} {version}" for name, version in environment.addons) or "none"
    return (
        f"view {environment.view or '-'}, look {environment.look or '-'}, display "
        f"{environment.display or '-'}, OCIO {environment.ocio or '-'}; add-ons {addons}; "
        f"a node that differs: {environment.on_mismatch}"
    )


def counted_frames(frames: Iterable[int]) -> str:
    """``4: 3-5, 9`` (how many, then their runs); ``none`` for no frame."""
    numbers = sorted(set(frames))
    if not numbers:
        return "none"
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    text = ", ".join(str(start) if start == end else f"{start}-{end}" for start, end in runs)
    return f"{len(numbers)}: {text}"
