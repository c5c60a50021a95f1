# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's loop: take a task, keep its lease, render, store the outputs, then delete it.

No bpy module use. Nothing is lost: a message is deleted only after every output of its task is
stored (and, for the last tile of a frame, the frame assembled); a task that fails, or that is
running when the node is told to stop, goes back to the queue at once with its error recorded
beside the outputs. Outputs of one task upload while the next task renders, as in the original.
SQS moves a task that failed ``MAX_RECEIVE_COUNT`` times to the dead-letter queue.

The node decides the queue is empty only when a long poll brings nothing and no task is pending
or held by another node, since a task held by a node that dies comes back when its lease ends.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import random
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.aws import ec2
from shared.aws.session import cloud_errors, make_client
from shared.aws.sqs import Message, WorkQueue
from shared.core.config import Config
from shared.core.errors import BrendaError, Cancelled, CloudError, StoreError, TaskError
from shared.core.progress import Progress
from shared.core.urls import SqsUrl, parse_url
from shared.jobs.costs import LOCAL, Machine, PriceBook, TaskCost
from shared.jobs.registry import Job, JobRegistry, JobState, serving_order
from shared.outputs.store import OutputStore, check_name, failure_name, open_store, open_store_at
from shared.tasks.task import FRAME_EXTENSIONS, RenderTask, Task, decode_task, title

from .blender import BlenderLine, RunResult, TaskRunner
from .blenders import Blender, Blenders
from .budget import BudgetWatch
from .ebs import EbsVolumes, LinuxBlockDevices, mount_additional
from .lease import Lease
from .ledger import LedgerWriter, frames_of
from .project import fetch_project, fetch_url
from .protection import ScaleInProtection
from .spot import GROUP_TERMINATES, MetadataClient, machine_from_metadata, watch_for_interruption
from .tiles import assemble, complete_frames, parse_tile_name, tile_prefix
from .validate import check_outputs
from .warm import WarmPool, default_memory_limit

log = logging.getLogger(__name__)
blender_log = logging.getLogger("brenda_node.blender.output")

DONE_MODES = ("exit", "shutdown", "poll")
JOB_PROJECTS_KEPT = 3
PROJECTS_DISK_SHARE = 0.5
"""Kept projects may fill at most this share of the work disk (what they use plus what is free);
the least recently used go first, the one in use never."""
EMPTY_SKIP_SECONDS = (10.0, 120.0)
"""A job whose queue had nothing is asked again after 10 s, doubling to 120 s while it stays
empty; the highest-priority job is long-polled meanwhile, so its new tasks start at once."""
STATUS_INTERVAL = 0.5
POLL_UPLOAD_SECONDS = 0.05
LOW_DISK_BYTES = 1 << 20
"""Below this much free space after a failed task, the work disk counts as full."""
NO_SPACE = "No space left on device"


class DiskFullError(BrendaError):
    """The node's work disk is full: the node gives its task back and stops."""


def disk_full_error(work: Path) -> DiskFullError:
    try:
        free = f"{shutil.disk_usage(work).free:,} bytes free"
    except OSError:
        free = "no space left"
    return DiskFullError(
        f"The work disk of {work} is full ({free}): the task went back to the queue and the "
        "node stopped; free some space and start it again."
    )


def out_of_space(work: Path, result: RunResult) -> bool:
    """Whether a failed task failed because the work disk is full."""
    if any(NO_SPACE in line for line in result.last_lines):
        return True
    try:
        return shutil.disk_usage(work).free < LOW_DISK_BYTES
    except OSError:
        return False


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class Stopper:
    """Why the node must stop now (a signal, a spot notice), shared by every thread."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def stop(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            log.warning("stopping: %s", reason)
            self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


@dataclass
class NodeState:
    """The node's files in its work folder, as the original kept them: ``DONE`` (read again at
    every idle decision, so it can be changed live), ``task_count``, ``task_last``; plus
    ``status.json`` with what the node is doing, for progress displays."""

    folder: Path
    tasks_done: int = 0
    render_seconds: float = 0.0
    activity: dict[str, Any] = field(default_factory=dict)
    _written: float = 0.0
    _held_back: threading.Timer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, done_mode: str) -> None:
        for name in ("task_count", "task_last"):
            (self.folder / name).unlink(missing_ok=True)
        write_atomically(self.folder / "DONE", done_mode + "\n")
        self.show(state="starting")

    def done_mode(self) -> str:
        try:
            mode = (self.folder / "DONE").read_text(encoding="utf-8").strip()
        except OSError:
            return "exit"
        if mode not in DONE_MODES:
            log.warning("DONE file says '%s', not one of %s: exiting", mode, ", ".join(DONE_MODES))
            return "exit"
        return mode

    def task_stored(self, render_seconds: float) -> None:
        with self._lock:
            self.tasks_done += 1
            self.render_seconds += render_seconds
            try:
                write_atomically(self.folder / "task_count", f"{self.tasks_done}\n")
                write_atomically(self.folder / "task_last", f"{int(time.time())}\n")
            except OSError as error:
                log.warning("task_count not written: %s", error.strerror or error)
        self.show(force=True)

    def show(self, *, force: bool = True, **activity: Any) -> None:
        """Record what the node does now; writes at most every STATUS_INTERVAL unless forced.

        A change held back by the interval is written when it ends, so the last progress line
        of a quiet stretch (Blender reports samples in bursts) still reaches status.json."""
        with self._lock:
            self.activity.update(activity)
            wait = self._written + STATUS_INTERVAL - time.monotonic()
            if not force and wait > 0:
                if self._held_back is None:
                    self._held_back = threading.Timer(wait, self._write_held_back)
                    self._held_back.daemon = True
                    self._held_back.start()
                return
            self._write()

    def _write_held_back(self) -> None:
        with self._lock:
            self._held_back = None
            self._write()

    def _write(self) -> None:
        """Write status.json; the caller holds the lock."""
        if self._held_back is not None:
            self._held_back.cancel()
            self._held_back = None
        self._written = time.monotonic()
        status = {
            **self.activity,
            "pid": os.getpid(),
            "tasks_done": self.tasks_done,
            "render_seconds": round(self.render_seconds, 3),
        }
        try:
            write_atomically(self.folder / "status.json", json.dumps(status))
        except OSError as error:
            # Only a display: a full disk is noticed where it matters, at the next task.
            log.warning("status.json not written: %s", error.strerror or error)


@dataclass
class StoredTask:
    """A rendered task whose outputs are waiting to be stored."""

    lease: Lease
    what: str
    outdir: Path
    outputs: list[Path]
    render_seconds: float
    store: OutputStore
    notes: FailureNotes
    ledger: LedgerWriter
    cost: TaskCost
    failure: str | None = None
    """Why the task failed although it saved these outputs (the watchdog stopped it)."""
    denoise: tuple[TaskRunner, dict[str, Any], Blender] | None = None
    """The runner that denoises a frame assembled from this task's tiles, how, and with the
    Blender that rendered them."""
    progress: Progress = field(default_factory=Progress)


class FailureNotes:
    """Why tasks failed, beside the outputs for ``brenda-work status``.

    A note the store cannot take now (it is down) stays in the node's log and ``status.json`` and
    is kept until the store answers again; it never costs the task a try of its own.
    """

    def __init__(
        self, store: OutputStore, state: NodeState, node: str, *, job: str | None = None
    ) -> None:
        self.store = store
        self.state = state
        self.node = node
        self.job = job
        self._pending: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, lease: Lease, error: str) -> None:
        """The task failed: give it back at once and note why."""
        log.error("%s", error)
        lease.give_back()
        self.state.show(last_error=error)
        note = f"{error}\n(node {self.node}, try {lease.message.receive_count})\n"
        with self._lock:
            self._pending.append((failure_name(lease.message.message_id), note))
        self.flush()

    def flush(self) -> None:
        """Store the notes kept while the store was down."""
        with self._lock:
            while self._pending:
                name, note = self._pending[0]
                try:
                    self.store.put_text(name, note)
                except (CloudError, StoreError) as problem:
                    log.warning("failure note kept until the store answers: %s", problem)
                    return
                self._pending.pop(0)


class Uploader:
    """Stores one task's outputs in the background while the next task renders.

    Errors of the store or the network are not the task's: the outputs stay on disk, the lease
    stays renewed, and the upload is retried with backoff until it succeeds or the node stops.
    """

    def __init__(self, state: NodeState, backoff: Callable[[], Backoff]) -> None:
        self.state = state
        self.backoff = backoff
        self._thread: threading.Thread | None = None
        self._current: StoredTask | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def cancel(self) -> None:
        """Stop the upload in flight (its task goes back to the queue) and wait for it."""
        if self._current is not None:
            self._current.progress.cancel()
        self.wait()

    def free(self, stop: threading.Event) -> bool:
        """Wait until the previous upload is done; False if the node is stopped meanwhile, in
        which case that upload is cancelled (its task goes back to the queue)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(POLL_UPLOAD_SECONDS)
            if stop.is_set():
                self.cancel()
                return False
        self.wait()
        return not stop.is_set()

    def submit(self, task: StoredTask) -> None:
        """Store ``task``'s outputs in the background; the uploader must be free."""
        self.wait()
        self._current = task
        self._thread = threading.Thread(
            target=self._store, args=(task,), name="brenda-upload", daemon=True
        )
        self._thread.start()

    def _store(self, task: StoredTask) -> None:
        stored: set[str] = set()
        backoff = self.backoff()
        try:
            while True:
                try:
                    self._put_outputs(task, stored)
                    break
                except (CloudError, StoreError) as error:
                    self.state.show(state="waiting for the output store", last_error=str(error))
                    backoff.failed(error, give_up=False)
                    task.progress.check()
                    if backoff.stop.is_set():
                        raise Cancelled("The node stops.") from error
        except Cancelled:
            log.warning("upload of %s stopped; the task goes back to the queue", task.what)
            task.lease.give_back()
            task.ledger.add(task.cost, "given back")
        except BrendaError as error:
            task.notes.record(task.lease, f"Storing {task.what} failed: {error}")
            task.ledger.add(task.cost, "failed")
        else:
            if task.failure is not None:
                task.notes.record(task.lease, task.failure)
                task.ledger.add(task.cost, "failed")
                return
            task.lease.complete(backoff)
            task.ledger.add(task.cost, "stored")
            self.state.task_stored(task.render_seconds)
            log.info("task %s done", task.what)
            task.notes.flush()
        finally:
            shutil.rmtree(task.outdir, ignore_errors=True)

    def _put_outputs(self, task: StoredTask, stored: set[str]) -> None:
        """Store what is not stored yet, then assemble the frames whose last tile this was."""
        for path in task.outputs:
            name = path.relative_to(task.outdir).as_posix()
            if name in stored:
                continue
            try:
                check_name(name)
            except BrendaError as error:
                log.warning("%s Not stored; the task's other outputs are.", error)
                continue
            task.progress.check()
            task.store.put(path, name, task.progress)
            log.info("stored %s in %s", name, task.store)
            stored.add(name)
        self._assemble_tiles(task.store, sorted(stored), task.progress, task.denoise)

    def _assemble_tiles(
        self,
        store: OutputStore,
        names: list[str],
        progress: Progress,
        denoise: tuple[TaskRunner, dict[str, Any], Blender] | None,
    ) -> None:
        for name in names:
            tile = parse_tile_name(name)
            if tile is None:
                continue
            complete = complete_frames(store.names(tile_prefix(tile)))
            tiles = complete.get(tile.frame_name)
            if tiles is None:
                continue
            progress.check()
            with tempfile.TemporaryDirectory(prefix="brenda-assemble-") as scratch:
                local = []
                for index, part in enumerate(tiles):
                    path = Path(scratch) / f"{index}{Path(part.name).suffix}"
                    store.get(part.name, path)
                    local.append((part, path))
                frame = Path(scratch) / ("frame" + Path(tile.frame_name).suffix)
                assemble(local, frame)
                frame_name = tile.frame_name
                if denoise is not None:
                    runner, after, blender = denoise
                    suffix = FRAME_EXTENSIONS[after["format"]]
                    frame_name = str(Path(frame_name).with_suffix(suffix))
                    final = Path(scratch) / ("denoised" + suffix)
                    runner.denoise(frame, final, after, blender)
                    frame = final
                store.put(frame, frame_name)
            log.info("assembled %s from %d tiles", frame_name, len(tiles))


class Backoff:
    """Waits between retries of errors that are not the task's: the network, AWS, the store.

    Pauses start at ``FIRST_PAUSE`` and double up to ``ERROR_PAUSE``, each drawn between half and
    all of that (jitter, so nodes cut off together do not come back in step); a success resets
    them. A node gives up only after ``N_RETRIES`` failures in a row spanning ``RESET_PERIOD``
    seconds (an hour by default), so it rides out a long outage and scattered errors never add up.
    """

    FIRST_PAUSE = 1.0

    def __init__(
        self, config: Config, stop: threading.Event, *, draw: Callable[[], float] = random.random
    ) -> None:
        self.limit = config.integer("N_RETRIES")
        self.longest = float(config.integer("ERROR_PAUSE"))
        self.period = config.integer("RESET_PERIOD")
        self.stop = stop
        self.draw = draw
        self.failures = 0
        self.since = 0.0

    def pause(self) -> float:
        """The pause after the current run of failures."""
        ceiling = min(self.longest, self.FIRST_PAUSE * float(2 ** min(self.failures - 1, 30)))
        return ceiling * (0.5 + 0.5 * self.draw())

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, error: BrendaError, *, give_up: bool = True) -> None:
        """Count a failure and pause (less if the node stops); with ``give_up``, raise once the
        failures have lasted ``RESET_PERIOD`` seconds and number at least ``N_RETRIES``."""
        now = time.monotonic()
        if self.failures == 0:
            self.since = now
        self.failures += 1
        lasted = now - self.since
        if give_up and self.failures >= self.limit and lasted >= self.period:
            raise BrendaError(
                f"Giving up after {self.failures} failures in a row over {lasted:.0f} s: {error}"
            )
        pause = self.pause()
        log.warning("retry %d in %.1f s: %s", self.failures, pause, error)
        self.stop.wait(pause)


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_work_queue(config: Config) -> WorkQueue:
    url = config.url("WORK_QUEUE", SqsUrl)
    with cloud_errors(f"opening {url}"):
        client = make_client("sqs", config)
        queue = WorkQueue.open(client, url.queue, dead_letters=False)
    if queue is None:
        raise BrendaError(f"The work queue {url} does not exist yet: push tasks with brenda-work.")
    return queue


@dataclass
class Serving:
    """What a task is rendered with: its project's runner, its job's store and failure notes."""

    runner: TaskRunner
    store: OutputStore
    notes: FailureNotes
    ledger: LedgerWriter
    job: Job | None = None


class Node:
    def __init__(self, config: Config, work: Path, stopper: Stopper) -> None:
        self.config = config
        self.work = work
        self.stopper = stopper
        self.state = NodeState(work)
        self.name = node_name()
        self.uploader = Uploader(self.state, lambda: Backoff(config, stopper.event))
        self._blenders: Blenders | None = None
        self.started = time.time()
        self.warm = (
            WarmPool(
                config.integer("WARM_TASKS"),
                config.integer("WARM_MEMORY") << 20 or default_memory_limit(),
            )
            if config.flag("WARM_BLENDER")
            else None
        )
        self.prices = PriceBook(LOCAL, config)
        self.protection: ScaleInProtection | None = None
        self.budget: BudgetWatch | None = None
        self.drain_reason: str | None = None
        """Set when the node's fleet was stopped: it takes no more tasks."""
        self.metadata = (
            MetadataClient(config.text("METADATA_URL")) if config.flag("RUNNING_ON_EC2") else None
        )

    def run(self, *, dry_run: bool = False) -> str:
        """Work until the queue is done or the node is stopped; returns why it ended.

        With ``WORK_QUEUE`` set the node serves that queue and ``BLENDER_PROJECT``; without it,
        every job of its farm (``FARM_OUTPUTS``).
        """
        config = self.config
        self.state.begin(config.done_mode())
        self.find_blenders()
        self.prices = PriceBook(self._machine(), config)
        if self.metadata is not None:
            self.protection = ScaleInProtection(config, self.metadata)
            self.budget = BudgetWatch(config, self.protection)
        if config.serves_jobs:
            return "dry run: jobs are fetched as they come" if dry_run else self._serve_jobs()
        self.state.show(state="fetching project")
        volumes = EbsVolumes(config, LinuxBlockDevices())
        try:
            project = fetch_project(config, self.work, volumes)
            mount_additional(volumes, project)
            log.info("project folder: %s", project)
            if dry_run:
                return "dry run: the project is ready"
            store = open_store(config, concurrency=config.integer("CURL_MAX_THREADS"))
            serving = Serving(
                self._runner(project),
                store,
                FailureNotes(store, self.state, self.name),
                self.ledger(store),
            )
            return self._serve(
                lambda: self._loop(open_work_queue(config), serving), [serving.notes]
            )
        finally:
            volumes.release()

    def _machine(self) -> Machine:
        return LOCAL if self.metadata is None else machine_from_metadata(self.metadata)

    def ledger(self, store: OutputStore) -> LedgerWriter:
        return LedgerWriter(store, self.name, self.prices.machine, self.started)

    def find_blenders(self) -> Blenders:
        """The node's Blenders, each one's version asked (and logged) once, at the start of a
        run; every runner shares them."""
        self._blenders = Blenders.find(self.config, self.work / "bin", self.work / "blenders")
        return self._blenders

    @property
    def blenders(self) -> Blenders:
        return self._blenders or self.find_blenders()

    def _runner(self, project: Path) -> TaskRunner:
        config = self.config
        return TaskRunner(
            project,
            self.blenders,
            self.work / "tmp",
            timeout=config.integer("TASK_TIMEOUT"),
            silence=config.integer("TASK_SILENCE"),
            warm=self.warm,
        )

    def _serve(self, loop: Callable[[], str], notes: list[FailureNotes]) -> str:
        config = self.config
        if self.metadata is not None:
            watch_for_interruption(
                self.metadata,
                config.integer("METADATA_POLL"),
                self.stopper.event,
                self.stopper.stop,
                self.drain,
            )
        try:
            return loop()
        finally:
            if self.warm is not None:
                self.warm.discard()
            if self.stopper.stopped:
                self.uploader.cancel()
            else:
                self.uploader.wait()
            self.idle()  # the last outputs are stored: the group may take the node
            for kept in notes:
                kept.flush()
            if self.protection is not None and self.stopper.reason == GROUP_TERMINATES:
                self.protection.let_go()
            self.state.show(state="stopped")

    def _loop(self, queue: WorkQueue, serving: Serving) -> str:
        config = self.config
        wait = config.integer("RECEIVE_WAIT")
        retries = Backoff(config, self.stopper.event)
        number = 0
        while not self.stopper.stopped:
            if (drained := self.drained()) is not None:
                return drained
            self.state.show(state="waiting for a task", task=None, frame=None, sample=None)
            if not self.uploader.busy:
                serving.notes.flush()
            try:
                with cloud_errors(f"taking a task from sqs://{queue.name}"):
                    message = queue.receive(wait_seconds=wait)
                    idle = message is None and not self.uploader.busy and _queue_done(queue)
            except CloudError as error:
                retries.failed(error)
                continue
            retries.succeeded()
            if message is None:
                self.idle()
                ended = self.when_idle() if idle else None
                if ended is not None:
                    return ended
                continue
            lease = self._lease(queue, message)
            if lease is None:
                continue
            number += 1
            self._render(lease, number, serving, self.stopper.event)
        return f"stopped: {self.stopper.reason}"

    def drain(self, reason: str) -> None:
        """The fleet was stopped (``reason``): finish the task in hand, take no other."""
        log.warning("draining (%s): the task in hand finishes, no other is taken", reason)
        self.drain_reason = reason

    def drained(self) -> str | None:
        """How the node ends once drained (as when its work is done), or None."""
        if self.drain_reason is None:
            return None
        self.idle()
        return "shutdown" if self.state.done_mode() == "shutdown" else "exit"

    def when_idle(self) -> str | None:
        """Nothing is left to do: the DONE mode to end with, or None after a poll pause."""
        mode = self.state.done_mode()
        if mode != "poll":
            return mode
        self.state.show(state="polling")
        self.stopper.event.wait(self.config.integer("POLL_PAUSE"))
        return None

    def idle(self) -> None:
        """Nothing is held: an Auto Scaling group may take this node (once its fleet's budget
        has been checked)."""
        if self.budget is not None:
            self.budget.check()
        if self.protection is not None and not self.uploader.busy:
            self.protection.release()

    def _lease(self, queue: WorkQueue, message: Message) -> Lease | None:
        """The task's lease, renewed until it ends; None when the node is stopping or draining:
        the task went back to the queue at once."""
        if self.budget is not None:
            self.budget.check()
        if self.protection is not None:
            self.protection.hold()
        lease = Lease(
            queue,
            message,
            timeout=self.config.integer("VISIBILITY_TIMEOUT"),
            period=self.config.integer("VISIBILITY_TIMEOUT_REASSERT"),
        )
        if self.stopper.stopped or self.drain_reason is not None:
            lease.give_back()
            return None
        return lease

    def _serve_jobs(self) -> str:
        farm = FarmJobs(JobRegistry(self.config), self)
        return self._serve(farm.loop, farm.notes)

    def _render(self, lease: Lease, number: int, serving: Serving, stop: threading.Event) -> None:
        """Render the leased task; ``stop`` (the node's, or its job's cancel) stops it at once."""
        message: Message = lease.message
        started = time.time()
        try:
            task = decode_task(message.body)
        except TaskError as error:
            serving.notes.record(lease, f"Message {message.message_id} is not a task: {error}")
            return
        what = title(task) if serving.job is None else f"{serving.job.id} {title(task)}"
        serving.ledger.working_on(
            title(task), since=started, dollars_per_hour=self.prices.price(started)
        )
        log.info("task %d: %s (try %d)", number, what, message.receive_count)
        self.state.show(state="rendering", task=what, frame=None, sample=None)
        outdir = self.work / f"outdir{number}"
        try:
            result = serving.runner.run(task, outdir, stop=stop, on_line=self._show_line)
        except BrendaError as error:
            serving.notes.record(lease, f"Task {what} could not start: {error}")
            serving.ledger.add(self._cost(task, started), "failed")
            return
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            lease.give_back()
            serving.ledger.add(self._cost(task, started), "given back")
            raise disk_full_error(self.work) from error
        spent = self._cost(task, started, result.render_seconds)
        self._settle(
            lease,
            task=task,
            what=what,
            result=result,
            outdir=outdir,
            serving=serving,
            spent=spent,
            stop=stop,
        )

    def _show_line(self, line: BlenderLine) -> None:
        blender_log.info("| %s", line.text)
        if line.device is not None:
            self.state.show(device=line.device)
        if line.frame is not None or line.sample is not None:
            self.state.show(
                force=False,
                frame=line.frame,
                sample=f"{line.sample[0]}/{line.sample[1]}" if line.sample else None,
            )

    def _cost(self, task: Task, started: float, render_seconds: float = 0.0) -> TaskCost:
        """What the task took from ``started`` until now, and cost at this node's price."""
        ended = time.time()
        return TaskCost(
            task=title(task),
            frames=frames_of(task),
            started=started,
            wall_seconds=ended - started,
            render_seconds=render_seconds,
            dollars_per_hour=self.prices.price(started),
            dollars=self.prices.cost(started, ended),
        )

    def _settle(
        self,
        lease: Lease,
        *,
        task: Task,
        what: str,
        result: RunResult,
        outdir: Path,
        serving: Serving,
        spent: TaskCost,
        stop: threading.Event,
    ) -> None:
        """A rendered task's outputs go to the uploader, or the task fails or goes back."""
        problem = result.failure() or _missing_frames(task, result)
        if problem is None:
            problem = check_outputs(
                result.outputs,
                size=result.size,
                single_colour=isinstance(task, RenderTask) and task.settings.single_colour,
            )
        if problem is not None and not result.stopped_by_node and out_of_space(self.work, result):
            full = disk_full_error(self.work)
            shutil.rmtree(outdir, ignore_errors=True)
            lease.give_back()
            serving.ledger.add(spent, "given back")
            raise full
        # Frames a hung task saved before the watchdog stopped it are stored, then it fails.
        keep = problem is None or (result.watchdog is not None and bool(result.outputs))
        if result.stopped_by_node:
            log.warning("task %s stopped; it goes back to the queue", what)
            lease.give_back()
            serving.ledger.add(spent, "given back")
        elif not keep:
            serving.notes.record(lease, f"Task {what} failed: {problem}")
            serving.ledger.add(spent, "failed")
        else:
            log.info("task %s rendered in %.3f s", what, result.seconds)
            self.state.show(state="waiting for the previous upload")
            if self.uploader.free(stop):
                failure = f"Task {what} failed: {problem}" if problem else None
                self.uploader.submit(
                    StoredTask(
                        lease,
                        what,
                        outdir,
                        result.outputs,
                        result.seconds,
                        serving.store,
                        serving.notes,
                        serving.ledger,
                        spent,
                        failure,
                        (serving.runner, result.denoise, result.blender)
                        if result.denoise and result.blender
                        else None,
                    )
                )
                return
            log.warning("task %s rendered, but the node stops: it goes back to the queue", what)
            lease.give_back()
            serving.ledger.add(spent, "given back")
        shutil.rmtree(outdir, ignore_errors=True)


def _queue_done(queue: WorkQueue) -> bool:
    counts = queue.counts()
    return counts.pending + counts.in_flight + counts.delayed == 0


class FarmJobs:
    """A node serving every job of its farm: the highest priority active job first, equal
    priorities in turn, paused jobs skipped. Projects are kept by their URL and checked by
    content (ETag, or size and time for files): jobs of one project share one fetch; the last few
    stay on disk, fewer when they are big."""

    def __init__(self, registry: JobRegistry, node: Node) -> None:
        self.registry = registry
        self.node = node
        self.config = node.config
        self.projects = node.work / "projects"
        self._used: dict[str, float] = {}
        """Project folders on disk (named after their URL) to when a task last used them."""
        self._folder_of: dict[str, str] = {}
        """Job id: the project folder its serving renders from."""
        self.notes: list[FailureNotes] = []
        """Every job's failure notes, kept after its project is evicted: none is lost."""
        self._ledgers: dict[str, LedgerWriter] = {}
        """Every job's ledger of this node run, kept after its project is evicted."""
        self._by_job: dict[str, Serving] = {}
        self._queues: dict[str, WorkQueue] = {}
        self._jobs: list[Job] = []
        self.refresh = float(node.config.integer("JOB_REFRESH"))
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

    def serving(self, job: Job) -> Serving:
        """The job's project (fetched unless on disk and unchanged), runner, store and notes."""
        folder_name = hashlib.sha256(job.project.encode()).hexdigest()[:16]
        self._used[folder_name] = time.monotonic()
        known = self._by_job.get(job.id)
        if known is not None:
            return known
        self.node.state.show(state="fetching project", task=job.id)
        folder = self.projects / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        url = parse_url(job.project, allowed=("s3", "file"))
        project = fetch_url(url, self.config, folder)
        notes = next((kept for kept in self.notes if kept.job == job.id), None)
        if notes is None:
            store = open_store_at(self.config, job.output)
            notes = FailureNotes(store, self.node.state, self.node.name, job=job.id)
            self.notes.append(notes)
        ledger = self._ledgers.setdefault(job.id, self.node.ledger(notes.store))
        serving = Serving(self.node._runner(project), notes.store, notes, ledger, job)
        self._by_job[job.id] = serving
        self._folder_of[job.id] = folder_name
        self._evict(keep=folder_name)
        return serving

    def _evict(self, keep: str) -> None:
        """Remove the least recently used projects beyond JOB_PROJECTS_KEPT, or beyond
        PROJECTS_DISK_SHARE of the work disk; never ``keep``."""
        sizes = {name: folder_bytes(self.projects / name) for name in self._used}
        room = (shutil.disk_usage(self.projects).free + sum(sizes.values())) * PROJECTS_DISK_SHARE
        for name in sorted(self._used, key=self._used.__getitem__):
            if len(sizes) <= JOB_PROJECTS_KEPT and sum(sizes.values()) <= room:
                return
            if name == keep:
                continue
            log.info("project folder %s removed to make room", name)
            shutil.rmtree(self.projects / name, ignore_errors=True)
            del self._used[name], sizes[name]
            for job_id in [job for job, used in self._folder_of.items() if used == name]:
                del self._folder_of[job_id], self._by_job[job_id]

    def loop(self) -> str:
        node, config = self.node, self.config
        retries = Backoff(config, node.stopper.event)
        number = 0
        while not node.stopper.stopped:
            if (drained := node.drained()) is not None:
                return drained
            node.state.show(state="waiting for a task", task=None, frame=None, sample=None)
            try:
                taken = self._take()
                idle = taken is None and not node.uploader.busy and self._done()
            except CloudError as error:
                retries.failed(error)
                continue
            retries.succeeded()
            if taken is None:
                node.idle()
                ended = node.when_idle() if idle else None
                if ended is not None:
                    return ended
                continue
            job, queue, message = taken
            lease = node._lease(queue, message)
            if lease is None:
                continue
            number += 1
            try:
                serving = self.serving(job)
            except BrendaError as error:
                log.error("job %s: %s", job.id, error)
                lease.give_back()
                node.stopper.event.wait(config.integer("ERROR_PAUSE"))
                continue
            with self._cancel_watch(job) as stop:
                node._render(lease, number, serving, stop)
        return f"stopped: {node.stopper.reason}"

    def _take(self) -> tuple[Job, WorkQueue, Message] | None:
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

    def _receive(self, job: Job, wait: int) -> tuple[Job, WorkQueue, Message] | None:
        queue = self.queue(job)
        if queue is None:
            return None
        with cloud_errors(f"taking a task of job {job.id}"):
            message = queue.receive(wait_seconds=wait)
        if message is not None:
            self._empty.pop(job.id, None)
            return job, queue, message
        shortest, longest = EMPTY_SKIP_SECONDS
        skip = min(longest, max(shortest, self._empty.get(job.id, (0.0, 0.0))[1] * 2))
        self._empty[job.id] = (time.monotonic() + skip, skip)
        return None

    def _done(self) -> bool:
        """No job has a task left, waiting, running or paused (counted every POLL_PAUSE
        seconds at most: an idle node's counting costs two requests per job)."""
        now = time.monotonic()
        if now - self._done_checked < self.config.integer("POLL_PAUSE"):
            return False
        self._done_checked = now
        for job in self.jobs(fresh=True):
            if job.state == JobState.CANCELLED:
                continue
            queue = self.queue(job)
            if queue is not None and not _queue_done(queue):
                return False
        return True

    @contextlib.contextmanager
    def _cancel_watch(self, job: Job) -> Iterator[threading.Event]:
        """An event set when the node stops or the job is cancelled (its record is read again
        every JOB_REFRESH seconds while its task runs)."""
        stop = threading.Event()
        finished = threading.Event()

        def watch() -> None:
            checked = time.monotonic()
            while not finished.wait(0.05):
                if self.node.stopper.stopped:
                    stop.set()
                    return
                if time.monotonic() - checked >= self.refresh:
                    checked = time.monotonic()
                    try:
                        state = self.registry.job(job.id).state
                    except BrendaError as error:
                        log.warning("could not read job %s: %s", job.id, error)
                        continue
                    if state == JobState.CANCELLED:
                        log.warning("job %s was cancelled: its task stops", job.id)
                        stop.set()
                        return

        watcher = threading.Thread(target=watch, name="brenda-job-watch", daemon=True)
        watcher.start()
        try:
            yield stop
        finally:
            finished.set()
            watcher.join()


def folder_bytes(folder: Path) -> int:
    """What the files under ``folder`` take (links not followed)."""
    return sum(
        path.lstat().st_size
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    )


def _missing_frames(task: Task, result: RunResult) -> str | None:
    if not isinstance(task, RenderTask):
        return None
    expected = len(task.chunk.frames())
    if len(result.reported) < expected:
        return f"Blender wrote {len(result.reported)} of {expected} frames ({result.last_error})"
    return None


def cancel_own_spot_request(config: Config) -> None:
    """Cancel the spot request that launched this node, so that a persistent request does not
    start another node once this one powers off (the original did this too)."""

    try:
        instance = MetadataClient(config.text("METADATA_URL")).get("/latest/meta-data/instance-id")
        if instance is None:
            return
        with cloud_errors("cancelling this node's spot request"):
            client = make_client("ec2", config)
            request = ec2.spot_request_of(client, instance.strip())
            if request is not None:
                client.cancel_spot_instance_requests(SpotInstanceRequestIds=[request])
                log.warning("cancelled this node's spot request %s", request)
    except (OSError, CloudError) as error:
        log.warning("could not cancel this node's spot request: %s", error)


def shut_down(config: Config) -> None:
    """Power the machine off (DONE=shutdown), cancelling its own spot request first."""
    if config.flag("RUNNING_ON_EC2"):
        cancel_own_spot_request(config)
    command = shlex.split(config.text("SHUTDOWN_COMMAND"))
    log.warning("shutting down: %s", " ".join(command))
    try:
        subprocess.run(command, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise BrendaError(f"The shutdown command {command[0]} failed: {error}.") from error
