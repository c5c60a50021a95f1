# SPDX-License-Identifier: GPL-3.0-or-later
"""The SQS work queue against moto's server over HTTP."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from shared.aws.session import make_client
from shared.aws.sqs import WorkQueue, batches
from shared.core.config import load_config
from shared.core.errors import Cancelled, CloudError
from shared.core.progress import Progress
from shared.tasks.task import MAX_TASKS, FrameRange, chunk_frames, encode_task, script_tasks


@pytest.fixture
def sqs(aws: str) -> Any:
    return make_client("sqs", load_config())


def make_queue(sqs: Any, name: str = "frames", max_receive_count: int = 3) -> WorkQueue:
    return WorkQueue.ensure(
        sqs, name, visibility_timeout=60, max_receive_count=max_receive_count, retention=86400
    )


def test_ensure_creates_queue_with_dead_letter_queue(sqs: Any, boto_client: Any) -> None:
    queue = make_queue(sqs)
    raw = boto_client("sqs")
    urls = raw.list_queues()["QueueUrls"]
    assert sorted(url.rsplit("/", 1)[1] for url in urls) == ["frames", "frames-dead"]
    attributes = raw.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "60"
    assert attributes["MessageRetentionPeriod"] == "86400"
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(":frames-dead")
    assert int(policy["maxReceiveCount"]) == 3


def test_ensure_updates_an_existing_queue_and_open_finds_its_dead_letter_queue(
    sqs: Any, boto_client: Any
) -> None:
    boto_client("sqs").create_queue(QueueName="frames")
    queue = make_queue(sqs, max_receive_count=5)
    reopened = WorkQueue.open(sqs, "frames")
    assert reopened is not None
    assert reopened.url == queue.url
    assert reopened.dead_letter_url == queue.dead_letter_url
    assert WorkQueue.open(sqs, "no-such-queue") is None


def test_queue_name_too_long_for_its_dead_letter_queue(sqs: Any) -> None:
    with pytest.raises(CloudError, match="Queue name '.*' is too long"):
        make_queue(sqs, name="q" * 76)


def test_batches_hold_ten_entries_and_respect_the_size_limit() -> None:
    assert [len(batch) for batch in batches(["x"] * 25)] == [10, 10, 5]
    big = "y" * 100_000
    assert [len(batch) for batch in batches([big, big, big, "z"])] == [2, 2]
    flattened = [index for batch in batches(["a"] * 23) for index, _ in batch]
    assert flattened == list(range(23))


def test_send_all_sends_every_body_once(sqs: Any) -> None:
    queue = make_queue(sqs)
    seen: list[int] = []
    progress = Progress(on_change=lambda p: seen.append(p.done))
    bodies = [f"task {number}" for number in range(57)]
    assert queue.send_all(bodies, progress, in_flight=4) == 57
    assert progress.done == 57 and progress.total == 57
    assert max(seen) == 57
    received: list[str] = []
    while (message := queue.receive(wait_seconds=0)) is not None:
        received.append(message.body)
        queue.delete(message)
    assert sorted(received) == sorted(bodies)


def test_send_all_reads_the_bodies_as_it_sends_them(sqs: Any) -> None:
    queue = make_queue(sqs)
    progress = Progress()
    ahead: list[int] = []

    def bodies() -> Iterator[str]:
        for number in range(400):
            ahead.append(number - progress.done)
            yield f"task {number}"

    assert queue.send_all(bodies(), progress, total=400, in_flight=2) == 400
    assert progress.total == 400 and queue.counts().pending == 400
    # Never more than a few batches read ahead of what was sent (2 x in_flight + the one forming).
    assert max(ahead) <= 10 * (2 * 2 + 1)


def test_a_push_of_the_most_tasks_never_holds_them_all() -> None:
    """100,000 tasks (the limit) are made and checked in a few MB, not the 50 MB they take."""
    template = 'blender -b *.blend -o "$OUTDIR/frame_######" -s $START -e $END -a\n'
    chunks = chunk_frames([FrameRange(1, MAX_TASKS)], 1)
    tracemalloc.start()
    try:
        tasks = script_tasks(template, chunks, None)
        assert len(tasks) == MAX_TASKS
        assert sum(1 for task in tasks if encode_task(task)) == MAX_TASKS
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"{peak:,} bytes"


def test_cancelled_send_reports_what_was_sent(sqs: Any) -> None:
    queue = make_queue(sqs)
    progress = Progress()

    def cancel_after_first_batch(current: Progress) -> None:
        if current.done >= 10:
            current.cancel()

    progress.on_change = cancel_after_first_batch
    with pytest.raises(Cancelled, match=r"(\d+) of 100 tasks were already pushed") as caught:
        queue.send_all([f"t{n}" for n in range(100)], progress, in_flight=1)
    sent = int(str(caught.value).split(" of 100")[0].rsplit(" ", 1)[1])
    assert queue.counts().pending == sent
    assert 10 <= sent < 100


def test_lease_extend_release_delete(sqs: Any) -> None:
    queue = make_queue(sqs)
    queue.send_all(["only task"])
    message = queue.receive(wait_seconds=0, visibility_timeout=30)
    assert message is not None and message.body == "only task"
    assert message.receive_count == 1
    assert queue.counts().in_flight == 1
    queue.extend(message, 600)
    assert queue.receive(wait_seconds=0) is None
    queue.release(message)
    again = queue.receive(wait_seconds=0)
    assert again is not None and again.receive_count == 2
    queue.delete(again)
    counts = queue.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)


def test_task_moves_to_dead_letter_queue_after_max_receives(sqs: Any) -> None:
    queue = make_queue(sqs, max_receive_count=2)
    queue.send_all(["poison"])
    for _ in range(2):
        message = queue.receive(wait_seconds=0)
        assert message is not None
        queue.release(message)
    assert queue.receive(wait_seconds=0) is None
    counts = queue.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 1)


def test_purge_empties_both_queues_and_delete_removes_them(sqs: Any, boto_client: Any) -> None:
    queue = make_queue(sqs, max_receive_count=1)
    queue.send_all([f"t{n}" for n in range(15)])
    held = queue.receive(wait_seconds=0)
    assert held is not None
    queue.release(held)
    queue.receive(wait_seconds=0)
    queue.purge()
    counts = queue.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    queue.delete_queues()
    assert boto_client("sqs").list_queues().get("QueueUrls", []) == []


def test_dead_letter_messages_lists_each_once_and_leaves_them_for_retry(sqs: Any) -> None:
    queue = make_queue(sqs)
    assert queue.dead_letter_url is not None
    for number in range(25):
        sqs.send_message(QueueUrl=queue.dead_letter_url, MessageBody=f"task {number}")
    listed = queue.dead_letter_messages(100)
    assert sorted(message.body for message in listed) == sorted(f"task {n}" for n in range(25))
    assert len({message.message_id for message in listed}) == 25
    assert len(queue.dead_letter_messages(12)) == 12
    # Shown again at once: a retry right after moves every one.
    assert queue.counts().dead == 25
    assert queue.redrive() == 25
