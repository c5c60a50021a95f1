# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's notifications: what happened to it, sent where its record says (``notify``), once.

No bpy module use. No server of Brenda's exists, so whoever makes an event sends it:

- ``finished``: the node that stores the job's last frame (it stores the job's report first);
- ``dead-lettered``: the node on whose last try a task fails (SQS then dead-letters it);
- ``budget-stopped``: the node that stops the fleet at its budget, to every active job;
- ``cancelled``: ``brenda-work cancel`` or the add-on, on the workstation.

A node sends an event only once it wrote its marker, ``FARM_OUTPUTS/<job>/.brenda/events/<event>``,
as a new object (an S3 conditional write, ``If-None-Match: *``): of nodes that make the same event
together (two storing the last two frames), exactly one writes it and sends. A send that fails is
logged and not tried again by another node: the marker says the event was made, not delivered.
The webhook's request is retried on errors (``shared.core.http``), so a receiver may see one event
twice after a lost reply: each carries an ``id`` to tell.

Every event is one JSON object: ``event``, ``id``, ``farm``, ``job``, ``output`` (its frames'
folder), ``time`` (ISO 8601, UTC), and what the event adds (``EventDetails``). To an SNS topic it
is the message, with a short subject; to a webhook, the body of a POST
(``Content-Type: application/json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from ..aws import s3, sns
from ..aws.session import cloud_errors
from ..core.config import Config
from ..core.errors import BrendaError, CloudError
from ..core.http import http_session
from ..core.text import printable
from ..core.urls import S3Url, parse_notify, parse_url
from ..outputs.store import EVENTS
from .costs import format_dollars
from .registry import Job, JobReport

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (5.0, 15.0)
"""Seconds to connect to a webhook, and to wait for its answer."""
MAX_ERROR = 2000
"""Characters of a failed task's error an event carries at most."""


class JobEvent(StrEnum):
    FINISHED = "finished"
    DEAD_LETTERED = "dead-lettered"
    BUDGET_STOPPED = "budget-stopped"
    CANCELLED = "cancelled"


def event_document(job: Job, event: JobEvent, marker: str, **details: Any) -> dict[str, Any]:
    """The event's JSON object; ``marker`` names it among the job's events (its ``id``)."""
    return {
        "event": str(event),
        "id": f"{job.farm}/{job.id}/{marker}",
        "farm": job.farm,
        "job": job.id,
        "output": job.output,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        **details,
    }


def finished_details(report: JobReport) -> dict[str, Any]:
    """What ``finished`` adds: the frames stored, and what the ledgers hold when the last frame
    is stored: the cost in US$ (``unpriced_tasks``: tasks whose node's price was not known, not
    in it), the seconds nodes spent and rendered. Its sender adds ``report``, the ``s3://`` URL
    of the job's report (``shared.jobs.report``), where it could store it."""
    cost = report.cost
    return {
        "frames": report.stored,
        "cost": round(cost.dollars, 4),
        "unpriced_tasks": cost.unpriced_tasks,
        "node_seconds": round(cost.node_seconds, 1),
        "render_seconds": round(cost.render_seconds, 1),
    }


def subject_of(document: dict[str, Any]) -> str:
    """A line for an e-mail's subject or a chat message's title."""
    job, event = document["job"], document["event"]
    if event == JobEvent.FINISHED:
        cost = format_dollars(document["cost"], unpriced=bool(document["unpriced_tasks"]))
        report = ", report linked" if document.get("report") else ""
        return f"Brenda: job {job} finished ({document['frames']} frames, {cost}{report})"
    if event == JobEvent.DEAD_LETTERED:
        return f"Brenda: job {job}: {document.get('task', 'a task')} failed on every try"
    if event == JobEvent.BUDGET_STOPPED:
        return f"Brenda: the budget stopped farm {document['farm']}'s fleet (job {job})"
    return f"Brenda: job {job} {event}"


def shown_target(notify: str) -> str:
    """Where a job's news goes, for ``show`` and the report: an SNS topic's ARN, or a webhook's
    host alone (its path and user often hold its secret, as a chat service's webhook's do)."""
    try:
        target = parse_notify(notify)
    except BrendaError:
        return "a target that is not one Brenda sends to"
    if target.topic is not None:
        return f"SNS topic {target.topic}"
    parts = urlsplit(str(target.url))
    port = f":{parts.port}" if parts.port else ""
    return f"a webhook at {parts.hostname}{port}"


def send(config: Config, notify: str, document: dict[str, Any]) -> None:
    """Send the event to ``notify`` (``sns://TOPIC_ARN`` or a webhook); CloudError says why it
    could not be sent."""
    target = parse_notify(notify)
    body = json.dumps(document, sort_keys=True)
    if target.topic is not None:
        sns.publish(config, target.topic, subject=subject_of(document), message=body)
        return
    assert target.url is not None
    try:
        with http_session() as session:
            answer = session.post(
                target.url,
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
                timeout=WEBHOOK_TIMEOUT,
            )
            answer.raise_for_status()
    except OSError as error:  # requests' errors, HTTPError included
        raise CloudError(
            f"The webhook {target.url} did not take job {document['job']}'s "
            f"'{document['event']}' notification: {error}."
        ) from error


def send_once(
    config: Config,
    client: Any,
    job: Job,
    marker: str,
    document: dict[str, Any],
    *,
    adding: Callable[[], dict[str, Any]] | None = None,
) -> bool:
    """Send the job's event unless its marker (``marker``) is written already: whether this
    call sent it; ``adding`` makes what the event adds that only its sender makes (``finished``'s
    report). BrendaError when the marker cannot be written or the event not sent."""
    if not job.notify:
        return False
    output = parse_url(job.output, allowed=("s3",))
    assert isinstance(output, S3Url)
    key = output.key(EVENTS + marker)
    with cloud_errors(f"marking job {job.id}'s '{document['event']}' notification sent"):
        made = s3.write_new_text(client, output.bucket, key, json.dumps(document, sort_keys=True))
    if not made:
        log.info("job %s's %s was sent by another node", job.id, marker)
        return False
    if adding is not None:
        document = {**document, **adding()}
    send(config, job.notify, document)
    log.info("job %s: %s sent to %s", job.id, document["event"], printable(job.notify))
    return True


def error_excerpt(error: str) -> str:
    return error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"


def warn_unsent(job: Job, event: JobEvent, error: BrendaError) -> None:
    log.warning("job %s's '%s' notification was not sent: %s", job.id, event, error)
