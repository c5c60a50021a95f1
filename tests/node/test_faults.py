# SPDX-License-Identifier: GPL-3.0-or-later
"""Nothing is lost: killed nodes, signals, spot notices, poison tasks, lapsing leases."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.outputs.store import FolderStore
from tests.node.conftest import (
    Farm,
    MetadataServer,
    kill_processes_in,
    logged_seconds_between,
    processes_running,
    script_tasks,
    wait_for,
)

# A task that sleeps for a length of its own, so that pgrep finds this test's sleep only.
SLOW_SECONDS = f"30.{os.getpid()}"
AMI = "ami-12c6146b"
SLOW_TASK = f'sleep {SLOW_SECONDS}; echo "frame $START" > "$OUTDIR/frame_$START.txt"\n'


def output_names(farm: Farm) -> list[str]:
    return FolderStore(Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))).names()


def rendering(farm: Farm, name: str) -> bool:
    return farm.status(name).get("state") == "rendering"


def sleeping_tasks() -> list[str]:
    return processes_running(f"sleep {SLOW_SECONDS}")


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (
            'echo "Error: the scene is broken" >&2; exit 3\n',
            "the task exited with status 3 (Error: the scene is broken)",
        ),
        ("echo rendering nothing\n", "the task exited 0 but wrote no output (rendering nothing)"),
    ],
    ids=["exit status", "no output"],
)
def test_poison_task_is_dead_lettered_after_three_tries_with_its_error(
    farm: Farm,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    error: str,
) -> None:
    farm.push(script_tasks(script, range(5, 6)))
    node = farm.start_node("a")
    assert node.wait(timeout=60) == 0
    assert farm.console("a").count(f"Task frames 5 failed: {error}") == 3
    assert output_names(farm) == []
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_work(["status"]) == 0
    out = capsys.readouterr().out
    assert "  pending               0\n" in out
    assert "  dead-lettered         1\n" in out
    assert f"  frames 5: Task frames 5 failed: {error}\n" in out


def test_sigterm_gives_the_task_back_within_five_seconds_and_stops_blender(farm: Farm) -> None:
    farm.push(script_tasks(SLOW_TASK, range(1, 2)))
    node = farm.start_node("a")
    wait_for(lambda: rendering(farm, "a") and sleeping_tasks(), 60, "the task to start")
    node.send_signal(signal.SIGTERM)
    wait_for(lambda: farm.counts().pending == 1, 30, "the task to return to the queue")
    assert node.wait(timeout=30) == 0
    assert sleeping_tasks() == []
    handed_back = logged_seconds_between(farm.console("a"), "stopping: SIGTERM", "goes back to")
    assert handed_back < 5


@pytest.mark.parametrize(
    ("path", "body", "notice"),
    [
        (
            "/latest/meta-data/spot/instance-action",
            '{"action": "terminate", "time": "2026-11-25T10:00:00Z"}',
            "a spot interruption notice",
        ),
        (
            "/latest/meta-data/events/recommendations/rebalance",
            '{"noticeTime": "2026-11-25T10:00:00Z"}',
            "a spot rebalance recommendation",
        ),
    ],
    ids=["interruption", "rebalance"],
)
def test_spot_notice_gives_the_task_back(
    farm: Farm, metadata: MetadataServer, path: str, body: str, notice: str
) -> None:
    farm.push(script_tasks(SLOW_TASK, range(1, 2)))
    node = farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, METADATA_POLL="1")
    wait_for(lambda: rendering(farm, "a") and sleeping_tasks(), 60, "the task to start")
    metadata.values[path] = body
    wait_for(lambda: farm.counts().pending == 1, 30, "the task to return to the queue")
    assert node.wait(timeout=30) == 0
    assert metadata.token_requests == 1
    assert sleeping_tasks() == []
    # METADATA_POLL is 1 s: the notice is seen within about a second, the task handed back
    # within a few more, by the node's own clock.
    stopping = f"stopping: {notice} ({body})"
    assert logged_seconds_between(farm.console("a"), stopping, "goes back to") < 5


def test_a_node_killed_mid_task_loses_nothing(farm: Farm) -> None:
    farm.settings.update(VISIBILITY_TIMEOUT="3", VISIBILITY_TIMEOUT_REASSERT="1")
    farm.push(script_tasks('sleep 1; echo "$START" > "$OUTDIR/frame_$START.txt"\n', range(1, 5)))
    doomed = farm.start_node("doomed")
    wait_for(lambda: rendering(farm, "doomed"), 30, "the first task to start")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    survivor = farm.start_node("survivor")
    assert survivor.wait(timeout=60) == 0, farm.console("survivor")
    assert output_names(farm) == [f"frame_{n}.txt" for n in range(1, 5)]
    assert int((farm.work_dir("survivor") / "task_count").read_text()) == 4
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)


def test_the_lease_outlives_the_visibility_timeout_while_the_task_runs(
    farm: Farm, tmp_path: Path
) -> None:
    farm.settings.update(VISIBILITY_TIMEOUT="2", VISIBILITY_TIMEOUT_REASSERT="1")
    runs = tmp_path / "runs"
    script = f'echo run >> {runs}; sleep 5; echo done > "$OUTDIR/frame_$START.txt"\n'
    farm.push(script_tasks(script, range(1, 2)))
    nodes = [farm.start_node("a"), farm.start_node("b")]
    assert [node.wait(timeout=60) for node in nodes] == [0, 0]
    assert runs.read_text() == "run\n"
    assert output_names(farm) == ["frame_1.txt"]


def test_done_poll_waits_until_the_done_file_says_shutdown(farm: Farm, tmp_path: Path) -> None:
    powered_off = tmp_path / "powered-off"
    farm.push(script_tasks('echo > "$OUTDIR/frame_$START.txt"\n', range(1, 2)))
    node = farm.start_node(
        "a", DONE="poll", POLL_PAUSE="1", SHUTDOWN_COMMAND=f"touch {powered_off}"
    )
    wait_for(lambda: farm.status("a").get("state") == "polling", 30, "the node to poll")
    time.sleep(1.5)
    assert node.poll() is None
    (farm.work_dir("a") / "DONE").write_text("shutdown\n")
    assert node.wait(timeout=10) == 0
    assert powered_off.exists()
    assert output_names(farm) == ["frame_1.txt"]


def test_done_shutdown_cancels_the_nodes_own_persistent_spot_request(
    farm: Farm, metadata: MetadataServer, boto_client: Any, tmp_path: Path
) -> None:
    ec2 = boto_client("ec2")
    requests = ec2.request_spot_instances(
        SpotPrice="0.2", InstanceCount=2, Type="persistent", LaunchSpecification={"ImageId": AMI}
    )["SpotInstanceRequests"]
    mine, other = (request["SpotInstanceRequestId"] for request in requests)
    own_instance = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[mine])[
        "SpotInstanceRequests"
    ][0]["InstanceId"]
    metadata.values["/latest/meta-data/instance-id"] = own_instance
    powered_off = tmp_path / "powered-off"
    farm.push(script_tasks('echo > "$OUTDIR/frame_$START.txt"\n', range(1, 2)))
    node = farm.start_node(
        "a",
        DONE="shutdown",
        RUNNING_ON_EC2="1",
        METADATA_URL=metadata.url,
        SHUTDOWN_COMMAND=f"touch {powered_off}",
    )
    assert node.wait(timeout=60) == 0, farm.console("a")
    assert powered_off.exists()
    assert f"cancelled this node's spot request {mine}" in farm.console("a")
    left = {
        request["SpotInstanceRequestId"]: request["State"]
        for request in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    }
    assert left.get(mine, "cancelled") == "cancelled"
    assert left[other] == "active"


def test_the_farm_leaves_no_process_behind_even_one_a_killed_node_orphaned(
    tmp_path: Path,
) -> None:
    # A task process in a session of its own, as a node starts it, whose node died.
    folder = tmp_path / "nodes" / "a" / "outdir1"
    folder.mkdir(parents=True)
    orphan = subprocess.Popen(["sleep", SLOW_SECONDS], cwd=folder, start_new_session=True)
    outside = subprocess.Popen(["sleep", SLOW_SECONDS], cwd=tmp_path.parent)
    try:
        kill_processes_in(tmp_path)
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert outside.poll() is None
    finally:
        for process in (orphan, outside):
            process.kill()
            process.wait()
