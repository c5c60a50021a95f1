# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work show JOB`` against moto's server: what it refuses, and failure notes as nodes
write them (of this release, of earlier ones, of a hostile node), shown and never obeyed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.outputs.failures import failure_note
from tests.cli.test_jobs_cli import drain, farm_env, queue_url, submit, work  # noqa: F401

CONTROL = "\x1b]0;owned\x07\x1b[2J"


def test_status_of_a_job_points_to_show_and_show_names_what_it_needs(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, err = work(capsys, "status", "shot-1", code=2)
    assert err == (
        "brenda-work: status shows the work queue (WORK_QUEUE) and takes no job: to see job "
        "shot-1, run 'brenda-work show shot-1'.\n"
    )
    _, err = work(capsys, "show", code=2)
    assert err == "brenda-work: show needs JOB, like: brenda-work show shot1-7f3a.\n"
    _, err = work(capsys, "show", "no-such-job", code=2)
    unknown = "Farm studio has no job whose id starts with 'no-such-job': it has no jobs yet."
    assert err == f"brenda-work: {unknown}\n"


def test_show_lists_the_notes_of_frames_not_stored_one_line_each_shown_not_obeyed(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
) -> None:
    job = submit(capsys, farm_env, "1-4")
    drained = drain(boto_client, queue_url(boto_client, job))
    bodies = {json.loads(body)["frames"]["start"]: body for body in drained}
    s3 = boto_client("s3")

    def note(message_id: str, text: str) -> None:
        key = f"frames/{job}/.brenda/failures/{message_id}.txt"
        s3.put_object(Bucket="studio", Key=key, Body=text.encode())

    # Frame 1 failed once, then a retry stored it: no failure of the job's any more.
    note(
        "m-1",
        failure_note("Task frames 1 failed: out of memory", node="n", attempt=1, body=bodies[1]),
    )
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000001.png", Body=b"png")
    # Frame 2's note says, over two lines, what a hostile node wrote.
    note(
        "m-2",
        failure_note(f"Task failed{CONTROL}:\nall is well", node="n", attempt=2, body=bodies[2]),
    )
    # A note of an earlier release holds no message: its task is named by its message id.
    note("m-3", "Task frames 3 failed: broken scene\n(node old, try 1)\n")

    out, _ = work(capsys, "show", job)
    assert "stored   1 of 4 frames" in out and "missing  3: 2-4" in out
    assert "failed   1: 2" in out
    failed = out.split("Failed tasks, each with its last error:\n")[1].splitlines()
    assert failed == [
        "  message m-3, failed: Task frames 3 failed: broken scene (node old, try 1)",
        "  frames 2, failed: Task failed\\x1b]0;owned\\x07\\x1b[2J: all is well (node n, try 2)",
    ]
    assert "\x1b" not in out


def test_show_of_a_cancelled_job_says_its_queues_are_gone(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = submit(capsys, farm_env, "1-2")
    work(capsys, "cancel", job)
    out, _ = work(capsys, "show", job)
    assert "  state    cancelled, priority 0\n" in out
    assert "  tasks    2 submitted; its queues are gone (a cancelled job's are deleted)\n" in out
    assert "  missing  2: 1-2\n" in out and "  failed   none\n" in out
