# SPDX-License-Identifier: GPL-3.0-or-later
"""Crafted job records and messages, as any task on a node could write them (it can read the
node's credentials): real nodes, ``brenda-work`` and the monitor believe only what Brenda
writes, and skip the rest with one warning naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask, ScriptTask, encode_task
from tests.node.conftest import Farm, empty_project, submit_job, wait_for


def fake_blender(folder: Path) -> Path:
    """A Blender that renders nothing and writes its arguments to ``folder/calls``."""
    blender = folder / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        f'echo "$@" >> {folder / "calls"}\n'
    )
    blender.chmod(0o755)
    return blender


def rewrite_record(boto_client: Any, job: str, **changes: object) -> None:
    key = f"frames/.brenda/jobs/{job}.json"
    s3 = boto_client("s3")
    document = json.loads(s3.get_object(Bucket="studio", Key=key)["Body"].read())
    s3.put_object(Bucket="studio", Key=key, Body=json.dumps({**document, **changes}).encode())


def stored_under(boto_client: Any, prefix: str) -> list[str]:
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def skipped(console: str, job: str) -> int:
    return console.count(f"job record frames/.brenda/jobs/{job}.json is skipped")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return empty_project(tmp_path / "shot")


def test_a_record_that_sends_frames_elsewhere_is_skipped_by_nodes_and_jobs(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    project: Path,
    tmp_path: Path,
) -> None:
    victim = submit_job(capsys, project)
    assert brenda_work(["pause", victim]) == 0
    overwriter, on_node = submit_job(capsys, project), submit_job(capsys, project)
    rewrite_record(boto_client, overwriter, output=f"s3://studio/frames/{victim}/")
    rewrite_record(boto_client, on_node, output=f"file://{tmp_path / 'node-disk'}/")
    capsys.readouterr()

    node = job_farm.start_node("a", BLENDER=str(fake_blender(tmp_path)), POLL_PAUSE="1")
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    console = job_farm.console("a")
    assert "task 1:" not in console
    assert skipped(console, overwriter) == 1 and skipped(console, on_node) == 1, console
    assert f"its output s3://studio/frames/{victim}/ is not" in console
    assert stored_under(boto_client, f"frames/{victim}/") == []
    assert not (tmp_path / "node-disk").exists()

    # brenda-work jobs lists the farm's other jobs (a file:// output used to fail it for all).
    assert brenda_work(["jobs"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [victim]


def test_records_of_the_wrong_types_are_skipped_and_nodes_keep_serving(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    project: Path,
    tmp_path: Path,
) -> None:
    good = submit_job(capsys, project)
    assert brenda_work(["pause", good]) == 0
    zero_time, text_priority = submit_job(capsys, project), submit_job(capsys, project)
    rewrite_record(boto_client, zero_time, created=0)
    rewrite_record(boto_client, text_priority, priority="9")
    capsys.readouterr()

    node = job_farm.start_node("a", BLENDER=str(fake_blender(tmp_path)), POLL_PAUSE="1")
    assert node.wait(timeout=60) == 0, job_farm.console("a")  # every node used to exit 1
    console = job_farm.console("a")
    assert "Traceback" not in console
    assert skipped(console, zero_time) == 1 and skipped(console, text_priority) == 1, console
    assert "created is not text" in console and "priority is not int" in console

    assert brenda_work(["jobs"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == [good]
    assert "Traceback" not in err


def test_a_job_queue_renders_only_what_the_record_allows(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    project: Path,
    tmp_path: Path,
) -> None:
    job = submit_job(capsys, project)
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName=f"studio-job-{job}")["QueueUrl"]
    (submitted,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=submitted["ReceiptHandle"])
    script = ScriptTask(FrameChunk(1, 1, 1), None, "touch pwned")
    python = RenderTask(FrameChunk(1, 1, 1), None, RenderSettings(allow_python=True))
    other_frame = RenderTask(FrameChunk(7, 7, 1), None, RenderSettings())
    for task in (script, python, other_frame):
        sqs.send_message(QueueUrl=url, MessageBody=encode_task(task))

    node = job_farm.start_node("a", BLENDER=str(fake_blender(tmp_path)), DONE="poll")
    try:
        wait_for(
            lambda: "renders structured tasks only" in job_farm.console("a"),
            60,
            "the script message to be refused",
        )
        wait_for(
            lambda: "frames 7 are not a task of job" in job_farm.console("a"),
            60,
            "the other frame's message to be refused",
        )
        wait_for((tmp_path / "calls").exists, 60, "a render task")
    finally:
        node.kill()
        node.wait()
    assert not list(job_farm.root.rglob("pwned"))
    calls = (tmp_path / "calls").read_text()
    assert "--disable-autoexec" in calls and "--enable-autoexec" not in calls
