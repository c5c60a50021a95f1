# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep a taken task hidden from other nodes until it is stored, or give it back. No bpy module use.

A lease renews the message's visibility every ``VISIBILITY_TIMEOUT_REASSERT`` seconds to
``VISIBILITY_TIMEOUT`` from now, from the moment the task is taken until its outputs are stored
and the message is deleted, including while a finished render waits for the previous upload (the
original Brenda let the lease lapse there). Giving a task back makes it visible at once.

During an outage of SQS a failed renewal is tried again every second, so that when SQS is back the
node that holds a task renews it before other nodes (whose retries back off) could take it.
Deleting a finished task is retried the same way while the lease is kept, so a task whose outputs
are stored is never rendered again because SQS was down at that moment.

A queue that is gone (its job was cancelled) holds no task any more: the lease ends at once, with
nothing to renew, delete or give back, rather than being retried for ever.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from shared.aws.session import cloud_errors
from shared.aws.sqs import Message, QueueGoneError, WorkQueue
from shared.core.errors import BrendaError, CloudError

log = logging.getLogger(__name__)

OUTAGE_RENEWAL_SECONDS = 1.0


class Retries(Protocol):
    stop: threading.Event

    def failed(self, error: BrendaError, *, give_up: bool = True) -> None: ...


class Lease:
    def __init__(self, queue: WorkQueue, message: Message, *, timeout: int, period: float) -> None:
        self.queue = queue
        self.message = message
        self.timeout = timeout
        self.period = period
        self._ended = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"brenda-lease-{message.message_id[:8]}", daemon=True
        )
        self._thread.start()

    def _keep(self) -> None:
        wait = self.period
        while not self._ended.wait(wait):
            try:
                with cloud_errors("renewing a task's lease"):
                    self.queue.extend(self.message, self.timeout)
                wait = self.period
            except QueueGoneError as error:
                log.warning("%s The task's lease ends.", error)
                return
            except CloudError as error:
                # Transient: the next renewal may succeed well before the lease runs out.
                log.warning("%s", error)
                wait = min(self.period, OUTAGE_RENEWAL_SECONDS)

    def _end(self) -> None:
        self._ended.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def complete(self, retries: Retries | None = None) -> None:
        """The task's outputs are stored: delete the message, retrying through an outage with
        ``retries`` while the lease is kept (until the node stops)."""
        while True:
            try:
                with cloud_errors("deleting a finished task from the queue"):
                    self.queue.delete(self.message)
                break
            except QueueGoneError as error:
                log.warning("%s The task is over.", error)
                break
            except CloudError as error:
                if retries is None or retries.stop.is_set():
                    # The outputs are stored; at worst another node renders the task again.
                    log.warning("%s", error)
                    break
                retries.failed(error, give_up=False)
        self._end()

    def give_back(self) -> None:
        """Return the task to the queue at once, for this or another node to try again."""
        self._end()
        try:
            with cloud_errors("giving a task back to the queue"):
                self.queue.release(self.message)
        except QueueGoneError as error:
            log.warning("%s The task is over.", error)
        except CloudError as error:
            log.warning("%s; it returns when its lease runs out.", error)
