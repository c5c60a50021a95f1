# SPDX-License-Identifier: GPL-3.0-or-later
"""Storing a rendered task's outputs while the next task renders, and the failure notes kept
beside the outputs. No bpy module use.

Nothing is lost: a message is deleted only after every output of its task is stored (and, for
the last tile of a frame, the frame assembled); a task whose outputs cannot be stored goes back
to the queue with its error recorded beside the outputs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.core.errors import BrendaError, Cancelled, CloudError, StoreError
from shared.core.progress import Progress
from shared.jobs.costs import TaskCost
from shared.outputs.failures import failure_note
from shared.outputs.store import OutputStore, check_name, failure_name
from shared.outputs.tiles import assemble, complete_frames, parse_tile_name, tile_prefix
from shared.tasks.task import FRAME_EXTENSIONS

from .backoff import Backoff
from .blender import TaskRunner
from .blenders import Blender
from .lease import Lease
from .ledger import LedgerWriter
from .news import JobNews
from .status import NodeState

log = logging.getLogger(__name__)

POLL_UPLOAD_SECONDS = 0.05


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
    then: Callable[[], None] | None = None
    """What follows once the task is stored (its job's video, if its last frame was)."""


class FailureNotes:
    """Why tasks failed, beside the outputs for ``brenda-work status`` and ``show``.

    A note the store cannot take now (it is down) stays in the node's log and ``status.json`` and
    is kept until the store answers again; it never costs the task a try of its own.
    """

    def __init__(
        self,
        store: OutputStore,
        state: NodeState,
        node: str,
        *,
        job: str | None = None,
        news: JobNews | None = None,
    ) -> None:
        self.store = store
        self.state = state
        self.node = node
        self.job = job
        self.news = news
        """The job's notifications (a farm of jobs): a task dead-lettered, the job finished."""
        self._pending: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, lease: Lease, error: str) -> None:
        """The task failed: give it back at once and note why."""
        log.error("%s", error)
        lease.give_back()
        self.state.show(last_error=error)
        message = lease.message
        note = failure_note(error, node=self.node, attempt=message.receive_count, body=message.body)
        with self._lock:
            self._pending.append((failure_name(message.message_id), note))
        self.flush()
        if self.news is not None:
            self.news.failed(message, lease.queue.max_receive_count, error)

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
            if task.then is not None:
                task.then()
            if task.notes.news is not None:
                task.notes.news.stored()
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
            if task.store.put(path, name, task.progress):
                log.info("stored %s in %s", name, task.store)
            else:
                log.warning("%s was stored before (an earlier try of the task): it stays", name)
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
                if not store.put(frame, frame_name):
                    log.warning("%s was assembled before: it stays", frame_name)
                    continue
            log.info("assembled %s from %d tiles", frame_name, len(tiles))
