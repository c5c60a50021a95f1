# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's notifications, sent by the real nodes that make its events: to an SNS topic of the
farm (moto delivers it to an SQS queue subscribed, as AWS does) or to a webhook (a local HTTP
server), once each, even when two nodes store the job's last two frames together."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.jobs.costs import Ledger, Machine, TaskCost
from tests.conftest import QuietHandler, serving_http
from tests.node.conftest import Farm, MetadataServer, empty_project, submit_job
from tests.node.test_failures import failing_blender
from tests.node.test_group import budget_of, group_with_a_node
from tests.node.test_manifests import png
from tests.node.test_records import rewrite_record, skipped

TOPIC = "brenda-studio-news"


def rendering_blender(folder: Path, *, together: int) -> Path:
    """A Blender that saves a 1x1 PNG of its frame, once ``together`` frames are rendered (on
    any node): the tasks of that many nodes end at once, and their outputs are stored together."""
    (folder / "frame.png").write_bytes(png(200))
    blender = folder / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        f"exec python3 - \"${{@: -1}}\" <<'PY'\n"
        "import json, pathlib, shutil, sys, time\n"
        "arguments = json.loads(sys.argv[1])\n"
        "frame, output = arguments['frames'][0], arguments['output']\n"
        "path = output[: output.index('#')] + str(frame).zfill(output.count('#')) + '.png'\n"
        f"shutil.copy('{folder / 'frame.png'}', path)\n"
        f"pathlib.Path('{folder}', f'rendered-{{frame}}').touch()\n"
        "deadline = time.monotonic() + 60\n"
        f"while len(list(pathlib.Path('{folder}').glob('rendered-*'))) < {together}:\n"
        "    assert time.monotonic() < deadline, 'the other frames never rendered'\n"
        "    time.sleep(0.02)\n"
        "print(f\"Saved: '{path}'\")\n"
        "print(f'BRENDA-OUTPUT: {path}')\n"
        "PY\n"
    )
    blender.chmod(0o755)
    return blender


@pytest.fixture
def subscriber(boto_client: Any) -> Iterator[tuple[str, Any]]:
    """The farm's topic (its ARN), and the messages an SQS queue subscribed to it received."""
    sns, sqs = boto_client("sns"), boto_client("sqs")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    url = sqs.create_queue(QueueName="artist-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def received() -> list[tuple[str, dict[str, Any]]]:
        found = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append((envelope["Subject"], json.loads(envelope["Message"])))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    yield topic, received


def test_finished_reaches_the_topic_once_when_two_nodes_store_the_last_frames_together(
    job_farm: Farm,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    subscriber: tuple[str, Any],
    boto_client: Any,
) -> None:
    topic, received = subscriber
    blender = rendering_blender(tmp_path, together=2)
    project = empty_project(tmp_path / "shot")
    job = submit_job(capsys, project, "--frames", "1-2", "--notify", f"sns://{topic}")

    nodes = [
        job_farm.start_node(name, BLENDER=str(blender), POLL_PAUSE="1", WARM_BLENDER="0")
        for name in ("a", "b")
    ]
    for name, node in zip(("a", "b"), nodes, strict=True):
        assert node.wait(timeout=120) == 0, job_farm.console(name)
    for name in ("a", "b"):  # one task a node, stored together
        console = job_farm.console(name)
        assert f"task 1: {job} frames" in console and "task 2:" not in console, console

    [(subject, event)] = received()
    assert subject == f"Brenda: job {job} finished (2 frames, $0.00, report linked)"
    assert event["event"] == "finished" and event["job"] == job and event["farm"] == "studio"
    assert event["frames"] == 2
    assert event["output"] == f"s3://studio/frames/{job}/"
    assert event["id"] == f"studio/{job}/finished"
    # Local nodes cost nothing; their time is counted.
    assert event["cost"] == 0 and event["unpriced_tasks"] == 0, event
    assert event["node_seconds"] > 0
    # Often both nodes found the job finished, and the one whose marker was second sent nothing.
    consoles = job_farm.console("a") + job_farm.console("b")
    assert consoles.count(f"job {job}: finished sent to sns://{topic}") == 1, consoles
    # The sender stored the job's report beside its frames first: one page, with the frames'
    # thumbnails in it, that fetches nothing.
    report = f"frames/{job}/{job}-report.html"
    assert event["report"] == f"s3://studio/{report}"
    stored = boto_client("s3").get_object(Bucket="studio", Key=report)
    assert stored["ContentType"] == "text/html; charset=utf-8"
    page = stored["Body"].read().decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and f"Brenda report: job {job}" in page
    thumbnails = re.findall(r'<img class="thumbnail" src="data:image/png;base64,[^"]+"', page)
    assert len(thumbnails) == 2, page[:2000]
    assert not re.search(r"https?://", page, re.IGNORECASE)


def test_a_task_that_fails_every_try_is_dead_lettered_once_to_the_topic(
    job_farm: Farm,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    subscriber: tuple[str, Any],
) -> None:
    topic, received = subscriber
    monkeypatch.setenv("BRENDA_MAX_RECEIVE_COUNT", "2")  # the job's queue: two tries a task
    project = empty_project(tmp_path / "shot")
    job = submit_job(capsys, project, "--frames", "1-2", "--notify", f"sns://{topic}")

    blender = failing_blender(tmp_path)
    nodes = [job_farm.start_node(name, BLENDER=str(blender), POLL_PAUSE="1") for name in ("a", "b")]
    for name, node in zip(("a", "b"), nodes, strict=True):
        assert node.wait(timeout=120) == 0, job_farm.console(name)

    events = sorted(received(), key=lambda item: item[1]["frames"])
    assert [event["frames"] for _, event in events] == [[1], [2]], events
    for subject, event in events:
        frame = event["frames"][0]
        assert subject == f"Brenda: job {job}: frames {frame} failed on every try"
        assert event["event"] == "dead-lettered" and event["job"] == job
        assert event["task"] == f"frames {frame}" and event["tries"] == 2
        assert event["error"].startswith(f"Task {job} frames {frame} failed: ")
        assert "Cannot read file" in event["error"]
    assert "finished" not in {event["event"] for _, event in events}


class Hooks(QuietHandler):
    posted: list[tuple[str, str, bytes]]
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (named by http.server)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.posted.append((self.path, self.headers["Content-Type"], body))
        self.reply(204 if len(self.posted) > 1 else 503, "")  # the first try fails: retried


def test_finished_is_posted_to_the_webhook_once(
    job_farm: Farm, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Hooks.posted = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    with serving_http(server) as url:
        project = empty_project(tmp_path / "shot")
        job = submit_job(capsys, project, "--notify", f"{url}/brenda?farm=studio")
        node = job_farm.start_node(
            "a",
            BLENDER=str(rendering_blender(tmp_path, together=1)),
            POLL_PAUSE="1",
            WARM_BLENDER="0",
        )
        assert node.wait(timeout=120) == 0, job_farm.console("a")
    # The server's error was retried: the same event, twice, the second taken.
    assert [(path, kind) for path, kind, _ in Hooks.posted] == [
        ("/brenda?farm=studio", "application/json")
    ] * 2
    first, second = (json.loads(body) for _, _, body in Hooks.posted)
    assert first == second
    assert second["event"] == "finished" and second["job"] == job and second["frames"] == 1
    assert f"job {job}: finished sent to {url}/brenda?farm=studio" in job_farm.console("a")


@pytest.mark.parametrize(
    ("notify", "why"),
    [
        (
            "sns://arn:aws:sns:us-east-1:123456789012:brenda-other-news",
            "notify topic brenda-other-news is not one of farm studio's (named brenda-studio-...)",
        ),
        ("http://example.com/hook", "is not where Brenda sends notifications"),
        ("sns://brenda-studio-news", "is not sns://TOPIC_ARN"),
    ],
    ids=["another-farms-topic", "plain-http-elsewhere", "topic-name-not-arn"],
)
def test_submit_refuses_a_notify_target_nodes_would_not_send_to(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    notify: str,
    why: str,
) -> None:
    project = empty_project(tmp_path / "shot")
    (project / "scene.blend").write_bytes(b"BLENDER-v405" + bytes(64))  # Blender 4.5's header
    argv = ["--project", f"file://{project}", "--frames", "1", "--notify", notify, "submit"]
    assert brenda_work(argv) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert boto_client("sqs").list_queues().get("QueueUrls", []) == []
    listing = boto_client("s3").list_objects_v2(Bucket="studio")
    assert listing["KeyCount"] == 0


@pytest.mark.parametrize(
    "notify",
    [
        "sns://arn:aws:sns:us-east-1:123456789012:payroll-alerts",
        "http://169.254.169.254/latest/api/token",
        "https://example.com/hook\nwith a line",
    ],
    ids=["not-the-farms-topic", "plain-http-elsewhere", "a-line-break"],
)
def test_a_record_whose_news_goes_elsewhere_is_skipped_by_nodes(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    notify: str,
) -> None:
    """Anyone who may write a record (a node, so a hostile task) would otherwise have the farm's
    nodes publish where they may not, or post the farm's news anywhere."""
    project = empty_project(tmp_path / "shot")
    job = submit_job(capsys, project)
    rewrite_record(boto_client, job, notify=notify)
    node = job_farm.start_node("a", BLENDER=str(failing_blender(tmp_path)), POLL_PAUSE="1")
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    console = job_farm.console("a")
    assert "task 1:" not in console
    assert skipped(console, job) == 1, console
    assert "its notify" in console


def test_cancel_posts_cancelled_from_the_workstation_to_notify(
    job_farm: Farm,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    Hooks.posted = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    with serving_http(server) as url:
        monkeypatch.setenv("BRENDA_NOTIFY", url)  # the key, not the flag
        job = submit_job(capsys, empty_project(tmp_path / "shot"))
        assert brenda_work(["show", job]) == 0
        # The webhook's host alone: a webhook's path often holds its secret.
        assert (
            f"\n  notify   a webhook at {url.removeprefix('http://')}\n" in capsys.readouterr().out
        )
        assert brenda_work(["cancel", job[:-2]]) == 0  # the start of its id will do
    bodies = [json.loads(body) for _, _, body in Hooks.posted]
    assert [body["event"] for body in bodies] == ["cancelled"] * 2  # the first try was refused
    assert bodies[-1]["job"] == job and bodies[-1]["id"] == f"studio/{job}/cancelled"


def test_the_node_that_stops_the_fleet_at_its_budget_tells_each_active_job_once(
    job_farm: Farm,
    metadata: MetadataServer,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    subscriber: tuple[str, Any],
) -> None:
    topic, received = subscriber
    group_with_a_node(boto_client, metadata, tagged=False)
    budget_of(boto_client, "2.50")
    project = empty_project(tmp_path / "shot")
    told, paused, silent = (
        submit_job(capsys, project, "--notify", f"sns://{topic}"),
        submit_job(capsys, project, "--notify", f"sns://{topic}"),
        submit_job(capsys, project),
    )
    assert brenda_work(["pause", paused]) == 0
    machine = Machine("spot", "g5.xlarge", "us-east-1a")
    spent = Ledger("node-0", machine, None, 0, [TaskCost("frames 1", 1, 0, 7200, 7000, 2.5, 5.0)])
    boto_client("s3").put_object(
        Bucket="studio", Key=f"frames/{silent}/.brenda/nodes/node-0.json", Body=spent.to_json()
    )
    node = job_farm.start_node(
        "a",
        RUNNING_ON_EC2="1",
        METADATA_URL=metadata.url,
        BLENDER=str(rendering_blender(tmp_path, together=1)),
        WARM_BLENDER="0",
    )
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    events = received()
    # Its nodes finish their task (no drain in this test's metadata): the job finished too.
    assert sorted(event["event"] for _, event in events) == ["budget-stopped", "finished"], events
    [(subject, event)] = [item for item in events if item[1]["event"] == "budget-stopped"]
    assert subject == f"Brenda: the budget stopped farm studio's fleet (job {told})"
    assert event["event"] == "budget-stopped" and event["job"] == told
    assert event["budget"] == 2.5 and event["reason"] == "budget reached"
    assert event["why"].startswith("the farm spent $5.00")


def test_a_webhook_that_is_down_costs_the_job_nothing_but_a_warning(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    closed = f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.server_close()  # nothing listens there now
    job = submit_job(capsys, empty_project(tmp_path / "shot"), "--notify", closed)
    node = job_farm.start_node(
        "a", BLENDER=str(rendering_blender(tmp_path, together=1)), WARM_BLENDER="0"
    )
    assert node.wait(timeout=120) == 0, job_farm.console("a")
    console = job_farm.console("a")
    assert f"task {job} frames 1 done" in console
    assert f"job {job}'s 'finished' notification was not sent: The webhook {closed}" in console
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/frame_")
    assert [item["Key"] for item in listing["Contents"]] == [f"frames/{job}/frame_000001.png"]
