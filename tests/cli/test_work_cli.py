# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work`` end to end against moto's server: every option and every error path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main
from shared.outputs.store import failure_name

FRAME_TEMPLATE = "blender -b *.blend -F PNG -o $OUTDIR/frame_###### -s $START -e $END -j $STEP\n"


@pytest.fixture
def template(tmp_path: Path) -> str:
    path = tmp_path / "frame-template"
    path.write_text(FRAME_TEMPLATE)
    return str(path)


@pytest.fixture
def queue_env(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BRENDA_WORK_QUEUE", "sqs://frames")
    return "frames"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def queue_names(boto_client: Any) -> list[str]:
    urls = boto_client("sqs").list_queues().get("QueueUrls", [])
    return sorted(url.rsplit("/", 1)[1] for url in urls)


def drain(boto_client: Any, name: str) -> list[dict[str, Any]]:
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_one_task_is_said_in_the_singular(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str
) -> None:
    code, _, err = run(capsys, "-T", template, "-e", "1", "-d", "push")
    assert (code, err) == (0, "Dry run: 1 task would go to sqs://frames; nothing was sent.\n")
    code, out, _ = run(capsys, "-T", template, "-e", "1", "push")
    assert (code, out) == (0, "Pushed 1 task to sqs://frames (us-east-1).\n")


def test_push_240_frames_status_then_reset(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str
) -> None:
    code, out, _ = run(capsys, "-T", template, "-e", "240", "push")
    assert code == 0
    assert out == "Pushed 240 tasks to sqs://frames (us-east-1).\n"
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert out.splitlines() == [
        "Queue sqs://frames",
        "  pending             240",
        "  in flight             0",
        "  dead-lettered         0",
    ]
    assert run(capsys, "reset")[:2] == (0, "Emptied sqs://frames and its dead-letter queue.\n")
    assert "  pending               0" in run(capsys, "status")[1]


def test_pushed_messages_are_the_original_scripts(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str, boto_client: Any
) -> None:
    assert run(capsys, "-T", template, "-s", "1", "-e", "25", "-S", "10", "push")[0] == 0
    documents = drain(boto_client, "frames")
    scripts = sorted((doc["frames"]["start"], doc["script"]) for doc in documents)
    assert scripts == [
        (1, FRAME_TEMPLATE.replace("$START", "1").replace("$END", "10").replace("$STEP", "1")),
        (11, FRAME_TEMPLATE.replace("$START", "11").replace("$END", "20").replace("$STEP", "1")),
        (21, FRAME_TEMPLATE.replace("$START", "21").replace("$END", "25").replace("$STEP", "1")),
    ]


def test_subframe_push_with_randomize_keeps_every_tile(
    capsys: pytest.CaptureFixture[str], queue_env: str, boto_client: Any
) -> None:
    code, out, _ = run(capsys, "-T", "subframe", "-e", "2", "-X", "3", "-Y", "3", "-r", "push")
    assert (code, out) == (0, "Pushed 18 tasks to sqs://frames (us-east-1).\n")
    documents = drain(boto_client, "frames")
    tiles = sorted(
        (doc["frames"]["start"], doc["tile"]["min_x"], doc["tile"]["min_y"]) for doc in documents
    )
    thirds = [0.0, 1 / 3, 2 * (1.0 / 3)]
    assert tiles == sorted((frame, x, y) for frame in (1, 2) for x in thirds for y in thirds)
    assert all("-X-" not in doc["script"] for doc in documents)
    assert any("_X-0.333333333333-0.666666666667-Y-" in doc["script"] for doc in documents)


def test_dry_run_prints_and_touches_nothing(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str, boto_client: Any
) -> None:
    code, out, err = run(capsys, "-d", "-T", template, "-e", "3", "push")
    assert code == 0
    assert out == "".join(
        FRAME_TEMPLATE.replace("$START", n).replace("$END", n).replace("$STEP", "1")
        for n in ("1", "2", "3")
    )
    assert err == "Dry run: 3 tasks would go to sqs://frames; nothing was sent.\n"
    assert queue_names(boto_client) == []


def test_dry_run_needs_no_queue_and_random_order_is_seeded(
    capsys: pytest.CaptureFixture[str], template: str
) -> None:
    first = run(capsys, "-d", "-T", template, "-e", "20", "-r", "--seed", "3", "push")[1]
    again = run(capsys, "-d", "-T", template, "-e", "20", "-r", "--seed", "3", "push")[1]
    ordered = run(capsys, "-d", "-T", template, "-e", "20", "push")[1]
    assert first == again != ordered
    assert sorted(first.splitlines()) == sorted(ordered.splitlines())


def test_frame_step_and_frame_lists(capsys: pytest.CaptureFixture[str], template: str) -> None:
    out = run(capsys, "-d", "-T", "frame", "-s", "10", "-e", "20", "-j", "5", "push")[1]
    assert [
        line.split(" -s ", 1)[1].split(" -t")[0].join(["-s ", ""]) for line in out.splitlines()
    ] == ["-s 10 -e 10 -j 5", "-s 15 -e 15 -j 5", "-s 20 -e 20 -j 5"]
    out = run(capsys, "-d", "-T", template, "--frames", "1-3,7,10-14:2", "-S", "2", "push")[1]
    assert [line.split("-s ", 1)[1] for line in out.splitlines()] == [
        "1 -e 2 -j 1",
        "3 -e 3 -j 1",
        "7 -e 7 -j 1",
        "10 -e 12 -j 2",
        "14 -e 14 -j 2",
    ]


def test_structured_render_tasks(
    capsys: pytest.CaptureFixture[str], queue_env: str, boto_client: Any
) -> None:
    argv = ["--render", "--format", "OPEN_EXR", "--scene", "Shot 1", "-e", "4", "-S", "2"]
    assert run(capsys, *argv, "push")[0] == 0
    documents = sorted(drain(boto_client, "frames"), key=lambda doc: doc["frames"]["start"])
    assert [(doc["kind"], doc["format"], doc["scene"]) for doc in documents] == [
        ("render", "OPEN_EXR", "Shot 1")
    ] * 2
    assert [doc["frames"] for doc in documents] == [
        {"start": 1, "end": 2, "step": 1},
        {"start": 3, "end": 4, "step": 1},
    ]


def test_hard_reset_deletes_both_queues(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str, boto_client: Any
) -> None:
    run(capsys, "-T", template, "-e", "2", "push")
    assert queue_names(boto_client) == ["frames", "frames-dead"]
    assert run(capsys, "-H", "reset")[1] == "Deleted sqs://frames and its dead-letter queue.\n"
    assert queue_names(boto_client) == []
    assert (
        run(capsys, "status")[1] == "Queue sqs://frames does not exist: nothing has been pushed.\n"
    )
    assert run(capsys, "reset")[1] == "Queue sqs://frames does not exist: nothing to reset.\n"


def test_status_counts_in_flight_and_dead_lettered(
    capsys: pytest.CaptureFixture[str], queue_env: str, template: str, boto_client: Any
) -> None:
    run(capsys, "-T", template, "-e", "5", "push")
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName="frames")["QueueUrl"]
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300)
    assert len(held["Messages"]) == 2
    poison = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    for _ in range(3):
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=poison["ReceiptHandle"], VisibilityTimeout=0
        )
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)
        poison = again.get("Messages", [poison])[0]
    out = run(capsys, "status")[1]
    assert "  in flight             2" in out
    assert "  dead-lettered         1" in out
    assert "  pending               2" in out
    assert "no error recorded in RENDER_OUTPUT" in out


def test_status_survives_an_unreadable_render_output(
    capsys: pytest.CaptureFixture[str],
    queue_env: str,
    template: str,
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(capsys, "-T", template, "-e", "1", "push")
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName="frames")["QueueUrl"]
    for _ in range(4):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)
    monkeypatch.setenv("BRENDA_RENDER_OUTPUT", "s3://no-such-bucket/frames")
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "  frames 1: (the recorded error cannot be read: AWS refused reading" in out


def test_queue_settings_come_from_the_config_file(
    capsys: pytest.CaptureFixture[str], aws: str, tmp_path: Path, template: str, boto_client: Any
) -> None:
    config = tmp_path / "brenda.conf"
    config.write_text("WORK_QUEUE=sqs://shot2\nVISIBILITY_TIMEOUT=300\nMAX_RECEIVE_COUNT=5\n")
    assert run(capsys, "-c", str(config), "-T", template, "-e", "1", "push")[0] == 0
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName="shot2")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "300"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] in (5, "5")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-e", "10", "push"], "The task template is missing: give -T FILE"),
        (["-T", "{template}", "push"], "The last frame is missing: give -e N"),
        (["-T", "{template}", "-e", "10", "-S", "0", "push"], "Frames per task (-S) must be 1"),
        (
            ["-T", "{template}", "-s", "10", "-e", "5", "push"],
            "End frame 5 is before start frame 10",
        ),
        (["-T", "{template}", "-e", "5", "-X", "2", "push"], "need both -X and -Y above 0"),
        (["-T", "{template}", "-e", "5", "-Y", "2", "push"], "need both -X and -Y above 0"),
        (["-T", "{template}", "-e", "5", "-j", "0", "push"], "Frame step 0 must be 1 or more"),
        (["-T", "{template}", "--frames", "1-5,3", "push"], "Frame 3 appears twice"),
        (["-T", "{template}", "--frames", "1-5", "-e", "9", "push"], "Give either --frames or -e"),
        (["-T", "no-such-file", "-e", "5", "push"], "'no-such-file' does not exist"),
        (["-T", "{template}", "--render", "-e", "5", "push"], "either a task template (-T) or"),
        (["-T", "{template}", "-e", "5", "-X", "2", "-Y", "2", "push"], "tiles would not differ"),
        (["--render", "-e", "5", "--blend", "../x.blend", "push"], "inside the project"),
        (["-H", "status"], "-H/--hard applies only to reset."),
        (["-d", "reset"], "-d/--dry-run applies only to push and submit."),
        (["-T", "{template}", "-e", "5", "--video", "push"], "--video applies only to submit"),
    ],
    ids=[
        "no -T",
        "no -e",
        "-S 0",
        "end<start",
        "only -X",
        "only -Y",
        "-j 0",
        "frame twice",
        "frames and -e",
        "missing template",
        "-T and --render",
        "template without tiles",
        "blend outside",
        "-H status",
        "-d reset",
        "--video push",
    ],
)
def test_bad_input_is_one_line_and_pushes_nothing(
    capsys: pytest.CaptureFixture[str],
    queue_env: str,
    template: str,
    boto_client: Any,
    argv: list[str],
    message: str,
) -> None:
    code, out, err = run(capsys, *[arg.replace("{template}", template) for arg in argv])
    assert code == 2
    assert out == ""
    assert err.startswith("brenda-work: ") and err.count("\n") == 1
    assert message in err
    assert queue_names(boto_client) == []


def test_bad_config_value_names_file_line_and_key(
    capsys: pytest.CaptureFixture[str], aws: str, tmp_path: Path, template: str, boto_client: Any
) -> None:
    config = tmp_path / "brenda.conf"
    config.write_text("WORK_QUEUE=sqs://frames\nVISIBILITY_TIMEOUT=-1\n")
    code, _, err = run(capsys, "-c", str(config), "-T", template, "-e", "3", "push")
    assert code == 1
    assert err == (
        f"brenda-work: {config}, line 2: VISIBILITY_TIMEOUT must be at least 1 and at most "
        "43200, not -1.\n"
    )
    assert queue_names(boto_client) == []


def test_missing_queue_setting(capsys: pytest.CaptureFixture[str], aws: str) -> None:
    code, _, err = run(capsys, "status")
    assert code == 1
    assert err.startswith("brenda-work: WORK_QUEUE is not set: add WORK_QUEUE=... to")


def test_no_credentials_is_one_sentence(
    capsys: pytest.CaptureFixture[str], queue_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run(capsys, "status")
    assert code == 1
    assert err == (
        "brenda-work: No AWS credentials were found while looking up sqs://frames: run 'aws "
        "configure', set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\n"
    )


def test_unreachable_endpoint_is_one_sentence(
    capsys: pytest.CaptureFixture[str], queue_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run(capsys, "status")
    assert code == 1
    assert err == (
        "brenda-work: Could not reach http://127.0.0.1:9 while looking up sqs://frames: check "
        "the network connection (and AWS_ENDPOINT_URL if you set it).\n"
    )


def test_unknown_profile_is_one_sentence(
    capsys: pytest.CaptureFixture[str], queue_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRENDA_AWS_PROFILE", "studio")
    code, _, err = run(capsys, "status")
    assert (code, err) == (
        1,
        "brenda-work: AWS profile 'studio' does not exist: check AWS_PROFILE and ~/.aws/config.\n",
    )


def brenda_work(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("brenda-work")
    assert executable, "brenda-work is not installed: run the README's test command"
    return subprocess.run(
        [executable, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        ([], 2, "stderr", "the following arguments are required"),
        (["launch"], 2, "stderr", "invalid choice: 'launch'"),
        (["--bogus", "push"], 2, "stderr", "unrecognized arguments: --bogus"),
        (["-h"], 0, "stdout", "brenda-work -T frame -e 240 push"),
        (["push", "--help"], 0, "stdout", "usage: brenda-work"),
        (["-e", "5", "push"], 2, "stderr", "The task template is missing"),
        (["status"], 1, "stderr", "WORK_QUEUE is not set"),
        (["--version"], 0, "stdout", "brenda-work 0.1.0"),
    ],
    ids=[
        "no command",
        "unknown command",
        "unknown option",
        "-h",
        "push --help",
        "usage error",
        "error",
        "version",
    ],
)
def test_process_exit_status_and_no_traceback(
    argv: list[str], code: int, stream: str, text: str
) -> None:
    result = brenda_work(*argv)
    assert result.returncode == code
    assert text in getattr(result, stream)
    assert "Traceback" not in result.stderr
    if code:
        assert result.stderr.count("\n") == 1


CONTROL = "\x1b]0;owned\x07\x1b[2J\x1b[1A"
"""A window title, a cleared screen, a line rewritten: what a hostile node may write."""


def test_status_shows_a_failure_note_s_control_characters_without_obeying_them(
    capsys: pytest.CaptureFixture[str],
    queue_env: str,
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BRENDA_RENDER_OUTPUT", f"file://{tmp_path / 'out'}")
    run(capsys, "--render", "-e", "1", "push")
    sqs = boto_client("sqs")
    dead = sqs.get_queue_url(QueueName="frames-dead")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=dead, MessageBody="{}")
    note = tmp_path / "out" / failure_name(sent["MessageId"])
    note.parent.mkdir(parents=True)
    note.write_text(f"Task failed{CONTROL}: all is well\n")
    out = run(capsys, "status")[1]
    assert "\x1b" not in out and "\x07" not in out
    assert "Task failed\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A: all is well" in out
