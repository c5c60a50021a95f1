# SPDX-License-Identifier: GPL-3.0-or-later
"""A task that runs too long, falls silent, or hangs at exit is stopped; what it saved is kept."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from brenda_node.blender import RunResult, TaskRunner
from brenda_node.blenders import Blenders
from shared.cli.work import main as brenda_work
from shared.outputs.store import FolderStore
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask, Task, decode_task, encode_task
from tests.node.conftest import Farm, processes_running, script_tasks, wait_for

# Sleeps of a length of this test's own, so that pgrep finds only its processes.
HANG = f"1000.{os.getpid()}"


def hung_processes() -> list[str]:
    return processes_running(f"sleep {HANG}")


@pytest.fixture(autouse=True)
def no_hung_process_survives() -> Any:
    yield
    for pid in hung_processes():
        subprocess.run(["kill", "-9", pid], check=False)


def runner(tmp_path: Path, blender: str, **limits: float) -> TaskRunner:
    """A runner whose ``blender`` is the shell script ``blender``."""
    fake = tmp_path / "fake-blender"
    fake.write_text(
        f"#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n{blender}"
    )
    fake.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "scene.blend").write_bytes(b"")
    blenders = Blenders.of([str(fake)], tmp_path / "bin")
    return TaskRunner(project, blenders, tmp_path / "tmp", **limits)


def run(runner: TaskRunner, task: Task, tmp_path: Path) -> RunResult:
    return runner.run(task, tmp_path / "out", stop=threading.Event())


def render_task(**settings: Any) -> RenderTask:
    return RenderTask(FrameChunk(1, 2, 1), None, RenderSettings(**settings))


# What the render script prints for each frame, then a Blender that never exits.
SAVES_THEN_HANGS = """
output=$(python3 -c 'import json,sys; print(json.loads(sys.argv[-1])["output"])' "${@: -1}")
for frame in 1 2; do
    path="${output%%#*}00000$frame.png"
    echo png > "$path"
    echo "Saved: '$path'"
    echo "BRENDA-OUTPUT: $path"
done
sleep HANG
""".replace("HANG", HANG)


def test_frames_written_before_a_hang_at_exit_count_and_blender_is_stopped(
    tmp_path: Path,
) -> None:
    result = run(runner(tmp_path, SAVES_THEN_HANGS, exit_grace=1), render_task(), tmp_path)
    assert result.hung_at_exit and result.failure() is None
    assert [path.name for path in result.outputs] == ["frame_000001.png", "frame_000002.png"]
    assert hung_processes() == []


def test_a_job_timeout_stops_a_task_that_keeps_talking(tmp_path: Path) -> None:
    chatty = f"while true; do echo 'Fra:1 Sample 1/1000'; sleep 0.{os.getpid() % 9 + 1}; done\n"
    result = run(runner(tmp_path, chatty, silence=0), render_task(timeout=2), tmp_path)
    assert result.failure() == "the task ran past its timeout of 2 s"
    assert 2 <= result.seconds < 2 + 10


def test_a_silent_task_is_stopped_as_hung(tmp_path: Path) -> None:
    silent = f"echo 'Fra:1 Sample 1/1000'\nsleep {HANG}\n"
    result = run(runner(tmp_path, silent, silence=1), render_task(), tmp_path)
    assert result.failure() == (
        "the task printed nothing for 1 s and was stopped as hung (last line: Fra:1 Sample 1/1000)"
    )
    assert hung_processes() == []


def test_a_template_that_saves_then_hangs_has_its_frame_stored_and_fails(farm: Farm) -> None:
    farm.settings.update(TASK_SILENCE="2", MAX_RECEIVE_COUNT="1")
    script = f'echo "frame $START" > "$OUTDIR/frame_$START.txt"\nsleep {HANG}\n'
    farm.push(script_tasks(script, range(4, 5)))
    node = farm.start_node("a")
    wait_for(lambda: farm.counts().dead == 1, 60, "the hung task to fail")
    assert node.wait(timeout=60) == 0, farm.console("a")
    output = FolderStore(Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://")))
    assert output.names() == ["frame_4.txt"]
    assert "Task frames 4 failed: the task printed nothing for 2 s" in farm.console("a")
    assert hung_processes() == []


def test_a_task_timeout_travels_in_the_task_and_bad_ones_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = render_task(timeout=90)
    assert decode_task(encode_task(task)) == task
    assert brenda_work(["push", "--render", "--timeout", "0", "-e", "1", "-d"]) == 2
    assert capsys.readouterr().err == (
        "brenda-work: Task timeout 0 s must be between 1 s and 604800 s.\n"
    )
