# SPDX-License-Identifier: GPL-3.0-or-later
"""The node and its loop: take a task, keep its lease, render, store the outputs, then delete it.

No bpy module use. The tasks come from one source (``brenda_node.sources``): a ``WORK_QUEUE``
farm's queue, or every job of the farm; take, lease, render, store, give back, failure notes,
drain and done are the same for both, here. Nothing is lost: a message is deleted only after
every output of its task is stored (and, for the last tile of a frame, the frame assembled); a
task that fails, or that is running when the node is told to stop, goes back to the queue at
once with its error recorded beside the outputs. Outputs of one task upload while the next task
renders (``brenda_node.uploader``), as in the original. SQS moves a task that failed
``MAX_RECEIVE_COUNT`` times to the dead-letter queue.

The node decides its work is done only when a long poll brings nothing, no upload is under way
and its source has no task pending or held by another node, since a task held by a node that
dies comes back when its lease ends.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared.aws.session import caller_user_id
from shared.core.config import Config
from shared.core.errors import BrendaError, CloudError, TaskError
from shared.jobs.costs import LOCAL, Machine, PriceBook, TaskCost
from shared.jobs.registry import JobRegistry
from shared.outputs.store import OutputStore, open_store
from shared.tasks.task import RenderTask, Task, decode_task, title

from .backoff import Backoff
from .blender import BlenderLine, RunResult, TaskRunner
from .blenders import Blenders
from .budget import BudgetWatch
from .ebs import EbsVolumes, LinuxBlockDevices, mount_additional
from .group import GroupMember
from .lease import Lease
from .ledger import LedgerWriter, frames_of
from .project import fetch_project
from .sources import JobsSource, QueueSource, Serving, Taken, TaskSource, open_work_queue
from .spot import GROUP_TERMINATES, MetadataClient, machine_from_metadata, watch_for_interruption
from .status import NodeState
from .uploader import FailureNotes, StoredTask, Uploader
from .validate import check_outputs
from .video import encode_when_complete
from .warm import WarmPool, default_memory_limit

log = logging.getLogger(__name__)
blender_log = logging.getLogger("brenda_node.blender.output")

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


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
        self.owner: str | None = None
        """The AWS user id the node acts as, which its ledgers' names begin with."""
        self.group: GroupMember | None = None
        self.budget: BudgetWatch | None = None
        self.drain_reason: str | None = None
        """Set when the node's fleet was stopped: it takes no more tasks."""
        self.metadata = (
            MetadataClient(config.text("METADATA_URL")) if config.flag("RUNNING_ON_EC2") else None
        )

    def run(self, *, dry_run: bool = False) -> str:
        """Work until there is no work left or the node is stopped; returns why it ended.

        With ``WORK_QUEUE`` set the node serves that queue and ``BLENDER_PROJECT``; without it,
        every job of its farm (``FARM_OUTPUTS``).
        """
        config = self.config
        self.state.begin(config.done_mode())
        self.find_blenders()
        self.prices = PriceBook(self._machine(), config)
        try:
            self.owner = caller_user_id(config)
        except CloudError as error:
            log.warning("ledgers named without the node's AWS user id: %s", error)
        if self.metadata is not None:
            self.group = GroupMember(config, self.metadata)
            self.budget = BudgetWatch(config, self.group)
        if config.serves_jobs:
            if dry_run:
                return "dry run: jobs are fetched as they come"
            return self.serve(lambda: JobsSource(JobRegistry(config), self))
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
                self.runner(project),
                store,
                FailureNotes(store, self.state, self.name),
                self.ledger(store),
            )
            wait, lease = config.integer("RECEIVE_WAIT"), config.integer("VISIBILITY_TIMEOUT")
            return self.serve(
                lambda: QueueSource(open_work_queue(config), serving, wait=wait, lease=lease)
            )
        finally:
            volumes.release()

    def _machine(self) -> Machine:
        return LOCAL if self.metadata is None else machine_from_metadata(self.metadata)

    def ledger(self, store: OutputStore) -> LedgerWriter:
        return LedgerWriter(store, self.owner, self.name, self.prices.machine, self.started)

    def find_blenders(self) -> Blenders:
        """The node's Blenders, each one's version asked (and logged) once, at the start of a
        run; every runner shares them."""
        self._blenders = Blenders.find(self.config, self.work / "bin", self.work / "blenders")
        return self._blenders

    @property
    def blenders(self) -> Blenders:
        return self._blenders or self.find_blenders()

    def runner(self, project: Path) -> TaskRunner:
        """A runner of tasks of ``project`` with the node's Blenders and warm pool."""
        config = self.config
        return TaskRunner(
            project,
            self.blenders,
            self.work / "tmp",
            timeout=config.integer("TASK_TIMEOUT"),
            silence=config.integer("TASK_SILENCE"),
            warm=self.warm,
        )

    def serve(self, make_source: Callable[[], TaskSource]) -> str:
        """Watch for spot notices and loop over the tasks of the source ``make_source`` makes;
        at the end, store or give back the last outputs, store the failure notes and let go."""
        config = self.config
        if self.metadata is not None:
            watch_for_interruption(
                self.metadata,
                config.integer("METADATA_POLL"),
                self.stopper.event,
                self.stopper.stop,
                self.drain,
            )
        source: TaskSource | None = None
        try:
            source = make_source()
            return self.loop(source)
        finally:
            if self.warm is not None:
                self.warm.discard()
            if self.stopper.stopped:
                self.uploader.cancel()
            else:
                self.uploader.wait()
            self.idle()  # the last outputs are stored: their cost counts in the budget
            for notes in source.notes() if source is not None else []:
                notes.flush()
            if self.group is not None:
                self.group.let_go()
            self.state.show(state="stopped")

    def loop(self, source: TaskSource) -> str:
        """Take, lease, render and store the tasks of ``source`` until it has no work left (then
        the DONE mode says what to do), the node is drained or it is stopped; why it ended."""
        retries = Backoff(self.config, self.stopper.event)
        number = 0
        while not self.stopper.stopped:
            if (drained := self.drained()) is not None:
                return drained
            self.state.show(state="waiting for a task", task=None, frame=None, sample=None)
            if not self.uploader.busy:
                for notes in source.notes():
                    notes.flush()
            try:
                taken = source.take()
                idle = taken is None and not self.uploader.busy and source.done()
            except CloudError as error:
                retries.failed(error)
                continue
            retries.succeeded()
            if taken is None:
                self.idle()
                ended = self.when_idle() if idle else None
                if ended is not None:
                    return ended
                continue
            lease = self.lease(taken)
            if lease is None:
                continue
            number += 1
            try:
                serving = source.serving(taken)
            except BrendaError as error:
                self.unserved(source, taken, lease, error)
                self.stopper.event.wait(self.config.integer("ERROR_PAUSE"))
                continue
            with source.stopping(taken, self.stopper.event) as stop:
                self.render(lease, number, serving, stop)
        return f"stopped: {self.stopper.reason}"

    def unserved(self, source: TaskSource, taken: Taken, lease: Lease, error: BrendaError) -> None:
        """What the task renders with cannot be had (its project cannot be fetched, say): the
        task fails like any other, noted and given back, so that it goes to the dead-letter
        queue after its tries with its error for ``brenda-work show``."""
        job = f"{taken.job.id} " if taken.job is not None else ""
        try:
            what = f"Task {job}{title(decode_task(taken.message.body))}"
        except TaskError:
            what = f"Message {taken.message.message_id} of {taken.origin}"
        failure = f"{what} could not start: {error}"
        try:
            notes = source.notes_of(taken)
        except BrendaError as unreachable:
            log.error("%s (not noted: %s)", failure, unreachable)
            lease.give_back()
            return
        notes.record(lease, failure)

    def drain(self, reason: str) -> None:
        """The fleet was stopped or the group terminates the node (``reason``): finish the task
        in hand, take no other."""
        log.warning("draining (%s): the task in hand finishes, no other is taken", reason)
        if reason == GROUP_TERMINATES and self.group is not None:
            self.group.hold_termination(self.stopper.event)
        self.drain_reason = self.drain_reason or reason

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
        """Nothing is held: check the fleet's budget."""
        if self.budget is not None:
            self.budget.check()

    def lease(self, taken: Taken) -> Lease | None:
        """The task's lease, renewed until it ends; None when the node is stopping or draining:
        the task went back to the queue at once."""
        if self.budget is not None:
            self.budget.check()
        lease = Lease(
            taken.queue,
            taken.message,
            timeout=self.config.integer("VISIBILITY_TIMEOUT"),
            period=self.config.integer("VISIBILITY_TIMEOUT_REASSERT"),
        )
        if self.stopper.stopped or self.drain_reason is not None:
            lease.give_back()
            return None
        return lease

    def render(self, lease: Lease, number: int, serving: Serving, stop: threading.Event) -> None:
        """Render the leased task; ``stop`` (the node's, or its job's cancel) stops it at once."""
        message = lease.message
        started = time.time()
        try:
            task = serving.task(message.body)
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
            full = disk_full_error(self.work)
            serving.notes.record(lease, f"Task {what} could not run on node {self.name}: {full}")
            serving.ledger.add(self._cost(task, started), "given back")
            raise full from error
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
            serving.notes.record(lease, f"Task {what} could not run on node {self.name}: {full}")
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
                        then=self._video_after(serving),
                    )
                )
                return
            log.warning("task %s rendered, but the node stops: it goes back to the queue", what)
            lease.give_back()
            serving.ledger.add(spent, "given back")
        shutil.rmtree(outdir, ignore_errors=True)

    def _video_after(self, serving: Serving) -> Callable[[], None] | None:
        """What encodes the video of the task's job once its last frame is stored (``--video``
        jobs only)."""
        job = serving.job
        if job is None or not job.video:
            return None
        return lambda: encode_when_complete(
            job, serving.store, serving.ledger, prices=self.prices, work=self.work, node=self.name
        )


def _missing_frames(task: Task, result: RunResult) -> str | None:
    if not isinstance(task, RenderTask):
        return None
    expected = len(task.chunk.frames())
    if len(result.reported) < expected:
        return f"Blender wrote {len(result.reported)} of {expected} frames ({result.last_error})"
    return None
