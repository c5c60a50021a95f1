# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a job's frames failed, seen from the workstation: real nodes note every failure they
meet serving a job (its project missing included), and ``brenda-work show JOB`` prints the
job's settings, its frames stored, missing and failed, and each failed task's last error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from tests.node.conftest import Farm, empty_project, submit_job


def failing_blender(folder: Path) -> Path:
    """A Blender that cannot open the file it is given, as Blender says it."""
    blender = folder / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        "echo 'Error: Cannot read file \"scene.blend\": File format is not supported'\n"
        "exit 1\n"
    )
    blender.chmod(0o755)
    return blender


def show(capsys: pytest.CaptureFixture[str], job: str) -> str:
    assert brenda_work(["show", job]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def notes(boto_client: Any, job: str) -> list[str]:
    s3 = boto_client("s3")
    listing = s3.list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/.brenda/failures/")
    return [
        s3.get_object(Bucket="studio", Key=item["Key"])["Body"].read().decode()
        for item in listing.get("Contents", [])
    ]


def dead_lettered(boto_client: Any, job: str) -> int:
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName=f"studio-job-{job}-dead")["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_job_whose_project_is_missing_notes_why_and_show_prints_it(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BRENDA_MAX_RECEIVE_COUNT", "2")  # the job's queue: two tries a task
    project = empty_project(tmp_path / "shot")
    job = submit_job(capsys, project)
    shutil.rmtree(project)  # moved away after submit: no node can fetch it

    node = job_farm.start_node("a", BLENDER=str(failing_blender(tmp_path)), POLL_PAUSE="1")
    assert node.wait(timeout=120) == 0, job_farm.console("a")
    # The task failed on both tries, each noted (one note a message), then was dead-lettered.
    [note] = notes(boto_client, job)
    assert note.startswith(f"Task {job} frames 1 could not start: The project file://")
    assert "try 2)" in note
    assert dead_lettered(boto_client, job) == 1

    out = show(capsys, job)
    assert f"Job {job} (farm studio)" in out
    assert f"project  file://{project}" in out
    assert "stored   0 of 1 frames" in out
    assert "missing  1: 1" in out and "failed   1: 1" in out
    [line] = [line for line in out.splitlines() if line.startswith("  frames 1, ")]
    assert line.startswith(f"  frames 1, dead-lettered: Task {job} frames 1 could not start: ")
    assert f"The project file://{project} does not exist." in line and "try 2" in line
    # Dead-lettered tasks are shown, not moved: retry still finds them.
    assert dead_lettered(boto_client, job) == 1


def test_show_prints_each_failed_frames_blender_error_and_the_frames_stored(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BRENDA_MAX_RECEIVE_COUNT", "2")  # taken once here, once by the node
    project = empty_project(tmp_path / "shot")
    (project / "scene.blend").write_bytes(b"BLENDER-v405" + bytes(64))  # Blender 4.5's header
    job = submit_job(capsys, project, "--frames", "1-3", "--single-colour")
    # Frame 2 is stored already (as by an earlier node): its task is taken off the queue.
    sqs, s3 = boto_client("sqs"), boto_client("s3")
    url = sqs.get_queue_url(QueueName=f"studio-job-{job}")["QueueUrl"]
    taken: dict[int, str] = {}
    while 2 not in taken:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]:
            taken[json.loads(message["Body"])["frames"]["start"]] = message["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=taken.pop(2))
    for receipt in taken.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000002.png", Body=b"png")

    node = job_farm.start_node("a", BLENDER=str(failing_blender(tmp_path)), POLL_PAUSE="1")
    assert node.wait(timeout=120) == 0, job_farm.console("a")

    out = show(capsys, job)
    assert "Blender  4.5 only (not a newer one)" in out
    assert "frames   1-3, 1 a task, no tiles" in out
    assert "fail one-colour frames on" in out
    assert "stored   1 of 3 frames" in out
    assert "missing  2: 1, 3" in out and "failed   2: 1, 3" in out
    failed = [line for line in out.splitlines() if ", dead-lettered: " in line]
    assert [line.split(",")[0] for line in failed] == ["  frames 1", "  frames 3"]
    for line in failed:
        assert "Cannot read file" in line and "File format is not supported" in line, line
