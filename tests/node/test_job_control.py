# SPDX-License-Identifier: GPL-3.0-or-later
"""Cancelling a job stops its running task on the node at once and leaves other jobs alone."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from tests.node.conftest import Farm, logged_seconds_between, processes_running, wait_for
from tests.node.test_manifests import png

# A Blender that renders forever (the test's own sleep length, so pgrep finds only it).
FOREVER = f"1000.{os.getpid()}"


def rendering_forever() -> list[str]:
    return processes_running(f"sleep {FOREVER}")


def test_cancelling_a_job_stops_its_running_task_and_spares_the_others(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    blender = tmp_path / "slow-blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        f"echo 'Fra:1 Sample 1/100'\nsleep {FOREVER}\n"
    )
    blender.chmod(0o755)
    job_farm.settings.update(BLENDER=str(blender))
    project = tmp_path / "shot"
    project.mkdir()
    (project / "scene.blend").write_bytes(b"")

    def submit(priority: str) -> str:
        argv = ["--project", f"file://{project}", "--frames", "1", "--priority", priority]
        assert brenda_work([*argv, "submit"]) == 0
        match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
        assert match
        return match.group(1)

    doomed, spared = submit("5"), submit("0")
    node = job_farm.start_node("a", DONE="poll", POLL_PAUSE="1")
    try:
        wait_for(rendering_forever, 60, "the doomed job's task to render")
        assert brenda_work(["cancel", doomed]) == 0
        wait_for(lambda: f"task 2: {spared}" in job_farm.console("a"), 60, "the other job's task")
        console = job_farm.console("a")
        assert f"job {doomed} was cancelled: its task stops" in console
        assert logged_seconds_between(console, f"task 1: {doomed}", f"task 2: {spared}") < 15
        assert brenda_work(["jobs"]) == 0
        table = capsys.readouterr().out
        assert re.search(rf"^{spared}\s+active\s+0\s+\?\s+0/1\s+0\s+1\s+0\s+1\s", table, re.M), (
            table
        )
        assert f"task {doomed} frames 1 stopped; it goes back to the queue" in console
        assert len(rendering_forever()) == 1  # the other job's render; the cancelled one died
    finally:
        node.kill()
        node.wait()


@pytest.mark.parametrize("done", ["exit", "shutdown"])
def test_a_paused_job_is_no_work_a_done_node_ends_with_its_tasks_left(
    job_farm: Farm, capsys: pytest.CaptureFixture[str], tmp_path: Path, done: str
) -> None:
    blender = tmp_path / "blender"
    blender.write_text("#!/bin/bash\necho 'Blender 4.5.0'\n")
    blender.chmod(0o755)
    project = tmp_path / "shot"
    project.mkdir()
    (project / "scene.blend").write_bytes(b"")
    argv = ["--project", f"file://{project}", "--frames", "1-3"]
    assert brenda_work([*argv, "submit"]) == 0
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    paused = match.group(1)
    assert brenda_work(["pause", paused]) == 0
    # The node used to wait forever for the paused job's tasks (billing, with DONE=shutdown).
    powered_off = tmp_path / "powered-off"
    node = job_farm.start_node(
        "a",
        BLENDER=str(blender),
        POLL_PAUSE="1",
        DONE=done,
        SHUTDOWN_COMMAND=f"touch {powered_off}",
    )
    assert node.wait(timeout=60) == 0, job_farm.console("a")
    assert "task 1:" not in job_farm.console("a")
    assert powered_off.exists() is (done == "shutdown")
    capsys.readouterr()
    assert brenda_work(["jobs"]) == 0
    table = capsys.readouterr().out
    assert re.search(rf"^{paused}\s+paused\s+0\s+\?\s+0/3\s+3\s+0\s+0\s", table, re.M), table


def test_a_job_cancelled_while_its_task_finishes_does_not_wedge_the_node(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The job is cancelled (its queue deleted) after its task rendered, before the node deletes
    the task's message: the node used to retry that DeleteMessage for ever, the next job's task
    then waited for the previous upload and the node never went idle nor ended."""
    rendered, go = tmp_path / "rendered", tmp_path / "go"
    blender = tmp_path / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        "output=$(python3 -c 'import json,sys; print(json.loads(sys.argv[-1])[\"output\"])' "
        '"${@: -1}")\n'
        'echo frame > "${output%%#*}000001.txt"\n'
        'echo "BRENDA-OUTPUT: ${output%%#*}000001.txt"\n'
        f"if [[ -f hold ]]; then touch {rendered}; while [[ ! -f {go} ]]; do sleep 0.05; done; fi\n"
    )
    blender.chmod(0o755)

    def submit(name: str, priority: str) -> str:
        project = tmp_path / name
        project.mkdir()
        (project / "scene.blend").write_bytes(b"")
        if name == "held":
            (project / "hold").write_text("the task waits for the test to cancel its job\n")
        argv = ["--project", f"file://{project}", "--frames", "1", "--priority", priority]
        assert brenda_work([*argv, "submit"]) == 0
        match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
        assert match
        return match.group(1)

    cancelled, next_job = submit("held", "5"), submit("next", "0")
    # The job records are read once at the start: the running task never sees its job cancelled.
    node = job_farm.start_node(
        "a", BLENDER=str(blender), WARM_BLENDER="0", JOB_REFRESH="600", POLL_PAUSE="1"
    )
    wait_for(rendered.exists, 60, "the first job's task to render")
    assert brenda_work(["cancel", cancelled]) == 0
    go.touch()
    wait_for(lambda: node.poll() is not None, 60, "the node to finish the next job and end")
    assert node.returncode == 0, job_farm.console("a")[-3000:]
    console = job_farm.console("a")
    assert f"task {next_job} frames 1 done" in console
    frames = f"frames/{next_job}/frame_"
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix=frames)
    assert [item["Key"] for item in listing.get("Contents", [])] == [f"{frames}000001.txt"]
    assert "retry" not in console, console[-3000:]


def test_missing_twice_queues_nothing_and_after_the_queue_drains_only_the_frames_lost(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``missing`` run twice on a fresh 6-frame job took its queue to 12 tasks, then 18, and
    the node rendered all 18."""
    frame = tmp_path / "frame.png"
    frame.write_bytes(png(0))
    blender = tmp_path / "blender"
    blender.write_text(
        "#!/bin/bash\n[[ $1 == --version ]] && echo 'Blender 4.5.0' && exit\n"
        "read -r output frame < <(python3 -c 'import json,sys; s = json.loads(sys.argv[-1]); "
        'print(s["output"].split("#")[0], s["frames"][0])\' "${@: -1}")\n'
        'printf -v file "%s%06d.png" "$output" "$frame"\n'
        f'cp {frame} "$file"\necho "BRENDA-OUTPUT: $file"\n'
    )
    blender.chmod(0o755)
    job_farm.settings.update(BLENDER=str(blender), WARM_BLENDER="0", POLL_PAUSE="1")
    project = tmp_path / "shot"
    project.mkdir()
    (project / "scene.blend").write_bytes(b"")
    assert brenda_work(["--project", f"file://{project}", "--frames", "1-6", "submit"]) == 0
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    job = match.group(1)
    for _ in range(2):
        assert brenda_work(["missing", job]) == 1
        assert (
            "still holds tasks (6 waiting, 0 running, 0 dead-lettered)" in capsys.readouterr().err
        )

    def rendered() -> list[int]:
        node = job_farm.start_node("a")
        assert node.wait(timeout=120) == 0, job_farm.console("a")
        return sorted(
            int(frame)
            for frame in re.findall(rf"task \d+: {job} frames (\d+)\b", job_farm.console("a"))
        )

    assert rendered() == [1, 2, 3, 4, 5, 6]
    s3 = boto_client("s3")
    for frame in (2, 5):
        s3.delete_object(Bucket="studio", Key=f"frames/{job}/frame_{frame:06d}.png")
    assert brenda_work(["missing", job]) == 0
    assert capsys.readouterr().out == f"Job {job}: 2 missing frames queued (2, 5).\n"
    assert brenda_work(["missing", job]) == 1
    assert "still holds tasks (2 waiting, 0 running, 0 dead-lettered)" in capsys.readouterr().err
    assert rendered() == [2, 5]
    assert brenda_work(["missing", job]) == 0
    assert capsys.readouterr().out == f"Job {job}: 0 missing frames queued.\n"
