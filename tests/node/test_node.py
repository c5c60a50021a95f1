# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's loop with shell tasks: outputs stored before deletion, failures, DONE modes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

from brenda_node.node import Node, Stopper
from brenda_node.status import NodeState
from brenda_node.uploader import FailureNotes
from shared.aws.sqs import Message
from shared.cli.node import main as node_main
from shared.core.config import load_config
from shared.core.errors import StoreError
from shared.outputs.store import failure_name
from tests.node.conftest import Farm, script_tasks, wait_for


def test_two_nodes_store_every_output_and_exit_when_the_queue_is_done(farm: Farm) -> None:
    farm.push(script_tasks('echo "frame $START" > "$OUTDIR/frame_$START.txt"\n', range(1, 7)))
    nodes = [farm.start_node("a"), farm.start_node("b")]
    assert [node.wait(timeout=60) for node in nodes] == [0, 0], farm.console("a")
    output = farm.output
    assert farm.stored() == [f"frame_{n}.txt" for n in range(1, 7)]
    assert (output / "frame_3.txt").read_text() == "frame 3\n"
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    counted = [farm.work_dir(name) / "task_count" for name in "ab"]
    assert sum(int(path.read_text()) for path in counted if path.exists()) == 6


def test_a_killed_nodes_pid_file_does_not_stop_the_next_node_but_a_running_ones_does(
    farm: Farm,
) -> None:
    """SIGKILL left brenda.pid behind and every restart refused: its lock dies with the node."""
    work = str(farm.work_dir("a"))
    task = 'echo "frame $START" > "$OUTDIR/frame_$START.txt"\n'
    farm.push(script_tasks(task, range(1, 2)))
    killed = farm.start_node("a", DONE="poll", POLL_PAUSE="1")
    wait_for(lambda: farm.status("a").get("state") == "polling", 60, "the node to poll")
    beside = farm.start_node("beside", WORK_DIR=work)
    assert beside.wait(timeout=60) == 1
    assert (
        f"brenda-node: Another node (pid {killed.pid}) is running in {work}: its pid file "
        f"{work}/brenda.pid is locked." in farm.console("beside")
    )
    killed.kill()
    killed.wait()
    assert (farm.work_dir("a") / "brenda.pid").exists()  # as a kill leaves it
    farm.push(script_tasks(task, range(2, 3)))
    restarted = farm.start_node("restarted", WORK_DIR=work)
    assert restarted.wait(timeout=60) == 0, farm.console("restarted")
    assert farm.stored() == ["frame_1.txt", "frame_2.txt"]
    assert not (farm.work_dir("a") / "brenda.pid").exists()


def test_a_node_without_settings_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert node_main([]) == 1
    error = capsys.readouterr().err
    assert error.startswith("brenda-node: WORK_QUEUE is not set") and error.count("\n") == 1
    assert list(folder.iterdir()) == []


def test_tasks_run_without_the_nodes_secrets_and_links_are_never_stored(
    farm: Farm, tmp_path: Path
) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = hunter2\n")
    script = f'env > "$OUTDIR/env_$START.txt"\nln -s {secret} "$OUTDIR/frame_$START.png"\n'
    farm.push(script_tasks(script, range(1, 2)))
    node = farm.start_node("a")
    assert node.wait(timeout=60) == 0, farm.console("a")
    output = farm.output
    assert farm.stored() == ["env_1.txt"]
    names = {line.split("=", 1)[0] for line in (output / "env_1.txt").read_text().splitlines()}
    assert {"OUTDIR", "PATH", "HOME", "TMPDIR"} <= names
    assert not [name for name in names if name.startswith(("AWS_", "BRENDA_"))], names
    assert "frame_1.png is a link, not stored: only regular files are outputs" in farm.console("a")


POISON = {
    "deep": "[" * 100_000,
    "huge number": '{"brenda":1,"frames":{"start":1e400,"end":1,"step":1},"tile":null,'
    '"kind":"script","script":"true"}',
    "nul in blend": '{"brenda":1,"frames":{"start":1,"end":1,"step":1},"tile":null,'
    '"kind":"render","format":"PNG","scene":null,"blend":"a\\u0000.blend","output":"f_#"}',
}


@pytest.mark.parametrize("body", list(POISON.values()), ids=list(POISON))
def test_a_malformed_message_is_a_recorded_failure_not_a_crash(
    farm: Farm, boto_client: Any, body: str
) -> None:
    farm.push(script_tasks('echo ok > "$OUTDIR/frame_$START.txt"\n', range(1, 2)))
    sqs = boto_client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="jobs")["QueueUrl"], MessageBody=body)
    node = farm.start_node("a")
    assert node.wait(timeout=60) == 0, farm.console("a")
    assert farm.console("a").count(" is not a task: ") == 3
    assert "Traceback" not in farm.console("a")
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 1)
    output = Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))
    assert len(list((output / ".brenda" / "failures").iterdir())) == 1


def test_an_output_name_the_store_cannot_hold_is_skipped_and_the_good_frames_count(
    farm: Farm,
) -> None:
    script = 'echo good > "$OUTDIR/frame_$START.txt"\necho odd > "$OUTDIR/odd\\\\name.txt"\n'
    farm.push(script_tasks(script, range(1, 2)))
    node = farm.start_node("a")
    assert node.wait(timeout=60) == 0, farm.console("a")
    assert farm.stored() == ["frame_1.txt"]
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    assert "'odd\\name.txt' is not a file name inside the render output. Not stored" in (
        farm.console("a")
    )


def small_disk_wrapper(folder: Path, size: str) -> list[str]:
    """A command prefix that runs a program with ``folder`` on a tmpfs of ``size`` of its own
    (a private mount namespace, so nothing outside the test sees it)."""
    mount = 'mount -t tmpfs -o size="$1" tmpfs "$0" && shift && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", mount, str(folder), size]


def can_mount_a_small_disk(tmp_path: Path) -> bool:
    probe = subprocess.run(
        [*small_disk_wrapper(tmp_path, "1m"), "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def test_a_full_work_disk_gives_the_task_back_at_once_and_stops_the_node(
    farm: Farm, tmp_path: Path
) -> None:
    if not can_mount_a_small_disk(tmp_path):
        pytest.skip("this machine cannot mount a private tmpfs (unshare -rm)")
    farm.settings.update(MAX_RECEIVE_COUNT="2")
    script = 'head -c 3000000 /dev/zero > "$OUTDIR/frame_$START.bin"\n'
    farm.push(script_tasks(script, range(1, 4)))
    small = farm.work_dir("small")
    small.mkdir(parents=True)
    node = farm.start_node("small", wrapper=small_disk_wrapper(small, "2m"))
    assert node.wait(timeout=60) == 1
    console = farm.console("small")
    assert "Traceback" not in console
    last = console.strip().splitlines()[-1]
    assert last.startswith(f"brenda-node: The work disk of {small} is full (")
    assert last.endswith(
        "the task went back to the queue and the node stopped; free some space and start it again."
    )
    counts = farm.counts()
    assert (counts.pending, counts.in_flight) == (3, 0)
    # The task's failure note says why it went back, should it fail on every node.
    [note] = (farm.output / ".brenda" / "failures").iterdir()
    assert note.read_text().startswith("Task frames ")
    assert " could not run on node " in note.read_text()
    assert f"The work disk of {small} is full (" in note.read_text()
    healthy = farm.start_node("healthy")
    assert healthy.wait(timeout=60) == 0, farm.console("healthy")
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    assert farm.stored() == [f"frame_{n}.bin" for n in (1, 2, 3)]


def test_progress_held_back_by_the_status_interval_is_written_when_it_ends(
    tmp_path: Path,
) -> None:
    state = NodeState(tmp_path)
    state.show(state="rendering", sample=None)
    state.show(force=False, sample="1/3000")  # Blender's last line before a quiet stretch

    def written() -> dict[str, Any]:
        return dict(json.loads((tmp_path / "status.json").read_text()))

    assert written()["sample"] is None
    wait_for(lambda: written()["sample"] == "1/3000", 10, "the held-back sample to be written")
    assert written()["state"] == "rendering"


class FlakyStore:
    """An output store for failure notes that is down until told otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.notes: dict[str, str] = {}

    def put_text(self, name: str, text: str) -> None:
        if self.down:
            raise StoreError("The output store is down.")
        self.notes[name] = text


class ReturnedLease:
    """A lease whose task has gone back to the queue."""

    message = Message(body="{}", receipt="r", message_id="m-1", receive_count=2)

    def give_back(self) -> None:
        pass


class NoWork:
    """A task source with nothing left to take, holding ``notes``."""

    def __init__(self, notes: FailureNotes) -> None:
        self._notes = notes

    def take(self) -> None:
        return None

    def done(self) -> bool:
        return True

    def serving(self, taken: object) -> NoReturn:
        raise AssertionError("no task was taken")

    def stopping(self, taken: object, stop: object) -> NoReturn:
        raise AssertionError("no task was taken")

    def notes(self) -> list[FailureNotes]:
        return [self._notes]


def test_the_one_loop_stores_failure_notes_kept_while_the_store_was_down_before_ending(
    tmp_path: Path,
) -> None:
    config = load_config(environ={"BRENDA_RUNNING_ON_EC2": "0"})
    node = Node(config, tmp_path, Stopper())
    node.state.begin("exit")
    store = FlakyStore()
    notes = FailureNotes(store, node.state, node.name, job="shot-1")
    notes.record(ReturnedLease(), "Task frames 1 failed: broken scene")
    assert store.notes == {}  # kept: the store is down
    store.down = False
    # Any source's notes are flushed while the node waits for a task, before it ends.
    assert node.loop(NoWork(notes)) == "exit"
    assert store.notes == {
        failure_name("m-1"): (
            f"Task frames 1 failed: broken scene\n(node {node.name}, try 2)\ntask: {{}}\n"
        )
    }
