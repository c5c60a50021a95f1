# SPDX-License-Identifier: GPL-3.0-or-later
"""The work queue operations behind ``brenda-work`` and ``brenda demo``, and the one path that
sends tasks (``send_tasks``, which a job's submit takes too). No bpy module use.

push: encode and validate every task first, then send; status: pending, in flight and
dead-lettered counts; reset: purge, or delete the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..aws.session import cloud_errors, make_client
from ..aws.sqs import QueueCounts, WorkQueue
from ..core.config import Config
from ..core.errors import BrendaError, TaskError
from ..core.progress import Progress
from ..core.text import printable
from ..core.urls import SqsUrl
from ..outputs.store import OutputStore, failure_name, open_store
from .task import Task, decode_task, encode_task, title

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    count: int
    queue: str
    region: str


def queue_client(config: Config, *, pool: int = 10) -> tuple[Any, SqsUrl, str]:
    """The SQS client, the configured WORK_QUEUE and its region."""
    queue_url = config.url("WORK_QUEUE", SqsUrl)
    with cloud_errors("connecting to SQS"):
        client = make_client("sqs", config, pool=pool)
    return client, queue_url, str(client.meta.region_name)


def open_queue(config: Config) -> WorkQueue | None:
    """The configured work queue, or None if it does not exist yet."""
    client, queue_url, _ = queue_client(config)
    with cloud_errors(f"looking up {queue_url}"):
        return WorkQueue.open(client, queue_url.queue)


def send_tasks(
    config: Config,
    client: Any,
    name: str,
    tasks: Collection[Task],
    progress: Progress | None = None,
    *,
    own_queue: bool = False,
) -> int:
    """Validate every task (nothing is sent if one is bad), make the queue ``name`` and its
    dead-letter queue (or bring them up to the configured lease, tries and retention), then send
    the tasks; returns how many were sent. ``own_queue``: the queue holds these tasks alone (a
    job's), so a failed send deletes it rather than leave part of them.

    ``tasks`` is read twice, once to check and once to send, and never held whole.
    """
    for task in tasks:
        encode_task(task)
    with cloud_errors(f"creating sqs://{name}"):
        queue = WorkQueue.ensure(
            client,
            name,
            visibility_timeout=config.integer("VISIBILITY_TIMEOUT"),
            max_receive_count=config.integer("MAX_RECEIVE_COUNT"),
            retention=config.integer("QUEUE_RETENTION"),
        )
    try:
        return queue.send_all((encode_task(task) for task in tasks), progress, total=len(tasks))
    except BrendaError:
        if own_queue:
            with cloud_errors(f"removing the half-filled sqs://{name}"):
                queue.delete_queues()
        raise


def push(config: Config, tasks: Collection[Task], progress: Progress | None = None) -> PushResult:
    """Send the tasks to the work queue (WORK_QUEUE), made if needed."""
    client, queue_url, region = queue_client(config, pool=16)
    count = send_tasks(config, client, queue_url.queue, tasks, progress)
    log.info("pushed %s tasks to %s in %s", count, queue_url, region)
    return PushResult(count=count, queue=str(queue_url), region=region)


def status(config: Config) -> QueueCounts | None:
    """Counts of the work queue, or None if it does not exist."""
    queue = open_queue(config)
    if queue is None:
        return None
    with cloud_errors(f"reading sqs://{queue.name}"):
        return queue.counts()


@dataclass(frozen=True)
class DeadTask:
    what: str
    """The task's frames (and tile), or why its message is not a task."""
    error: str | None
    """The last error a node recorded for it; None where none is known."""


def dead_letters(config: Config, limit: int = 10) -> list[DeadTask]:
    """Up to ``limit`` dead-lettered tasks with the last error recorded for each."""

    queue = open_queue(config)
    if queue is None:
        return []
    with cloud_errors(f"reading the dead-letter queue of sqs://{queue.name}"):
        messages = queue.peek_dead_letters(limit)
    store = open_store(config) if messages and config.get("RENDER_OUTPUT") else None
    dead = []
    for message in messages:
        try:
            what = title(decode_task(message.body))
        except TaskError:
            what = f"message {printable(message.message_id)} (not a Brenda task)"
        dead.append(DeadTask(what, _last_error(store, message.message_id)))
    return dead


def _last_error(store: OutputStore | None, message_id: str) -> str | None:
    """The first line of the failure a node recorded (any node, so any task, may write it: its
    control characters are shown, not obeyed); a store that cannot be read says so."""
    if store is None:
        return None
    try:
        text = store.get_text(failure_name(message_id))
    except BrendaError as error:
        return f"(the recorded error cannot be read: {error})"
    return printable(text.strip().splitlines()[0]) if text and text.strip() else None


def reset(config: Config, *, hard: bool) -> bool:
    """Empty the work queue (``hard``: delete it). False if there was no queue."""
    queue = open_queue(config)
    if queue is None:
        return False
    if hard:
        with cloud_errors(f"deleting sqs://{queue.name}"):
            queue.delete_queues()
    else:
        with cloud_errors(f"emptying sqs://{queue.name}"):
            queue.purge()
    return True
