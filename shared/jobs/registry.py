# SPDX-License-Identifier: GPL-3.0-or-later
"""Jobs: several .blend files rendering on one farm at once, with no server of Brenda's own.

No bpy module use. The registry lives on AWS itself:

- Each job's tasks wait in an SQS queue of their own, ``<farm>-job-<id>``, with its dead-letter
  queue ``<farm>-job-<id>-dead``. SQS has no priorities inside a queue, but a node can choose
  which queue to take from; cancelling deletes one job's queue and touches no other job.
- Each job has a record, JSON at ``FARM_OUTPUTS/.brenda/jobs/<id>.json``: the project, the .blend
  and scene, the frames and how they are cut, where its frames go (``FARM_OUTPUTS/<id>/``), its
  render settings, state (submitting, active, paused, cancelled; ``done`` is reckoned from its
  output and queue where it is shown, never recorded), priority, who created it and when.
  Control commands rewrite one record. A node lists the records' prefix (one request) and reads
  only records whose ETag changed, so an idle check costs the same one LIST for 1 or 100 jobs;
  queue tags would cost a ListQueueTags call per queue per node, a throttled control-plane call.

Template tasks (``brenda-work push -T``) stay in the farm's ``WORK_QUEUE``: a job of their own.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Generic, TypeVar

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..aws.sqs import QueueCounts, WorkQueue
from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..core.progress import Progress
from ..core.text import printable
from ..core.urls import NotifyTarget, S3Url, parse_notify, parse_url
from ..outputs.store import LEDGERS, REPORT_SUFFIX, VIDEO_SUFFIX
from ..project.version import blend_name
from ..tasks.queue import send_tasks
from ..tasks.task import (
    MAX_TASKS,
    FrameChunk,
    RenderSettings,
    RenderTask,
    chunk_frames,
    encode_task,
    frame_file_names,
    parse_frame_list,
    render_tasks,
    tile_grid,
)
from .costs import JobCost, Ledger, format_dollars, format_duration, job_cost

log = logging.getLogger(__name__)
Parsed = TypeVar("Parsed")

RECORDS = ".brenda/jobs/"
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
MAX_QUEUE_NAME = 80
MAX_JOB_QUEUE = MAX_QUEUE_NAME - len("-dead")
JOB_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z", re.IGNORECASE)
"""What ``new_job_id`` makes: a name safe in a queue's name, a key and a folder."""
CLOCK_SKEW = timedelta(minutes=10)
"""How far ahead of this machine's clock a record's creation may be (another's clock)."""


class JobState(StrEnum):
    """Where a job stands; its record holds the value, so old records read the same."""

    SUBMITTING = "submitting"
    """Its tasks are being queued (or their submit was interrupted): no node serves it."""
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    """Shown, never recorded: an active job with every frame stored and no task waiting or
    running. Reckoned where it is shown, from its output and queue, as nodes write no record."""


class JobHoldsTasksError(BrendaError):
    """Why ``missing`` queues nothing: the job still holds tasks (``held``: how many, where)."""

    def __init__(self, job_id: str, held: str) -> None:
        self.job_id = job_id
        self.held = held
        super().__init__(self.sentence())

    def sentence(self, forcing: str | None = None) -> str:
        """The refusal, with a front-end's way to queue the frames anyway (``forcing``)."""
        return (
            f"Job {self.job_id} still holds tasks ({self.held}) whose frames are not missing: "
            "queue the missing frames once they are done (retry puts dead-lettered ones back)"
            + (f", or {forcing}" if forcing else "")
            + "."
        )


class JobAction(StrEnum):
    """What ``brenda-work`` and the add-on can do to a job."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    PRIORITY = "priority"
    RETRY = "retry"
    MISSING = "missing"


@dataclass(frozen=True)
class Job:
    """A job's record: what it renders, where, and how it stands."""

    id: str
    farm: str
    project: str
    """The packed project's URL (``s3://`` or ``file://``)."""
    frames: str
    """The frame list, like ``1-240`` or ``1-10,15``."""
    output: str
    """Where its frames go: ``FARM_OUTPUTS/<id>/``."""
    settings: RenderSettings = field(default_factory=RenderSettings)
    """The render settings of its tasks (in its record as ``dataclasses.asdict`` writes them)."""
    chunk: int = 1
    tiles: tuple[int, int] = (0, 0)
    priority: int = 0
    state: JobState = JobState.ACTIVE
    tasks: int = 0
    created_by: str = ""
    created: str = ""
    video: bool = False
    """The node that stores its last frame encodes the shot into ``<output><id>.mp4``."""
    notify: str = ""
    """Where its notifications go (``NOTIFY``): ``sns://TOPIC_ARN``, a webhook, or none."""

    @property
    def queue(self) -> str:
        return queue_name(self.farm, self.id)

    def render_tasks(self) -> Collection[RenderTask]:
        chunks = chunk_frames(parse_frame_list(self.frames), self.chunk)
        return render_tasks(self.settings, chunks, tile_grid(*self.tiles))

    def to_json(self) -> str:
        document = asdict(self)
        if not self.video:  # a record without it reads the same, to nodes before --video too
            del document["video"]
        if not self.notify:  # a record without one reads the same to nodes that know no notify
            del document["notify"]
        return json.dumps(document, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Job:
        """A record as ``to_json`` wrote it, every field of its type and in its range; ValueError
        or TypeError names the field that is not (a TaskError, its frames or settings)."""
        document = json.loads(text)
        if not isinstance(document, dict):
            raise TypeError("it is not a JSON object")
        unknown = sorted(set(document) - {item.name for item in fields(cls)})
        if unknown:
            raise ValueError(f"it has unknown fields ({', '.join(unknown)})")
        tiles = document.get("tiles", [0, 0])
        if not (isinstance(tiles, list) and len(tiles) == 2):
            raise TypeError("tiles is not a pair of tile counts")
        job = cls(
            id=_field(document, "id", str),
            farm=_field(document, "farm", str),
            project=_field(document, "project", str),
            frames=_field(document, "frames", str),
            output=_field(document, "output", str),
            settings=RenderSettings.from_dict(document.get("settings", {})),
            chunk=_count(document, "chunk", 1, 1, MAX_TASKS),
            tiles=(_count(tiles, 0, 0, 0, MAX_TILES), _count(tiles, 1, 0, 0, MAX_TILES)),
            priority=_count(document, "priority", 0, -MAX_PRIORITY, MAX_PRIORITY),
            state=JobState(_field(document, "state", str, JobState.ACTIVE)),
            tasks=_count(document, "tasks", 0, 0, 2**31),
            created_by=_field(document, "created_by", str, ""),
            created=_field(document, "created", str),
            video=_field(document, "video", bool, False),
            notify=_field(document, "notify", str, ""),
        )
        if job.state == JobState.DONE:
            raise ValueError("its state is done, which is reckoned, not recorded")
        parse_frame_list(job.frames)
        tile_grid(*job.tiles)
        _moment(job.created)
        return job


MAX_PRIORITY = 1_000_000
MAX_TILES = 64
"""Tiles across or down a frame at most in a record (the grid is made on reading it)."""


def _field(document: Any, name: Any, kind: type[Parsed], default: Parsed | None = None) -> Parsed:
    """``document[name]`` (``default`` when absent and one is given), of type ``kind``."""
    if default is not None and name not in document:
        return default
    value = document[name]
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise TypeError(f"{name} is not {'text' if kind is str else kind.__name__}")
    return value


def _count(document: Any, name: Any, default: int, lowest: int, highest: int) -> int:
    """``document[name]``, a whole number from ``lowest`` to ``highest`` (``default`` when
    absent from an object)."""
    value = _field(document, name, int, default if isinstance(document, dict) else None)
    if not lowest <= value <= highest:
        raise ValueError(f"{name} is {value}, not from {lowest} to {highest}")
    return value


def _moment(created: str) -> datetime:
    """A record's creation time: ISO 8601 with its time zone."""
    try:
        moment = datetime.fromisoformat(created)
    except ValueError as error:
        raise ValueError(f"created '{created}' is not an ISO 8601 time") from error
    if moment.tzinfo is None:
        raise ValueError(f"created '{created}' has no time zone")
    return moment


def _lies_under(project: str, projects: S3Url) -> bool:
    """Whether the project URL names an object or folder under the ``projects`` prefix."""
    try:
        url = parse_url(project, allowed=("s3",))
    except BrendaError:
        return False
    assert isinstance(url, S3Url)
    inside = url.bucket == projects.bucket and url.prefix.startswith(projects.prefix)
    return inside and ".." not in PurePosixPath(url.prefix).parts


def farm_topics(farm: str) -> str:
    """How the names of the farm's SNS topics start: the only topics its nodes may publish to."""
    return f"brenda-{farm}-"


def check_notify(notify: str, farm: str) -> NotifyTarget:
    """Where a job of ``farm`` may send its notifications: a topic of the farm's (a node sends
    them, and may publish to those only) or a webhook; ValueError says why not."""
    try:
        target = parse_notify(notify)
    except BrendaError as error:
        raise ValueError(f"its notify target is wrong: {str(error).rstrip('.')}") from error
    name = target.topic_name
    if name is not None and not name.startswith(farm_topics(farm)):
        raise ValueError(
            f"its notify topic {name} is not one of farm {farm}'s (named {farm_topics(farm)}...)"
        )
    return target


def queue_name(farm: str, job_id: str) -> str:
    return f"{farm}-job-{job_id}"


def new_job_id(farm: str, name: str) -> str:
    """A short, readable id: the .blend's name (``name``) and four random hex digits, like
    ``shot1-7f3a`` (``JobRegistry.new_id`` makes sure no job has it yet)."""
    suffix = secrets.token_hex(2)
    room = MAX_QUEUE_NAME - len(queue_name(farm, "")) - len(f"-{suffix}") - len("-dead")
    if room < 1:
        raise UsageError(f"The farm name '{farm}' is too long to name its jobs' queues.")
    stem = _NOT_NAME.sub("-", name).lower()[:room].strip("-_") or "job"[:room]
    return f"{stem}-{suffix}"


ID_TRIES = 20
"""Ids tried for a new job before giving up (one in 65,536 is taken per job of its name)."""
SHOWN_IDS = 10
"""Job ids an unknown or ambiguous prefix's error names at most."""


def _outputs(config: Config) -> S3Url:
    outputs = config.url("FARM_OUTPUTS", S3Url)
    return outputs


class ReadByEtag(Generic[Parsed]):
    """JSON objects read from S3 and kept with their ETag: one is read again only once it
    changed; one that does not parse is skipped with one warning a version."""

    def __init__(self, what: str, parse: Callable[[str, str], Parsed]) -> None:
        self.what = what
        self.parse = parse
        """Reads an object from its key and text."""
        self._kept: dict[str, tuple[str, Parsed | None]] = {}
        """Key: its ETag and what it read as (None: skipped)."""

    def read(self, client: Any, bucket: str, key: str, etag: str) -> tuple[Parsed, bool] | None:
        """The object at ``key`` and whether it was read now (new or changed)."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] == etag:
            return None if kept[1] is None else (kept[1], False)
        text = s3.read_text(client, bucket, key)
        if text is None:
            return None
        try:
            parsed = self.parse(key, text)
        except (ValueError, TypeError, KeyError, RecursionError, BrendaError) as error:
            # Said once per version of the object: a node asks every few seconds.
            log.warning("%s %s is skipped: %s", self.what, printable(key), printable(str(error)))
            self._kept[key] = (etag, None)
            return None
        self._kept[key] = (etag, parsed)
        return parsed, True

    def keep_only(self, keys: set[str]) -> None:
        """Forget the objects that are gone."""
        self._kept = {key: kept for key, kept in self._kept.items() if key in keys}


class JobRegistry:
    """The farm's job records and queues."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.farm = config.text("FARM")
        self.outputs = _outputs(config)
        with cloud_errors("connecting to AWS"):
            self.s3 = make_client("s3", config)
            self.sqs = make_client("sqs", config, pool=16)
        self.projects = config.optional_url("FARM_PROJECTS", S3Url)
        self._records = ReadByEtag("job record", self._read_record)
        self._ledgers = ReadByEtag("ledger", lambda _key, text: Ledger.from_json(text))
        self.changed: set[str] = set()
        """The jobs whose records were new or changed at the last ``jobs()``."""

    def _record_key(self, job_id: str) -> str:
        return self.outputs.key(f"{RECORDS}{job_id}.json")

    def _read_record(self, key: str, text: str) -> Job:
        """The job whose record at ``key`` is ``text``, believed only once it keeps to what
        Brenda writes: anyone who may write a record (a node, so a hostile task) would otherwise
        send the farm's nodes anywhere. ValueError, TypeError or TaskError says why not."""
        job = Job.from_json(text)
        if not JOB_ID.match(job.id) or len(queue_name(self.farm, job.id)) > MAX_JOB_QUEUE:
            raise ValueError(f"its id '{job.id}' is not a job id of farm {self.farm}")
        if key != self._record_key(job.id):
            raise ValueError(f"its id '{job.id}' is not the one its key names")
        if job.output != self.output_of(job.id):
            raise ValueError(f"its output {job.output} is not {self.output_of(job.id)}")
        if self.projects is not None and not _lies_under(job.project, self.projects):
            raise ValueError(f"its project {job.project} is not under {self.projects}")
        if _moment(job.created) > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError(f"it was created in the future ({job.created})")
        if job.notify:
            check_notify(job.notify, self.farm)
        return job

    def output_of(self, job_id: str) -> str:
        """Where a job's frames go: ``FARM_OUTPUTS/<id>/``."""
        return f"s3://{self.outputs.bucket}/{self.outputs.prefix}{job_id}/"

    def write(self, job: Job) -> None:
        with cloud_errors(f"writing the record of job {job.id}"):
            s3.write_text(self.s3, self.outputs.bucket, self._record_key(job.id), job.to_json())

    def jobs(self) -> list[Job]:
        """Every job of the farm, newest first; records unchanged since the last call are not
        read again."""
        prefix = self.outputs.key(RECORDS)
        jobs: list[Job] = []
        self.changed = set()
        with cloud_errors(f"listing the jobs of farm {self.farm}"):
            # A farm's outputs bucket is made by its first submit: before, it has no jobs.
            listed = s3.objects_if_bucket(self.s3, self.outputs.bucket, prefix)
            for item in listed:
                read = self._records.read(self.s3, self.outputs.bucket, item.key, item.etag)
                if read is not None:
                    jobs.append(read[0])
                    if read[1]:
                        self.changed.add(read[0].id)
        self._records.keep_only({item.key for item in listed})
        jobs = [job for job in jobs if job.farm == self.farm]
        return sorted(jobs, key=lambda job: _moment(job.created), reverse=True)

    def new_id(self, name: str) -> str:
        """An id for a new job of the .blend ``name`` that no job of the farm has, nor a job
        queue or output folder left behind by one."""
        for _ in range(ID_TRIES):
            job_id = new_job_id(self.farm, name)
            with cloud_errors(f"checking that no job of farm {self.farm} is {job_id}"):
                taken = (
                    s3.any_object(self.s3, self.outputs.bucket, self._record_key(job_id))
                    or s3.any_object(self.s3, self.outputs.bucket, self.outputs.key(f"{job_id}/"))
                    or WorkQueue.open(self.sqs, queue_name(self.farm, job_id), dead_letters=False)
                    is not None
                )
            if not taken:
                return job_id
        tried = f"{ID_TRIES} tries"
        raise BrendaError(f"Farm {self.farm} found no free id for {printable(name)} in {tried}.")

    def resolve(self, given: str) -> str:
        """The id of the farm's job whose id is ``given``, or else the one whose id starts with
        it (one LIST of the records); UsageError names the candidates when none or several do."""
        if not JOB_ID.match(given):
            raise UsageError(f"'{printable(given)}' is not a job id: see 'brenda-work jobs'.")
        prefix = self.outputs.key(RECORDS)
        with cloud_errors(f"looking up job {given}"):
            matching = self._record_ids(prefix + given)
            if given in matching:
                return given
            if len(matching) == 1:
                return matching[0]
            if matching:
                raise UsageError(
                    f"'{given}' starts the ids of {len(matching)} jobs of farm {self.farm} "
                    f"({_some(matching)}): give more of the id."
                )
            every = self._record_ids(prefix)
        raise UsageError(
            f"Farm {self.farm} has no job whose id starts with '{given}'"
            + (f"; its jobs are {_some(every)}." if every else ": it has no jobs yet.")
        )

    def _record_ids(self, prefix: str) -> list[str]:
        """The ids named by the records whose keys start with ``prefix``, in order."""
        start = len(self.outputs.key(RECORDS))
        listed = s3.objects_if_bucket(self.s3, self.outputs.bucket, prefix)
        return [
            item.key[start:].removesuffix(".json") for item in listed if item.key.endswith(".json")
        ]

    def job(self, job_id: str) -> Job:
        """The job ``job_id`` names: its id, or the start of only its id (``resolve``)."""
        if not JOB_ID.match(job_id):
            raise UsageError(f"'{printable(job_id)}' is not a job id: see 'brenda-work jobs'.")
        key = self._record_key(job_id)
        with cloud_errors(f"reading job {job_id}"):
            text = s3.read_text(self.s3, self.outputs.bucket, key)
        if text is None:
            job_id = self.resolve(job_id)
            key = self._record_key(job_id)
            with cloud_errors(f"reading job {job_id}"):
                text = s3.read_text(self.s3, self.outputs.bucket, key)
        if text is None:
            raise UsageError(f"Farm {self.farm} has no job {job_id}: see 'brenda-work jobs'.")
        try:
            return self._read_record(key, text)
        except (ValueError, TypeError, KeyError, RecursionError, BrendaError) as error:
            raise BrendaError(
                f"The record of job {job_id} (s3://{self.outputs.bucket}/{key}) is not "
                f"believed: {printable(str(error))}."
            ) from error

    def queue(self, job: Job) -> WorkQueue | None:
        with cloud_errors(f"opening the queue of job {job.id}"):
            return WorkQueue.open(self.sqs, job.queue)

    def submit(self, job: Job, progress: Progress | None = None) -> Job:
        """Write the job's record as submitting (no node serves it yet), make its queue and send
        its tasks, then make it active. Interrupted (Ctrl-C, a failure), the queue and record
        are removed; where even that fails the record stays, submitting, so that every job
        queue belongs to a job that ``jobs`` lists and ``cancel`` removes. A record nodes would
        not believe is refused first."""
        submitting = replace(job, state=JobState.SUBMITTING)
        self.check_record(submitting)
        self.write(submitting)
        try:
            sent = send_tasks(
                self.config, self.sqs, job.queue, job.render_tasks(), progress, own_queue=True
            )
        except BaseException:
            self._undo_submit(submitting)
            raise
        made = replace(job, state=JobState.ACTIVE, tasks=sent)
        self.write(made)
        return made

    def check_project(self, project: str) -> None:
        """Refuse a project outside the farm's (FARM_PROJECTS, when set): its nodes would
        believe no record naming it."""
        if self.projects is not None and not _lies_under(project, self.projects):
            raise UsageError(
                "The job cannot be submitted: the farm renders the projects under "
                f"FARM_PROJECTS, and its project {printable(project)} is not under "
                f"{self.projects}."
            )

    def check_record(self, job: Job) -> None:
        """Refuse a job whose record nodes would not believe (a UsageError says why)."""
        try:
            self._read_record(self._record_key(job.id), job.to_json())
        except (ValueError, TypeError, BrendaError) as error:
            raise UsageError(f"Job {job.id} cannot be submitted: {error}.") from error

    def _undo_submit(self, job: Job) -> None:
        """Remove what an interrupted submit made: its queues, then its record."""
        try:
            queue = self.queue(job)
            if queue is not None:
                with cloud_errors(f"deleting the queues of job {job.id}"):
                    queue.delete_queues()
            with cloud_errors(f"deleting the record of job {job.id}"):
                self.s3.delete_object(Bucket=self.outputs.bucket, Key=self._record_key(job.id))
        except (BrendaError, KeyboardInterrupt) as error:
            log.warning(
                "Job %s stays listed as submitting (%s): 'brenda-work cancel %s' removes it.",
                job.id,
                error or "interrupted",
                job.id,
            )

    def set_state(self, job_id: str, state: JobState) -> Job:
        job = self.job(job_id)
        if job.state == JobState.CANCELLED:
            raise UsageError(f"Job {job_id} is cancelled; submit it again to render it.")
        if job.state == JobState.SUBMITTING and state != JobState.CANCELLED:
            raise _still_submitting(job_id)
        changed = replace(job, state=state)
        self.write(changed)
        return changed

    def set_priority(self, job_id: str, priority: int) -> Job:
        changed = replace(self.job(job_id), priority=priority)
        self.write(changed)
        return changed

    def cancel(self, job_id: str) -> Job:
        """Mark the job cancelled (its nodes stop its running tasks) and delete its queues."""
        cancelled = self.set_state(job_id, JobState.CANCELLED)
        queue = self.queue(cancelled)
        if queue is not None:
            with cloud_errors(f"deleting the queues of job {job_id}"):
                queue.delete_queues()
        return cancelled

    def retry(self, job_id: str) -> int:
        """Put the job's dead-lettered tasks back to work; returns how many."""
        job = self.job(job_id)
        queue = self._live_queue(job)
        with cloud_errors(f"moving the dead-lettered tasks of job {job_id} back"):
            moved = queue.redrive()
        if moved:
            self.write(replace(job, tasks=job.tasks + moved))  # nodes see the record change
        return moved

    def _live_queue(self, job: Job) -> WorkQueue:
        if job.state == JobState.CANCELLED:
            raise UsageError(f"Job {job.id} is cancelled; submit it again to render it.")
        if job.state == JobState.SUBMITTING:
            raise _still_submitting(job.id)
        queue = self.queue(job)
        if queue is None:
            raise BrendaError(f"The queue of job {job.id} is gone; submit the job again.")
        return queue

    def missing(
        self, job_id: str, progress: Progress | None = None, *, force: bool = False
    ) -> list[int]:
        """Queue the frames of the job that are not stored (or stored empty); returns them.

        Only once the job holds no task, waiting, running, delayed or dead-lettered (``force``
        skips that check): SQS cannot list a queue's tasks without taking them, and a node
        deletes a task only once its frames are stored, so an empty queue is the one sure sign
        that a frame not stored has no task left to render it."""
        job = self.job(job_id)
        queue = self._live_queue(job)
        if not force:
            with cloud_errors(f"counting the tasks of job {job_id}"):
                counts = queue.counts()
            waiting, dead = counts.pending + counts.delayed, counts.dead or 0
            if waiting + counts.in_flight + dead:
                raise JobHoldsTasksError(
                    job_id, f"{waiting} waiting, {counts.in_flight} running, {dead} dead-lettered"
                )
        frames = self.unstored_frames(job)
        if frames:
            chunks = [FrameChunk(frame, frame, 1) for frame in frames]
            tasks = render_tasks(job.settings, chunks, tile_grid(*job.tiles))
            with cloud_errors(f"queueing the missing frames of job {job_id}"):
                sent = queue.send_all(
                    (encode_task(task) for task in tasks), progress, total=len(tasks)
                )
            self.write(replace(job, tasks=job.tasks + sent))  # nodes see the record change
        return frames

    def control(
        self,
        job_id: str,
        action: JobAction,
        *,
        priority: int | None = None,
        progress: Progress | None = None,
        force: bool = False,
    ) -> str:
        """Pause, resume, cancel, reprioritise (``priority``), retry or re-queue the missing
        frames of a job (``force``: even while it holds tasks); returns what happened, as a
        sentence. ``job_id`` may be the start of only one job's id."""
        job_id = self.resolve(job_id)
        if action == JobAction.RETRY:
            return f"Job {job_id}: {self.retry(job_id)} dead-lettered tasks back to work."
        if action == JobAction.MISSING:
            frames = self.missing(job_id, progress, force=force)
            shown = ", ".join(str(frame) for frame in frames[:20]) + (
                " …" if len(frames) > 20 else ""
            )
            return f"Job {job_id}: {len(frames)} missing frames queued" + (
                f" ({shown})." if frames else "."
            )
        if action in (JobAction.PAUSE, JobAction.RESUME):
            paused = action == JobAction.PAUSE
            job = self.set_state(job_id, JobState.PAUSED if paused else JobState.ACTIVE)
        elif action == JobAction.CANCEL:
            job = self.cancel(job_id)
        elif action == JobAction.PRIORITY and priority is not None:
            job = self.set_priority(job_id, priority)
        else:
            raise UsageError(f"'{action}' is not something a job can do.")
        return f"Job {job.id}: {job.state}, priority {job.priority}."

    def sizing_queues(self, limit: int) -> list[str]:
        """The queues of the active jobs holding tasks, highest priority (then oldest) first."""
        active = sorted(
            (job for job in self.jobs() if job.state == JobState.ACTIVE),
            key=lambda job: (-job.priority, job.created),
        )
        queues = []
        for job in active:
            counts = self.counts(job)
            if counts is not None and counts.pending + counts.in_flight + counts.delayed:
                queues.append(job.queue)
                if len(queues) == limit:
                    break
        return queues

    def counts(self, job: Job) -> QueueCounts | None:
        queue = self.queue(job)
        if queue is None:
            return None
        with cloud_errors(f"counting the tasks of job {job.id}"):
            return queue.counts()

    def unstored_frames(self, job: Job) -> list[int]:
        """The job's frames that are not stored, or stored empty (one listing of its output)."""
        return self._stored(job).unstored

    def report(self, job: Job) -> JobReport:
        """Where the job stands: frames, tasks, nodes and costs (a LIST of its output, its
        queue's counts, and the ledgers that changed since the last report)."""
        stored = self._stored(job)
        counts = self.counts(job) if job.state != JobState.CANCELLED else None
        cost = job_cost(
            self._read_ledgers(stored.bucket, stored.ledgers),
            running=counts.in_flight if counts else 0,
            now=time.time(),
            stale=self.config.integer("TASK_TIMEOUT"),
        )
        return JobReport(job, len(stored.names), stored.unstored, counts, cost, stored.latest)

    def _stored(self, job: Job) -> _Stored:
        url = parse_url(job.output, allowed=("s3",))
        assert isinstance(url, S3Url)
        with cloud_errors(f"listing the frames of job {job.id}"):
            listed = list(s3.list_objects(self.s3, url.bucket, url.prefix))
        names = frame_names(job)
        sizes = {item.key[len(url.prefix) :]: item.size for item in listed}
        frames = [item for item in listed if names.get(item.key[len(url.prefix) :]) and item.size]
        frames.sort(key=lambda item: item.modified, reverse=True)
        return _Stored(
            bucket=url.bucket,
            names=names,
            unstored=sorted(number for name, number in names.items() if not sizes.get(name)),
            ledgers=[
                (item.key, item.etag)
                for item in listed
                if item.key[len(url.prefix) :].startswith(LEDGERS)
            ],
            latest=[item.key[len(url.prefix) :] for item in frames[:LATEST_FRAMES]],
        )

    def _read_ledgers(self, bucket: str, keys: list[tuple[str, str]]) -> list[Ledger]:
        """The ledgers at ``keys``; those whose ETag is unchanged come from the last read."""
        ledgers = []
        with cloud_errors("reading the nodes' ledgers"):
            for key, etag in keys:
                read = self._ledgers.read(self.s3, bucket, key, etag)
                if read is not None:
                    ledgers.append(read[0])
        return ledgers


def _some(ids: list[str]) -> str:
    """Up to SHOWN_IDS of ``ids``, shown (anyone who may write a record names one)."""
    shown = ", ".join(printable(job_id) for job_id in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


def _still_submitting(job_id: str) -> UsageError:
    return UsageError(
        f"Job {job_id} is still being submitted, or its submit was interrupted: cancel it "
        f"('brenda-work cancel {job_id}') and submit it again."
    )


REPORT_COLUMNS = (
    "job",
    "state",
    "priority",
    "Blender",
    "frames stored",
    "waiting",
    "running",
    "failed",
    "nodes",
    "cost",
    "per frame",
    "projected",
    "ETA",
)


def report_row(report: JobReport) -> tuple[str, ...]:
    """A job's line in ``brenda-work jobs`` and the add-on's panel (REPORT_COLUMNS)."""
    job, counts, cost = report.job, report.counts, report.cost
    unpriced = cost.unpriced_tasks > 0
    return (
        job.id,
        report.state,
        str(job.priority),
        job.settings.blender or "?",
        f"{report.stored}/{report.frames}",
        str(counts.pending) if counts else "-",
        str(counts.in_flight) if counts else "-",
        str(counts.dead) if counts and counts.dead is not None else "-",
        str(cost.nodes),
        format_dollars(cost.dollars, unpriced=unpriced),
        format_dollars(cost.per_frame, unpriced=unpriced) if cost.per_frame is not None else "-",
        format_dollars(cost.projected(report.frames_left), unpriced=unpriced)
        if cost.per_frame is not None
        else "-",
        format_duration(cost.eta_seconds(report.frames_left)) if report.frames_left else "-",
    )


LATEST_FRAMES = 4
"""Frames a report names as the latest stored (the add-on shows them)."""


@dataclass(frozen=True)
class _Stored:
    bucket: str
    names: dict[str, int]
    unstored: list[int]
    ledgers: list[tuple[str, str]]
    latest: list[str]


@dataclass(frozen=True)
class JobReport:
    """A job's progress and cost, for ``brenda-work jobs`` and the add-on's panel."""

    job: Job
    frames: int
    unstored: list[int]
    counts: QueueCounts | None
    cost: JobCost
    latest: list[str]
    """The names of its latest stored frames, newest first."""

    @property
    def stored(self) -> int:
        return self.frames - len(self.unstored)

    @property
    def frames_left(self) -> int:
        return 0 if self.job.state == JobState.CANCELLED else len(self.unstored)

    @property
    def state(self) -> JobState:
        """The job's state, done once it is active with every frame stored and no task
        waiting or running (a frame stored again by a running retry is not done yet)."""
        counts = self.counts
        busy = counts is not None and counts.pending + counts.in_flight + counts.delayed > 0
        if self.job.state == JobState.ACTIVE and not self.unstored and not busy:
            return JobState.DONE
        return self.job.state


def video_name(job: Job) -> str:
    """The name of the video the farm encodes of a job (``--video``), in its output."""
    return f"{job.id}{VIDEO_SUFFIX}"


def report_name(job: Job) -> str:
    """The name of a job's report (``shared.jobs.report``) in its output, and on the workstation
    by default."""
    return f"{job.id}{REPORT_SUFFIX}"


def frame_names(job: Job) -> dict[str, int]:
    """The names of the frames a job stores (whole frames: tiles are assembled), to numbers."""
    numbers = {frame for item in parse_frame_list(job.frames) for frame in item.frames()}
    return frame_file_names(job.settings, sorted(numbers))


def make_job(
    config: Config,
    *,
    project: str,
    frames: str,
    settings: RenderSettings,
    chunk: int = 1,
    tiles: tuple[int, int] = (0, 0),
    priority: int = 0,
    video: bool = False,
    notify: str | None = None,
) -> Job:
    """A new job's record (not yet submitted), named after its .blend; its notifications go to
    ``notify``, else to ``NOTIFY`` (none when neither is set)."""
    farm = config.text("FARM")
    checked_notify = _notify_of(config, farm, notify)
    job_id = JobRegistry(config).new_id(blend_name(config, project, settings.blend))
    output = _outputs(config)
    return Job(
        id=job_id,
        farm=farm,
        project=project,
        frames=frames,
        output=f"s3://{output.bucket}/{output.prefix}{job_id}/",
        settings=settings,
        chunk=chunk,
        tiles=tiles,
        priority=priority,
        created_by=f"{_user()}@{socket.gethostname()}",
        created=datetime.now(UTC).isoformat(timespec="milliseconds"),
        video=video,
        notify=checked_notify,
    )


def _notify_of(config: Config, farm: str, given: str | None) -> str:
    """``given`` or ``NOTIFY``, checked: a target nodes would not believe is refused here."""
    notify = given if given is not None else config.optional_text("NOTIFY") or ""
    if notify:
        try:
            parse_notify(notify)
        except BrendaError as error:
            raise UsageError(str(error)) from error
        try:
            check_notify(notify, farm)
        except ValueError as error:
            raise UsageError(f"The job's notifications cannot go to {notify}: {error}.") from error
    return notify


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def serving_order(jobs: list[Job], turn: int) -> list[Job]:
    """Active jobs in the order a node serves them: the highest priority first, and among equal
    priorities a different one first on each ``turn`` (round-robin)."""
    active = [job for job in jobs if job.state == JobState.ACTIVE]
    ordered: list[Job] = []
    for priority in sorted({job.priority for job in active}, reverse=True):
        level = sorted((job for job in active if job.priority == priority), key=lambda j: j.id)
        shift = turn % len(level)
        ordered += level[shift:] + level[:shift]
    return ordered
