# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a node's tasks come from: its task source. No bpy module use.

The node's one loop (``brenda_node.node``) takes, leases, renders and stores the tasks of one
source, which says what each task renders with and when there is no work left:

- ``QueueSource``: a ``WORK_QUEUE`` farm, one queue and one project (``BLENDER_PROJECT``);
- ``JobsSource``: every job of the farm (records in ``FARM_OUTPUTS/.brenda/jobs``), one SQS
  queue per job, the highest priority active job first, equal priorities in turn, paused and
  cancelled jobs skipped; each job's project is fetched and kept by URL (``project_cache``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.aws.session import cloud_errors, make_client
from shared.aws.sqs import Message, QueueGoneError, WorkQueue
from shared.core.config import Config
from shared.core.errors import BrendaError, TaskError
from shared.core.urls import SqsUrl
from shared.jobs.registry import Job, JobRegistry, JobState, serving_order
from shared.outputs.store import OutputStore, open_store_at
from shared.tasks.task import RenderTask, Task, decode_task, parse_frame_list, tile_grid

from .blender import TaskRunner
from .ledger import LedgerWriter
from .news import JobNews
from .project_cache import ProjectCache
from .status import NodeState
from .uploader import FailureNotes

log = logging.getLogger(__name__)

EMPTY_SKIP_SECONDS = (10.0, 120.0)
"""A job whose queue had nothing is asked again after 10 s, doubling to 120 s while it stays
empty; the highest-priority job is long-polled meanwhile, so its new tasks start at once."""


@dataclass
class Serving:
    """What a task is rendered with: its project's runner, its job's store and failure notes."""

    runner: TaskRunner
    store: OutputStore
    notes: FailureNotes
    ledger: LedgerWriter
    job: Job | None = None

    def task(self, body: str) -> Task:
        """The task a message asks for, as its source allows: a job's message chooses frames
        and a tile, its record the rest (structured render tasks, with the .blend's Python only
        where the record allows it), since whoever may send to a job's queue is not trusted
        with a shell on the nodes. TaskError says why a message is refused."""
        task = decode_task(body)
        if self.job is None:  # the farm's WORK_QUEUE: its templates' shell tasks
            return task
        job = self.job
        if not isinstance(task, RenderTask):
            raise TaskError(f"job {job.id} renders structured tasks only, not scripts")
        frames = task.chunk.frames()
        if len(frames) > job.chunk or not set(frames) <= self._job_frames:
            raise TaskError(f"frames {task.chunk} are not a task of job {job.id}")
        tiles = tile_grid(*job.tiles)
        if (task.tile is None) != (tiles is None) or (tiles and task.tile not in tiles):
            raise TaskError(f"the task's tile is not one of job {job.id}'s")
        return RenderTask(task.chunk, task.tile, job.settings)

    @functools.cached_property
    def _job_frames(self) -> set[int]:
        assert self.job is not None
        return {frame for item in parse_frame_list(self.job.frames) for frame in item.frames()}


@dataclass(frozen=True)
class Taken:
    """A message taken from one of the source's queues, not leased yet; ``job`` is the job whose
    queue it came from (None for a ``WORK_QUEUE`` farm)."""

    queue: WorkQueue
    message: Message
    job: Job | None = None

    @property
    def origin(self) -> str:
        return f"job {self.job.id}" if self.job is not None else f"sqs://{self.queue.name}"


class TaskSource(Protocol):
    """What the node's loop asks of where its tasks come from."""

    def take(self) -> Taken | None:
        """A task, or None when none came (after a long poll); CloudError when its queue cannot
        be reached."""
        ...

    def done(self) -> bool:
        """Whether no work is left: no task waiting, running on another node or delayed (a
        paused or cancelled job's tasks are none). Asked after ``take`` brought nothing."""
        ...

    def serving(self, taken: Taken) -> Serving:
        """What the leased task renders with; BrendaError when that cannot be had (the task
        fails: noted where ``notes_of`` says, and given back)."""
        ...

    def stopping(
        self, taken: Taken, stop: threading.Event
    ) -> AbstractContextManager[threading.Event]:
        """While the task renders: an event set when it must stop, as soon as ``stop`` (the
        node's) is set or the source calls it off."""
        ...

    def notes(self) -> list[FailureNotes]:
        """The failure notes of every task this source served, flushed while the node waits for
        a task and when it ends."""
        ...

    def notes_of(self, taken: Taken) -> FailureNotes:
        """Where the failure of the taken task is noted, had without its project (which may be
        what failed); BrendaError when its store cannot be reached."""
        ...


class NodeHost(Protocol):
    """What a source asks of its node to serve a job."""

    @property
    def config(self) -> Config: ...

    @property
    def work(self) -> Path: ...

    @property
    def state(self) -> NodeState: ...

    @property
    def name(self) -> str: ...

    def runner(self, project: Path) -> TaskRunner: ...

    def ledger(self, store: OutputStore) -> LedgerWriter: ...


def queue_done(queue: WorkQueue) -> bool:
    """No task of ``queue`` waits, runs on a node or is delayed (a queue that is gone has none)."""
    try:
        with cloud_errors(f"counting the tasks of sqs://{queue.name}"):
            counts = queue.counts()
    except QueueGoneError:
        return True
    return counts.pending + counts.in_flight + counts.delayed == 0


def open_work_queue(config: Config) -> WorkQueue:
    url = config.url("WORK_QUEUE", SqsUrl)
    with cloud_errors(f"opening {url}"):
        client = make_client("sqs", config)
        queue = WorkQueue.open(client, url.queue, dead_letters=False)
    if queue is None:
        raise BrendaError(f"The work queue {url} does not exist yet: push tasks with brenda-work.")
    return queue


class QueueSource:
    """A ``WORK_QUEUE`` farm: every task renders with one project, into one store. The queue is
    done when a long poll brings nothing and no task is pending or held by another node (a
    task held by a node that dies comes back when its lease ends)."""

    def __init__(self, queue: WorkQueue, serving: Serving, *, wait: int, lease: int) -> None:
        self.queue = queue
        self._serving = serving
        self.wait = wait
        self.lease = lease

    def take(self) -> Taken | None:
        # Taken for the node's lease, not the queue's own timeout: a queue made with a shorter
        # one would show the task to other nodes before the lease's first renewal.
        with cloud_errors(f"taking a task from sqs://{self.queue.name}"):
            message = self.queue.receive(wait_seconds=self.wait, visibility_timeout=self.lease)
        return None if message is None else Taken(self.queue, message)

    def done(self) -> bool:
        return queue_done(self.queue)

    def serving(self, taken: Taken) -> Serving:
        return self._serving

    def stopping(
        self, taken: Taken, stop: threading.Event
    ) -> AbstractContextManager[threading.Event]:
        return contextlib.nullcontext(stop)

    def notes(self) -> list[FailureNotes]:
        return [self._serving.notes]

    def notes_of(self, taken: Taken) -> FailureNotes:
        return self._serving.notes


class JobsSource:
    """Every job of the node's farm: the highest priority active job first, equal priorities in
    turn, paused and cancelled jobs skipped. Projects are kept by their URL and checked by
    content: jobs of one project share one fetch; the last few stay on disk, fewer when they are
    big. A cancelled job's running task stops."""

    def __init__(self, registry: JobRegistry, host: NodeHost) -> None:
        self.registry = registry
        self.host = host
        self.config = host.config
        self.projects = ProjectCache(host.work / "projects", host.config)
        self._folder_of: dict[str, str] = {}
        """Job id: the project folder its serving renders from."""
        self._notes: dict[str, FailureNotes] = {}
        """Every job's failure notes, kept after its project is evicted: none is lost."""
        self._ledgers: dict[str, LedgerWriter] = {}
        """Every job's ledger of this node run, kept after its project is evicted."""
        self._by_job: dict[str, Serving] = {}
        self._queues: dict[str, WorkQueue] = {}
        self._jobs: list[Job] = []
        self.refresh = float(host.config.integer("JOB_REFRESH"))
        self._read = -self.refresh
        self._turn = 0
        self._empty: dict[str, tuple[float, float]] = {}
        """Job id: (when to ask its queue again, how long the last skip was)."""
        self._done_checked = -float("inf")

    def jobs(self, *, fresh: bool = False) -> list[Job]:
        """The farm's jobs, read again at most every JOB_REFRESH seconds (one LIST)."""
        now = time.monotonic()
        if fresh or now - self._read >= self.refresh:
            self._jobs = self.registry.jobs()
            self._read = now
            for job_id in self.registry.changed:  # resumed, reprioritised, more tasks
                self._empty.pop(job_id, None)
        return self._jobs

    def queue(self, job: Job) -> WorkQueue | None:
        if job.id not in self._queues:
            queue = self.registry.queue(job)
            if queue is None:
                return None
            self._queues[job.id] = queue
        return self._queues[job.id]

    def take(self) -> Taken | None:
        """A task of the first job in serving order that has one. Jobs found empty lately are
        skipped; when none has a task, the first job is long-polled (RECEIVE_WAIT)."""
        order = serving_order(self.jobs(), self._turn)
        self._turn += 1
        now = time.monotonic()
        for job in order:
            if self._empty.get(job.id, (0.0, 0.0))[0] > now:
                continue
            taken = self._receive(job, 0)
            if taken is not None:
                return taken
        if order:
            return self._receive(order[0], self.config.integer("RECEIVE_WAIT"))
        return None

    def _receive(self, job: Job, wait: int) -> Taken | None:
        queue = self.queue(job)
        if queue is None:
            return None
        try:
            with cloud_errors(f"taking a task of job {job.id}"):
                message = queue.receive(
                    wait_seconds=wait, visibility_timeout=self.config.integer("VISIBILITY_TIMEOUT")
                )
        except QueueGoneError as error:
            # Cancelled since the records were read: read them again before the next take.
            log.warning("%s Job %s has no task left.", error, job.id)
            del self._queues[job.id]
            self._read = -self.refresh
            return None
        if message is not None:
            self._empty.pop(job.id, None)
            return Taken(queue, message, job)
        shortest, longest = EMPTY_SKIP_SECONDS
        skip = min(longest, max(shortest, self._empty.get(job.id, (0.0, 0.0))[1] * 2))
        self._empty[job.id] = (time.monotonic() + skip, skip)
        return None

    def done(self) -> bool:
        """No active job has a task left, waiting, running or delayed: paused work is no work
        for a node, so a paused job's tasks never keep it waiting. Counted every POLL_PAUSE
        seconds at most (an idle node's counting costs two requests per active job)."""
        now = time.monotonic()
        if now - self._done_checked < self.config.integer("POLL_PAUSE"):
            return False
        self._done_checked = now
        for job in self.jobs(fresh=True):
            if job.state != JobState.ACTIVE:  # paused or cancelled
                continue
            queue = self.queue(job)
            if queue is not None and not queue_done(queue):
                return False
        return True

    def serving(self, taken: Taken) -> Serving:
        assert taken.job is not None, "a job's task comes with its job"
        return self.serving_of(taken.job)

    def serving_of(self, job: Job) -> Serving:
        """The job's project (fetched unless on disk and unchanged), runner, store and notes."""
        folder = self.projects.use(job.project)
        known = self._by_job.get(job.id)
        if known is not None:
            return known
        self.host.state.show(state="fetching project", task=job.id)
        project = self.projects.fetch(job.project)
        notes = self._job_notes(job)
        if job.id not in self._ledgers:
            self._ledgers[job.id] = self.host.ledger(notes.store)
        serving = Serving(self.host.runner(project), notes.store, notes, self._ledgers[job.id], job)
        self._by_job[job.id] = serving
        self._folder_of[job.id] = folder
        for removed in self.projects.evict(keep=folder):
            for job_id in [job for job, used in self._folder_of.items() if used == removed]:
                del self._folder_of[job_id], self._by_job[job_id]
        return serving

    @contextlib.contextmanager
    def stopping(self, taken: Taken, stop: threading.Event) -> Iterator[threading.Event]:
        """An event set when ``stop`` is set or the task's job is cancelled (its record is read
        again every JOB_REFRESH seconds while its task runs)."""
        assert taken.job is not None, "a job's task comes with its job"
        job_id = taken.job.id
        cancel = threading.Event()
        finished = threading.Event()

        def watch() -> None:
            checked = time.monotonic()
            while not finished.wait(0.05):
                if stop.is_set():
                    cancel.set()
                    return
                if time.monotonic() - checked >= self.refresh:
                    checked = time.monotonic()
                    try:
                        state = self.registry.job(job_id).state
                    except BrendaError as error:
                        log.warning("could not read job %s: %s", job_id, error)
                        continue
                    if state == JobState.CANCELLED:
                        log.warning("job %s was cancelled: its task stops", job_id)
                        cancel.set()
                        return

        watcher = threading.Thread(target=watch, name="brenda-job-watch", daemon=True)
        watcher.start()
        try:
            yield cancel
        finally:
            finished.set()
            watcher.join()

    def notes(self) -> list[FailureNotes]:
        return list(self._notes.values())

    def notes_of(self, taken: Taken) -> FailureNotes:
        assert taken.job is not None, "a job's task comes with its job"
        return self._job_notes(taken.job)

    def _job_notes(self, job: Job) -> FailureNotes:
        """The job's failure notes, in its output store."""
        notes = self._notes.get(job.id)
        if notes is None:
            store = open_store_at(self.config, job.output, keep_stored=True)
            notes = self._notes[job.id] = FailureNotes(
                store,
                self.host.state,
                self.host.name,
                job=job.id,
                news=JobNews(self.registry, job),
            )
        return notes
