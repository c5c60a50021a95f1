# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work`` job commands against moto's server: submit, jobs, retry, missing, errors."""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.core.config import load_config
from shared.core.progress import Progress
from shared.core.urls import S3Url
from shared.jobs import registry
from shared.jobs.costs import Ledger, Machine, TaskCost
from shared.jobs.registry import Job, JobAction, JobHoldsTasksError, JobRegistry, JobState
from shared.project.content import ContentStore, HashCache, folder_files, manifest_of
from shared.services import jobs as job_service
from shared.tasks.task import Environment, RenderSettings


@pytest.fixture
def farm_env(aws: str, monkeypatch: pytest.MonkeyPatch, boto_client: Any, tmp_path: Path) -> Path:
    boto_client("s3").create_bucket(Bucket="studio")
    for key, value in {"FARM": "studio", "FARM_OUTPUTS": "s3://studio/frames/"}.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    project = tmp_path / "project"
    project.mkdir()
    (project / "scene.blend").write_bytes(b"")  # for nodes that are not there
    return project


def work(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    assert brenda_work(list(argv)) == code
    return capsys.readouterr()


def submit(capsys: pytest.CaptureFixture[str], project: Path, frames: str) -> str:
    out, _ = work(capsys, "--project", f"file://{project}", "--frames", frames, "submit")
    match = re.search(r"Submitted job (\S+): (\d+) tasks?,", out)
    assert match, out
    return match.group(1)


def queue_url(boto_client: Any, job: str, dead: bool = False) -> str:
    name = f"studio-job-{job}" + ("-dead" if dead else "")
    return str(boto_client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def drain(boto_client: Any, url: str) -> list[str]:
    sqs, bodies = boto_client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_retry_puts_dead_lettered_tasks_back(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    job = submit(capsys, farm_env, "1-3")
    sqs = boto_client("sqs")
    bodies = drain(boto_client, queue_url(boto_client, job))
    assert len(bodies) == 3
    for body in bodies[:2]:
        sqs.send_message(QueueUrl=queue_url(boto_client, job, dead=True), MessageBody=body)
    out, _ = work(capsys, "retry", job)
    assert out == f"Job {job}: 2 dead-lettered tasks back to work.\n"
    assert sorted(drain(boto_client, queue_url(boto_client, job))) == sorted(bodies[:2])
    assert drain(boto_client, queue_url(boto_client, job, dead=True)) == []


def test_missing_queues_exactly_the_frames_not_stored(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    job = submit(capsys, farm_env, "1-4")
    drain(boto_client, queue_url(boto_client, job))
    s3 = boto_client("s3")
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000001.png", Body=b"png")
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000003.png", Body=b"")  # empty
    out, _ = work(capsys, "missing", job)
    assert out == f"Job {job}: 3 missing frames queued (2, 3, 4).\n"
    bodies = drain(boto_client, queue_url(boto_client, job))
    starts = sorted(int(re.search(r'"start":(\d+)', body).group(1)) for body in bodies)  # type: ignore[union-attr]
    assert starts == [2, 3, 4]


def held_tasks(boto_client: Any, job: str, dead: bool = False) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = boto_client("sqs").get_queue_attributes(
        QueueUrl=queue_url(boto_client, job, dead), AttributeNames=names
    )["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_missing_queues_nothing_while_the_job_still_holds_tasks(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    """A fresh 6-frame job's queue went from 6 tasks to 12, then 18: frames waiting, running or
    dead-lettered are not missing."""
    job = submit(capsys, farm_env, "1-6")
    sqs, url = boto_client("sqs"), queue_url(boto_client, job)
    taken = sqs.receive_message(QueueUrl=url)["Messages"]  # a node renders one
    for _ in range(2):
        _, err = work(capsys, "missing", job, code=1)
        assert err == (
            f"brenda-work: Job {job} still holds tasks (5 waiting, 1 running, 0 "
            "dead-lettered) whose frames are not missing: queue the missing frames once they "
            "are done (retry puts dead-lettered ones back), or give --force to queue every "
            "frame not stored anyway.\n"
        )
        assert held_tasks(boto_client, job) == 6
    with pytest.raises(JobHoldsTasksError) as refused:  # the add-on's way: it has no --force
        job_service.control(load_config(), job, JobAction.MISSING)
    assert str(refused.value).endswith("(retry puts dead-lettered ones back).")
    # Drained with frames 1, 2, 4 and 5 stored; frame 6's task failed for good.
    bodies = drain(boto_client, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=taken[0]["ReceiptHandle"])
    s3 = boto_client("s3")
    for frame in (1, 2, 4, 5):
        s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_{frame:06d}.png", Body=b"png")
    failed = next(body for body in bodies if '"start":6' in body)
    sqs.send_message(QueueUrl=queue_url(boto_client, job, dead=True), MessageBody=failed)
    _, err = work(capsys, "missing", job, code=1)
    assert err.startswith(f"brenda-work: Job {job} still holds tasks (0 waiting, 0 running, 1 ")
    drain(boto_client, queue_url(boto_client, job, dead=True))  # given up on
    out, _ = work(capsys, "missing", job)
    assert out == f"Job {job}: 2 missing frames queued (3, 6).\n"
    _, err = work(capsys, "missing", job, code=1)
    assert "still holds tasks (2 waiting, 0 running, 0 dead-lettered)" in err
    assert held_tasks(boto_client, job) == 2
    out, _ = work(capsys, "--force", "missing", job)
    assert out == f"Job {job}: 2 missing frames queued (3, 6).\n"
    assert held_tasks(boto_client, job) == 4
    _, err = work(capsys, "--force", "retry", job, code=2)
    assert err == "brenda-work: --force applies only to missing.\n"


def test_job_commands_name_the_job_and_refuse_what_cannot_be(
    farm_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, err = work(capsys, "pause", "no-such-job", code=2)
    assert err == (
        "brenda-work: Farm studio has no job whose id starts with 'no-such-job': it has no jobs "
        "yet.\n"
    )
    _, err = work(capsys, "priority", "x", code=2)
    assert err.startswith("brenda-work: priority needs JOB N, like: brenda-work priority ")
    job = submit(capsys, farm_env, "1")
    out, _ = work(capsys, "priority", job, "7")
    assert out == f"Job {job}: active, priority 7.\n"
    work(capsys, "cancel", job)
    for command in ("retry", "resume"):  # a job is submitted, not pushed
        _, err = work(capsys, command, job, code=2)
        assert err == f"brenda-work: Job {job} is cancelled; submit it again to render it.\n"
    _, err = work(capsys, "-T", "frame", "-e", "1", "submit", code=2)
    assert "submit makes structured render tasks" in err


def suffixes(monkeypatch: pytest.MonkeyPatch, *drawn: str) -> None:
    """The random suffixes new job ids get, in order."""
    draws = iter(drawn)
    monkeypatch.setattr(registry.secrets, "token_hex", lambda size: next(draws))


def test_jobs_are_named_after_their_blend_even_from_an_uploaded_version(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any, tmp_path: Path
) -> None:
    (farm_env / "scene.blend").rename(farm_env / "shot1.blend")  # the project's one .blend
    assert re.fullmatch(r"shot1-[0-9a-f]{4}", submit(capsys, farm_env, "1"))
    # An uploaded version's URL is named by its manifest's hash: its job was named by it too.
    upload = tmp_path / "upload"
    (upload / "textures").mkdir(parents=True)
    (upload / "Shot 2.blend").write_bytes(b"BLENDER" + bytes(100))
    (upload / "textures" / "wood.png").write_bytes(b"png")
    files = list(folder_files(upload))
    store = ContentStore(boto_client("s3"), S3Url("studio", "projects/"))
    sent = store.upload(
        manifest_of(files, HashCache(tmp_path / "hashes.json"), Progress()),
        lambda entry: {name: path for name, path, _ in files}[entry.path],
        Progress(),
        pointer="shot2",
    )
    out, _ = work(capsys, "--project", sent.manifest_url, "--frames", "1", "submit")
    assert re.match(r"Submitted job shot-2-[0-9a-f]{4}: 1 task,", out), out
    with tarfile.open(tmp_path / "shot3.tar.gz", "w:gz") as bundle:
        bundle.add(farm_env / "shot1.blend", "scene.blend")
    boto_client("s3").upload_file(str(tmp_path / "shot3.tar.gz"), "studio", "shot3.tar.gz")
    out, _ = work(capsys, "--project", "s3://studio/shot3.tar.gz", "-f", "1", "-d", "submit")
    assert re.search(r"^Dry run: job shot3-[0-9a-f]{4} would get", out, re.M), out


def test_a_new_job_id_is_one_no_record_output_folder_or_queue_has(
    farm_env: Path, boto_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto_client("s3")
    s3.put_object(Bucket="studio", Key="frames/.brenda/jobs/shot1-7f3a.json", Body=b"{}")
    s3.put_object(Bucket="studio", Key="frames/shot1-0b1c/frame_000001.png", Body=b"png")
    boto_client("sqs").create_queue(QueueName="studio-job-shot1-9d9d")
    suffixes(monkeypatch, "7f3a", "0b1c", "9d9d", "e5e5")
    assert JobRegistry(load_config()).new_id("shot1") == "shot1-e5e5"


def test_every_job_command_takes_the_start_of_only_one_jobs_id(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (farm_env / "scene.blend").rename(farm_env / "shot1.blend")  # the project's one .blend
    suffixes(monkeypatch, "7f3a", "7f00")
    first, second = submit(capsys, farm_env, "1-2"), submit(capsys, farm_env, "1")
    assert (first, second) == ("shot1-7f3a", "shot1-7f00")
    out, _ = work(capsys, "pause", "shot1-7f3")
    assert out == "Job shot1-7f3a: paused, priority 0.\n"
    out, _ = work(capsys, "resume", "shot1-7f3")
    assert out == "Job shot1-7f3a: active, priority 0.\n"
    out, _ = work(capsys, "priority", "shot1-7f0", "4")
    assert out == "Job shot1-7f00: active, priority 4.\n"
    out, _ = work(capsys, "retry", "shot1-7f3")
    assert out == "Job shot1-7f3a: 0 dead-lettered tasks back to work.\n"
    drain(boto_client, queue_url(boto_client, first))
    out, _ = work(capsys, "missing", "shot1-7f3")
    assert out == "Job shot1-7f3a: 2 missing frames queued (1, 2).\n"
    for ambiguous in ("shot1-7f", "s"):
        _, err = work(capsys, "pause", ambiguous, code=2)
        assert err == (
            f"brenda-work: '{ambiguous}' starts the ids of 2 jobs of farm studio (shot1-7f00, "
            "shot1-7f3a): give more of the id.\n"
        )
    _, err = work(capsys, "cancel", "shot2", code=2)
    assert err == (
        "brenda-work: Farm studio has no job whose id starts with 'shot2'; its jobs are "
        "shot1-7f00, shot1-7f3a.\n"
    )
    out, _ = work(capsys, "cancel", "shot1-7f0")
    assert out == "Job shot1-7f00: cancelled, priority 4.\n"
    assert JobRegistry(load_config()).job("shot1-7f3").id == "shot1-7f3a"  # the add-on's way


def test_jobs_shows_each_jobs_cost_per_frame_projection_and_eta_from_the_nodes_ledgers(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    (farm_env / "scene.blend").write_bytes(b"BLENDER17-01v0502REND" + bytes(64))  # Blender 5.2's
    job = submit(capsys, farm_env, "1-10")
    s3, sqs = boto_client("s3"), boto_client("sqs")
    for frame in range(1, 7):
        s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_{frame:06d}.png", Body=b"png")
    # What two nodes wrote: a spot node idle now (three frames and a failed try), and an
    # on-demand node (US$ 1.006/hour, 30 minutes a frame) rendering frame 7.
    now = time.time()
    spot = Ledger("node-a", Machine("spot", "g5.xlarge", "us-east-1a"), None, now - 30, [
        *(TaskCost(f"frame {n}", 1, now, 1800, 1700, 0.42, 0.21, "stored") for n in (1, 2, 3)),
        TaskCost("frame 9", 0, now, 600, 590, 0.42, 0.07, "failed"),
    ])  # fmt: skip
    on_demand = Ledger("node-b", Machine("on-demand", "g5.xlarge", "us-east-1a"), "frame 7", now, [
        TaskCost(f"frame {n}", 1, now, 1800, 1790, 1.006, 0.503, "stored") for n in (4, 5, 6)
    ])  # fmt: skip
    for name, ledger in (("a", spot), ("b", on_demand)):
        s3.put_object(
            Bucket="studio", Key=f"frames/{job}/.brenda/nodes/{name}.json", Body=ledger.to_json()
        )
    sqs.receive_message(QueueUrl=queue_url(boto_client, job))  # frame 7 is being rendered
    out, _ = work(capsys, "jobs")
    header, row = out.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "job", "state", "priority", "Blender", "frames stored", "waiting", "running", "failed",
        "nodes", "cost", "per frame", "projected", "ETA",
    ]  # fmt: skip
    # US$ 0.63 + 0.07 + 1.509 = 2.209 for 6 frames; 4 frames left at 2.209 / 6 each: 3.68;
    # 11,400 node-seconds for 6 frames, one node on it: 4 * 1,900 s = 2 h 06 min.
    assert row.split() == [
        job, "active", "0", "5.2", "6/10", "9", "1", "0", "1", "$2.21", "$0.37", "$3.68", "2h",
        "06m",
    ]  # fmt: skip


RECORD_WRITTEN_BEFORE = {
    "chunk": 2,
    "created": "2026-11-25T20:36:00.000+00:00",
    "created_by": "ann@studio",
    "farm": "studio",
    "frames": "1-10",
    "id": "shot1-20261125-203600-1a2b",
    "output": "s3://studio/frames/shot1-20261125-203600-1a2b/",
    "priority": 3,
    "project": "s3://studio/projects/manifests/" + "a" * 64 + ".json",
    "settings": {
        "allow_python": False,
        "blend": "shots/shot1.blend",
        "blender": "4.5",
        "blender_newer_ok": False,
        "device": "CPU",
        "environment": {
            "addons": [["tint", "1.2.0"]],
            "blender": "4.5",
            "display": "sRGB",
            "look": "None",
            "ocio": "builtin",
            "on_mismatch": "warn",
            "view": "AgX",
        },
        "file_format": "OPEN_EXR",
        "output_name": "frame_######",
        "render_anyway": False,
        "scene": "Scene",
        "single_colour": True,
        "timeout": 600,
    },
    "state": "paused",
    "tasks": 5,
    "tiles": [0, 0],
}


def test_a_record_written_before_reads_typed_and_is_written_the_same() -> None:
    text = json.dumps(RECORD_WRITTEN_BEFORE, indent=1, sort_keys=True)
    job = Job.from_json(text)
    assert job.state is JobState.PAUSED
    assert job.settings == RenderSettings(
        file_format="OPEN_EXR",
        scene="Scene",
        blend="shots/shot1.blend",
        timeout=600,
        single_colour=True,
        environment=Environment(
            "4.5", (("tint", "1.2.0"),), "sRGB", "AgX", "None", "builtin", "warn"
        ),
        blender="4.5",
    )
    assert [task.settings for task in job.render_tasks()] == [job.settings] * 5
    assert job.to_json() == text
    older = {key: value for key, value in RECORD_WRITTEN_BEFORE.items() if key != "state"}
    assert Job.from_json(json.dumps(older)).state is JobState.ACTIVE


def test_a_video_job_s_record_holds_its_flag_and_refuses_one_not_true_or_false() -> None:
    text = json.dumps({**RECORD_WRITTEN_BEFORE, "video": True}, indent=1, sort_keys=True)
    job = Job.from_json(text)
    assert job.video
    assert job.to_json() == text
    with pytest.raises(TypeError, match="video is not bool"):
        Job.from_json(json.dumps({**RECORD_WRITTEN_BEFORE, "video": "yes"}))


def test_a_record_with_an_unknown_state_is_named_not_read(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    job = RECORD_WRITTEN_BEFORE["id"]
    record = {**RECORD_WRITTEN_BEFORE, "state": "frozen"}
    key = f"frames/.brenda/jobs/{job}.json"
    boto_client("s3").put_object(Bucket="studio", Key=key, Body=json.dumps(record).encode())
    _, err = work(capsys, "pause", str(job), code=1)
    assert err == (
        f"brenda-work: The record of job {job} (s3://studio/{key}) is not believed: 'frozen' is "
        "not a valid JobState.\n"
    )


def test_records_are_believed_only_with_their_own_key_output_and_a_farm_project(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = boto_client("s3")
    good, stranger, elsewhere = (submit(capsys, farm_env, "1") for _ in range(3))
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    for job in (good, stranger, elsewhere):
        key = f"frames/.brenda/jobs/{job}.json"
        document = json.loads(s3.get_object(Bucket="studio", Key=key)["Body"].read())
        document["project"] = "s3://studio/projects/shot.tar.gz"
        if job == elsewhere:
            document["project"] = "s3://studio/projectsx/../projects/shot.tar.gz"
        if job == stranger:
            document["id"] = good  # another job's id: its output, its queue
            document["output"] = f"s3://studio/frames/{good}/"
        s3.put_object(Bucket="studio", Key=key, Body=json.dumps(document).encode())
    out, err = work(capsys, "jobs")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [good]
    assert sorted(err.splitlines()) == sorted(
        [
            f"brenda-work: warning: job record frames/.brenda/jobs/{elsewhere}.json is skipped: "
            "its project s3://studio/projectsx/../projects/shot.tar.gz is not under "
            "s3://studio/projects/",
            f"brenda-work: warning: job record frames/.brenda/jobs/{stranger}.json is skipped: "
            f"its id '{good}' is not the one its key names",
        ]
    )
    _, err = work(capsys, "pause", stranger, code=1)
    assert f"The record of job {stranger} (s3://studio/frames/.brenda/jobs/{stranger}.json)" in err
    assert "is not believed: its id" in err
    _, err = work(capsys, "pause", "../x", code=2)
    assert "'../x' is not a job id" in err


def test_a_project_outside_the_farms_projects_is_refused_at_submit(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    argv = ["--project", f"file://{farm_env}", "--frames", "1", "submit"]
    _, err = work(capsys, *argv, code=2)
    assert f"its project file://{farm_env} is not under s3://studio/projects/." in err
    assert "QueueUrls" not in boto_client("sqs").list_queues()


def test_jobs_shows_a_record_s_control_characters_without_obeying_them(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any
) -> None:
    job = submit(capsys, farm_env, "1")
    key = f"frames/.brenda/jobs/{job}.json"
    s3 = boto_client("s3")
    document = json.loads(s3.get_object(Bucket="studio", Key=key)["Body"].read())
    hostile = f"{job}\x1b]0;owned\x07\x1b[2J"
    document.update(id=hostile, output=f"s3://studio/frames/{hostile}/")
    s3.put_object(Bucket="studio", Key=key, Body=json.dumps(document).encode())
    out, err = work(capsys, "jobs")
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert f"its id '{job}\\x1b]0;owned\\x07\\x1b[2J' is not a job id of farm studio" in err
