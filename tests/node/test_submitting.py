# SPDX-License-Identifier: GPL-3.0-or-later
"""A job being submitted (or whose submit was killed) is listed, submitting, and no node serves
its tasks until it is active."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from tests.node.conftest import Farm, make_sample_blend


def test_no_node_serves_the_tasks_of_a_submit_that_was_killed(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blender = tmp_path / "blender"
    blender.write_text("#!/bin/bash\necho 'Blender 4.5.0'\n")
    blender.chmod(0o755)
    project = tmp_path / "shot"
    project.mkdir()
    make_sample_blend(project / "scene.blend", width=16, height=9, samples=1, frames=1)
    argv = ["--project", f"file://{project}", "--frames", "1-3000", "submit"]
    submit = subprocess.Popen([sys.executable, "-m", "shared.cli.work", *argv])
    sqs, deadline = boto_client("sqs"), time.monotonic() + 120
    waiting = 0
    while not waiting and time.monotonic() < deadline and submit.poll() is None:
        urls = sqs.list_queues(QueueNamePrefix="studio-job-").get("QueueUrls", [])
        for url in (url for url in urls if not url.endswith("-dead")):
            counts = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            waiting = int(counts["ApproximateNumberOfMessages"])
        time.sleep(0.05)
    submit.kill()  # no chance to undo
    submit.wait()
    assert waiting, "the submit queued no task"
    assert brenda_work(["jobs"]) == 0
    table = capsys.readouterr().out
    match = re.search(r"^(\S+)\s+submitting\s", table, re.M)
    assert match, table
    # DONE=exit: a submitting job is no work, so the node ends without taking a task.
    node = job_farm.start_node("a", BLENDER=str(blender), POLL_PAUSE="1")
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    assert "task 1:" not in job_farm.console("a")
