# SPDX-License-Identifier: GPL-3.0-or-later
"""Several jobs on one farm: two real nodes serve every job, by priority, pausing and cancelling
one job without touching the others."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.core.progress import Progress
from shared.jobs.registry import Job, serving_order
from shared.services.monitor import FarmMonitor
from tests.node.conftest import Farm, make_sample_blend, wait_for

pytestmark = pytest.mark.slow


def make_project(folder: Path, frames: int) -> Path:
    folder.mkdir(parents=True)
    make_sample_blend(folder / "scene.blend", width=16, height=9, samples=1, frames=frames)
    return folder


def work(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert brenda_work(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def submitted(out: str) -> str:
    match = re.search(r"Submitted job (\S+):", out)
    assert match, out
    return match.group(1)


def stored(boto_client: Any, job: str) -> list[str]:
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/frame_")
    return sorted(item["Key"].rsplit("/", 1)[1] for item in listing.get("Contents", []))


def started_tasks(farm: Farm) -> list[tuple[str, str]]:
    """(log time, job) of every task the nodes took, in time order."""
    found = []
    for name in ("a", "b"):
        for line in farm.console(name).splitlines():
            match = re.match(r"^(\S+ \S+) brenda_node\.node INFO: task \d+: (\S+) ", line)
            if match:
                found.append((match.group(1), match.group(2)))
    return sorted(found)


def test_two_nodes_serve_every_job_by_priority_with_pause_and_cancel(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    job_farm.settings.update(POLL_PAUSE="1")
    shot1 = make_project(tmp_path / "shot1", 3)
    shot2 = make_project(tmp_path / "shot2", 3)

    def submit(project: Path, frames: str, priority: int) -> str:
        argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", frames]
        return submitted(work(capsys, *argv, "--priority", str(priority), "submit"))

    urgent = submit(shot1, "1-3", 5)
    later = submit(shot2, "1-3", 0)
    paused = submit(shot2, "1-2", 0)
    cancelled = submit(shot1, "1-2", 9)
    work(capsys, "pause", paused)
    work(capsys, "cancel", cancelled)

    nodes = [job_farm.start_node(name, DONE="poll") for name in ("a", "b")]
    wait_for(
        lambda: len(stored(boto_client, urgent)) == 3 and len(stored(boto_client, later)) == 3,
        180,
        "the two active jobs to finish",
    )
    names = ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert stored(boto_client, urgent) == names and stored(boto_client, later) == names
    order = [job for _, job in started_tasks(job_farm)]
    assert order[:3] == [urgent] * 3, order  # every task of the priority job went out first
    assert stored(boto_client, paused) == [] and paused not in order
    assert stored(boto_client, cancelled) == [] and cancelled not in order

    def table_rows() -> dict[str, list[str]]:
        table = work(capsys, "jobs")
        return {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}

    # A job with every frame stored is done once its nodes let go of its last task.
    wait_for(
        lambda: table_rows()[urgent][0] == table_rows()[later][0] == "done",
        30,
        "the two jobs to be done",
    )
    assert re.search(r"^  state +done, priority 5$", work(capsys, "show", urgent), re.M)
    # The add-on's job list says the same (its panel reads the farm through FarmMonitor).
    views = FarmMonitor(job_farm.config(), tmp_path / "thumbnails").refresh(urgent, Progress())
    states = {view.id: view.state for view in views}
    assert (states[urgent], states[later], states[paused]) == ("done", "done", "paused")
    # The local farm's nodes cost nothing: $0.00 so far, per frame and projected.
    rows = table_rows()
    # Each job's Blender is the version that saved its .blend (the bpy wheel's, 4.5).
    assert rows[paused] == [
        "paused", "0", "4.5", "0/2", "2", "0", "0", "0", "$0.00", "-", "-", "-",
    ]  # fmt: skip
    assert rows[cancelled] == [
        "cancelled", "9", "4.5", "0/2", "-", "-", "-", "0", "$0.00", "-", "-", "-",
    ]  # fmt: skip
    assert rows[urgent] == [
        "done",
        "5",
        "4.5",
        "3/3",
        "0",
        "0",
        "0",
        "0",
        "$0.00",
        "$0.00",
        "$0.00",
        "-",
    ]

    work(capsys, "resume", paused)
    wait_for(lambda: len(stored(boto_client, paused)) == 2, 120, "the resumed job to finish")

    # A frame lost from the output is rendered again, and only that one.
    boto_client("s3").delete_object(Bucket="studio", Key=f"frames/{urgent}/frame_000002.png")
    assert work(capsys, "missing", urgent) == f"Job {urgent}: 1 missing frames queued (2).\n"
    wait_for(lambda: len(stored(boto_client, urgent)) == 3, 120, "the missing frame")
    assert [job for _, job in started_tasks(job_farm)].count(urgent) == 4
    for name in ("a", "b"):
        (job_farm.work_dir(name) / "DONE").write_text("exit\n")
    assert [node.wait(timeout=60) for node in nodes] == [0, 0], job_farm.console("a")


def job(job_id: str, priority: int, state: str = "active") -> Job:
    return Job(
        id=job_id, farm="f", project="", frames="1", output="", priority=priority, state=state
    )


def test_serving_order_is_priority_first_then_round_robin() -> None:
    jobs = [job("b", 0), job("a", 0), job("urgent", 5), job("held", 9, "paused"), job("c", 0)]
    assert [item.id for item in serving_order(jobs, 0)] == ["urgent", "a", "b", "c"]
    assert [item.id for item in serving_order(jobs, 1)] == ["urgent", "b", "c", "a"]
    assert [item.id for item in serving_order(jobs, 2)] == ["urgent", "c", "a", "b"]
