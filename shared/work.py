# SPDX-License-Identifier: GPL-3.0-or-later
"""The work queue operations behind ``brenda-work`` and the add-on. No bpy module use.

push: encode and validate every task first, then send; status: pending, in flight and
dead-lettered counts; reset: purge, or delete the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .aws.session import cloud_errors, make_client
from .aws.sqs import QueueCounts, WorkQueue
from .config import Config
from .progress import Progress
from .tasks import Task, encode_task
from .urls import SqsUrl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    count: int
    queue: str
    region: str


def queue_client(config: Config, *, pool: int = 10) -> tuple[Any, SqsUrl, str]:
    """The SQS client, the configured WORK_QUEUE and its region."""
    queue_url = config.require_url("WORK_QUEUE", SqsUrl)
    with cloud_errors("connecting to SQS"):
        client = make_client("sqs", config, pool=pool)
    return client, queue_url, str(client.meta.region_name)


def open_queue(config: Config) -> WorkQueue | None:
    """The configured work queue, or None if it does not exist yet."""
    client, queue_url, _ = queue_client(config)
    with cloud_errors(f"looking up {queue_url}"):
        return WorkQueue.open(client, queue_url.queue)


def push(config: Config, tasks: Sequence[Task], progress: Progress | None = None) -> PushResult:
    """Validate and encode every task, then send them all to the work queue."""
    bodies = [encode_task(task) for task in tasks]
    client, queue_url, region = queue_client(config, pool=16)
    with cloud_errors(f"creating {queue_url}"):
        queue = WorkQueue.ensure(
            client,
            queue_url.queue,
            visibility_timeout=config.integer("VISIBILITY_TIMEOUT"),
            max_receive_count=config.integer("MAX_RECEIVE_COUNT"),
            retention=config.integer("QUEUE_RETENTION"),
        )
    count = queue.send_all(bodies, progress)
    log.info("pushed %s tasks to %s in %s", count, queue_url, region)
    return PushResult(count=count, queue=str(queue_url), region=region)


def status(config: Config) -> QueueCounts | None:
    """Counts of the work queue, or None if it does not exist."""
    queue = open_queue(config)
    if queue is None:
        return None
    with cloud_errors(f"reading sqs://{queue.name}"):
        return queue.counts()


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
