# SPDX-License-Identifier: GPL-3.0-or-later
"""The work queue on SQS: a queue with a dead-letter queue, batched sends, leases.

No bpy module use. Every call goes through a boto3 SQS client; callers wrap calls in
``cloud_errors`` to turn failures into sentences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..core.errors import BrendaError, Cancelled, CloudError
from ..core.progress import Progress
from .session import cloud_errors, error_code

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 262_144
DEAD_LETTER_SUFFIX = "-dead"
MAX_QUEUE_NAME = 80
SEND_ATTEMPTS = 4
SENDS_IN_FLIGHT = 8
PEEK_SECONDS = 30
"""How long dead-lettered tasks read for a listing stay hidden if showing them again fails."""
NO_SUCH_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
"""The error codes SQS answers for a queue that does not exist (or was deleted)."""


class QueueGoneError(CloudError):
    """The queue was deleted while a node used it (its job was cancelled): its tasks are over,
    finished or given back; retrying cannot bring it back."""


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    """Tasks waiting to be taken."""
    in_flight: int
    """Tasks a node holds right now."""
    delayed: int
    dead: int | None
    """Tasks moved to the dead-letter queue after too many failures; None without one."""


@dataclass(frozen=True)
class Message:
    body: str
    receipt: str
    message_id: str
    receive_count: int


def batches(bodies: Iterable[str]) -> Iterator[list[tuple[int, str]]]:
    """Group ``(index, body)`` into SendMessageBatch requests: 10 entries, 256 KiB at most."""
    batch: list[tuple[int, str]] = []
    size = 0
    for index, body in enumerate(bodies):
        body_size = len(body.encode())
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + body_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((index, body))
        size += body_size
    if batch:
        yield batch


class WorkQueue:
    """One SQS queue (and its dead-letter queue) reached through a boto3 client."""

    def __init__(
        self,
        client: Any,
        name: str,
        url: str,
        dead_letter_url: str | None,
        max_receive_count: int | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.url = url
        self.dead_letter_url = dead_letter_url
        self.max_receive_count = max_receive_count
        """Tries before SQS moves a task to the dead-letter queue (None: not known)."""

    @classmethod
    def open(cls, client: Any, name: str, *, dead_letters: bool = True) -> WorkQueue | None:
        """The existing queue named ``name``, or None if there is none; ``dead_letters``: also
        find its dead-letter queue (the nodes have no use for it)."""
        url = _queue_url(client, name)
        if url is None:
            return None
        if not dead_letters:
            return cls(client, name, url, None)
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        dead_letter_url = max_receive_count = None
        if policy:
            redrive = json.loads(policy)
            dead_letter_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
            dead_letter_url = _queue_url(client, dead_letter_name)
            max_receive_count = int(redrive.get("maxReceiveCount", 0)) or None
        return cls(client, name, url, dead_letter_url, max_receive_count)

    @classmethod
    def ensure(
        cls,
        client: Any,
        name: str,
        *,
        visibility_timeout: int,
        max_receive_count: int,
        retention: int,
    ) -> WorkQueue:
        """Create the queue and its dead-letter queue, or bring existing ones up to date."""
        dead_letter_name = name + DEAD_LETTER_SUFFIX
        if len(dead_letter_name) > MAX_QUEUE_NAME:
            raise CloudError(
                f"Queue name '{name}' is too long: Brenda adds '{DEAD_LETTER_SUFFIX}' for its "
                f"dead-letter queue and SQS allows {MAX_QUEUE_NAME} characters; use a shorter "
                "WORK_QUEUE."
            )
        retention_attributes = {"MessageRetentionPeriod": str(retention)}
        dead_letter_url = _create_or_update(client, dead_letter_name, retention_attributes)
        dead_letter_arn = client.get_queue_attributes(
            QueueUrl=dead_letter_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        attributes = {
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(retention),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        }
        url = _create_or_update(client, name, attributes)
        return cls(client, name, url, dead_letter_url)

    # --- sending --------------------------------------------------------------------------

    def send_all(
        self,
        bodies: Iterable[str],
        progress: Progress | None = None,
        *,
        total: int | None = None,
        in_flight: int = SENDS_IN_FLIGHT,
    ) -> int:
        """Send every body, 10 to a request with ``in_flight`` requests at a time.

        ``bodies`` is read as the sends go (at most twice ``in_flight`` batches ahead), so a push of
        any size holds a few hundred tasks in memory, not all of them. ``total`` (else
        ``len(bodies)``) is for the progress bar. Returns the number sent; on failure raises
        CloudError saying how many were sent.
        """
        if total is None:
            total = len(bodies) if isinstance(bodies, Sized) else 0
        progress = progress or Progress()
        progress.start(f"Pushing to sqs://{self.name}", total)
        sent = 0
        failure: BaseException | None = None

        def collect(done: set[Future[int]]) -> None:
            nonlocal sent, failure
            for future in done:
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    sent += future.result()
                else:
                    failure = failure or error
                    sent += getattr(error, "sent", 0)

        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="brenda-send") as pool:
            pending: set[Future[int]] = set()
            for batch in batches(bodies):
                pending.add(pool.submit(self._send_batch, batch, progress))
                if len(pending) >= 2 * in_flight:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                    if failure is not None:
                        break
            if failure is not None:
                for future in pending:
                    future.cancel()
            collect(set(wait(pending).done))
        if failure is None:
            return sent
        if not isinstance(failure, BrendaError):
            raise failure
        note = (
            f" {sent} of {total or 'the'} tasks were already pushed: run 'brenda-work reset' "
            "before pushing again."
            if sent
            else ""
        )
        error_type = Cancelled if isinstance(failure, Cancelled) else CloudError
        raise error_type(f"{failure}{note}") from failure

    def _send_batch(self, batch: list[tuple[int, str]], progress: Progress) -> int:
        progress.check()
        with cloud_errors(f"pushing tasks to sqs://{self.name}"):
            return self._send_batch_entries(batch, progress)

    def _send_batch_entries(self, batch: list[tuple[int, str]], progress: Progress) -> int:
        remaining = {str(index): body for index, body in batch}
        sent = 0
        for attempt in range(SEND_ATTEMPTS):
            response = self.client.send_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": key, "MessageBody": body} for key, body in remaining.items()],
            )
            succeeded = [entry["Id"] for entry in response.get("Successful", [])]
            for key in succeeded:
                del remaining[key]
            sent += len(succeeded)
            progress.advance(len(succeeded))
            failed = response.get("Failed", [])
            if not remaining:
                return sent
            if any(entry.get("SenderFault") for entry in failed):
                first = next(entry for entry in failed if entry.get("SenderFault"))
                raise _PartialSendError(
                    f"SQS refused a task ({first.get('Code')}: {first.get('Message')}).", sent
                )
            time.sleep(0.2 * 2**attempt)
        raise _PartialSendError(f"SQS kept failing to accept {len(remaining)} tasks.", sent)

    # --- the node's side ------------------------------------------------------------------

    def receive(
        self, *, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> Message | None:
        """Take one task (long polling up to ``wait_seconds``), or None if none came."""
        request: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": 1,
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout is not None:
            request["VisibilityTimeout"] = visibility_timeout
        with self._existing():
            messages = self.client.receive_message(**request).get("Messages", [])
        if not messages:
            return None
        return _message(messages[0])

    def extend(self, message: Message, seconds: int) -> None:
        """Keep ``message`` hidden from other nodes for ``seconds`` from now."""
        with self._existing():
            self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message.receipt, VisibilityTimeout=seconds
            )

    def release(self, message: Message) -> None:
        """Give ``message`` back to the queue at once."""
        self.extend(message, 0)

    def delete(self, message: Message) -> None:
        with self._existing():
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)

    @contextmanager
    def _existing(self) -> Iterator[None]:
        """QueueGoneError where SQS says the queue no longer exists."""
        try:
            yield
        except Exception as error:
            if error_code(error) not in NO_SUCH_QUEUE:
                raise
            raise QueueGoneError(
                f"The queue sqs://{self.name} no longer exists: it was deleted (a cancelled "
                "job's is)."
            ) from error

    # --- the operator's side --------------------------------------------------------------

    def counts(self) -> QueueCounts:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        with self._existing():
            attributes = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)[
                "Attributes"
            ]
        dead = None
        if self.dead_letter_url is not None:
            dead_attributes = self.client.get_queue_attributes(
                QueueUrl=self.dead_letter_url, AttributeNames=names[:2]
            )["Attributes"]
            dead = int(dead_attributes.get(names[0], 0)) + int(dead_attributes.get(names[1], 0))
        return QueueCounts(
            pending=int(attributes.get(names[0], 0)),
            in_flight=int(attributes.get(names[1], 0)),
            delayed=int(attributes.get(names[2], 0)),
            dead=dead,
        )

    def peek_dead_letters(self, limit: int = 10) -> list[Message]:
        """Up to ``limit`` (at most 10) dead-lettered tasks, left in the dead-letter queue."""
        if self.dead_letter_url is None:
            return []
        response = self.client.receive_message(
            QueueUrl=self.dead_letter_url,
            MaxNumberOfMessages=min(limit, MAX_BATCH_ENTRIES),
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [_message(raw) for raw in response.get("Messages", [])]

    def dead_letter_messages(self, limit: int) -> list[Message]:
        """Up to ``limit`` dead-lettered tasks, each once, left in the dead-letter queue: each
        batch stays hidden while the next is read (else a receive could bring the same ones
        again), then all show again at once."""
        if self.dead_letter_url is None:
            return []
        read: dict[str, Message] = {}
        try:
            while len(read) < limit:
                # A long poll asks every SQS server: a short one may miss a few messages.
                raw = self.client.receive_message(
                    QueueUrl=self.dead_letter_url,
                    MaxNumberOfMessages=min(limit - len(read), MAX_BATCH_ENTRIES),
                    VisibilityTimeout=PEEK_SECONDS,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
                if not raw:
                    break
                read.update((message.message_id, message) for message in map(_message, raw))
        finally:
            shown = list(read.values())
            for start in range(0, len(shown), MAX_BATCH_ENTRIES):
                self.client.change_message_visibility_batch(
                    QueueUrl=self.dead_letter_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message.receipt, "VisibilityTimeout": 0}
                        for index, message in enumerate(shown[start : start + MAX_BATCH_ENTRIES])
                    ],
                )
        return list(read.values())

    def redrive(self) -> int:
        """Move every dead-lettered task back to the queue (sent first, then deleted, so a
        failure in between duplicates a task rather than losing one); returns how many."""
        if self.dead_letter_url is None:
            return 0
        moved = 0
        while True:
            messages = self.client.receive_message(
                QueueUrl=self.dead_letter_url,
                MaxNumberOfMessages=MAX_BATCH_ENTRIES,
                VisibilityTimeout=60,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                return moved
            for raw in messages:
                self.client.send_message(QueueUrl=self.url, MessageBody=raw["Body"])
                self.client.delete_message(
                    QueueUrl=self.dead_letter_url, ReceiptHandle=raw["ReceiptHandle"]
                )
                moved += 1

    def purge(self) -> None:
        """Empty the queue and its dead-letter queue (tasks held by nodes included)."""
        for url in (self.url, self.dead_letter_url):
            if url is None:
                continue
            try:
                self.client.purge_queue(QueueUrl=url)
            except Exception as error:
                if error_code(error) != "AWS.SimpleQueueService.PurgeQueueInProgress":
                    raise
                raise CloudError(
                    f"SQS is still emptying sqs://{self.name} from an earlier reset; SQS allows "
                    "one purge a minute, so try again in a minute."
                ) from error

    def delete_queues(self) -> None:
        """Delete the queue and its dead-letter queue."""
        self.client.delete_queue(QueueUrl=self.url)
        if self.dead_letter_url is not None:
            self.client.delete_queue(QueueUrl=self.dead_letter_url)


class _PartialSendError(CloudError):
    """A send failure that knows how many tasks went out before it."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


def _message(raw: dict[str, Any]) -> Message:
    return Message(
        body=raw["Body"],
        receipt=raw["ReceiptHandle"],
        message_id=raw["MessageId"],
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
    )


def _queue_url(client: Any, name: str) -> str | None:
    try:
        return str(client.get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as error:
        if error_code(error) in NO_SUCH_QUEUE:
            return None
        raise


def _create_or_update(client: Any, name: str, attributes: dict[str, str]) -> str:
    url = _queue_url(client, name)
    if url is None:
        return str(client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url
