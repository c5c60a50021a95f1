# SPDX-License-Identifier: GPL-3.0-or-later
"""A node serving many jobs keeps their projects by content: jobs of one project share one
fetch, a few projects stay on disk, fewer when they are big, the least recently used go first."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from brenda_node import project_cache
from brenda_node.node import Node, Stopper
from brenda_node.sources import JobsSource
from shared.core.config import load_config
from shared.jobs.registry import Job, JobRegistry, make_job
from shared.tasks.task import RenderSettings


def archive(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        info = tarfile.TarInfo("scene.blend")
        info.size = size
        bundle.addfile(info, io.BytesIO(os.urandom(size)))
    return path


@pytest.fixture
def farm_jobs(aws: str, boto_client: Any, tmp_path: Path) -> tuple[JobsSource, list[Job]]:
    boto_client("s3").create_bucket(Bucket="studio")
    environ = {
        **os.environ,
        "BRENDA_FARM": "studio",
        "BRENDA_FARM_OUTPUTS": "s3://studio/frames/",
        "BRENDA_RUNNING_ON_EC2": "0",
    }
    config = load_config(environ=environ)
    projects = [archive(tmp_path / f"shot{n}.tar.gz", 1000 * (n + 1)) for n in range(5)]
    settings = RenderSettings(blend="scene.blend")
    jobs = [
        make_job(config, project=f"file://{project}", frames="1", settings=settings)
        for project in [projects[0], *projects]  # the first project has two jobs
    ]
    (tmp_path / "node").mkdir()
    return JobsSource(JobRegistry(config), Node(config, tmp_path / "node", Stopper())), jobs


def unpacked(farm: JobsSource) -> list[Path]:
    return sorted(path for path in farm.projects.folder.iterdir() if path.is_dir())


def test_jobs_of_one_project_share_one_fetch_and_the_last_three_projects_stay(
    farm_jobs: tuple[JobsSource, list[Job]],
) -> None:
    farm, jobs = farm_jobs
    first = farm.serving_of(jobs[0]).runner.project
    marker = (first / ".brenda-version").stat()
    second = farm.serving_of(jobs[1]).runner.project
    assert second == first
    assert (first / ".brenda-version").stat().st_ino == marker.st_ino  # not unpacked again
    assert len(unpacked(farm)) == 1
    shot2 = farm.serving_of(jobs[2])
    farm.serving_of(jobs[3])
    farm.serving_of(jobs[0])  # used again: shot2's is now the least recently used
    farm.serving_of(jobs[4])
    kept = unpacked(farm)
    assert len(kept) == 3
    assert first.parent in kept and shot2.runner.project.parent not in kept
    again = farm.serving_of(jobs[2])  # its serving went with its project: fetched again
    assert again is not shot2 and (again.runner.project / "scene.blend").is_file()
    assert len(unpacked(farm)) == 3


def test_big_projects_leave_room_on_the_work_disk(
    farm_jobs: tuple[JobsSource, list[Job]], monkeypatch: pytest.MonkeyPatch
) -> None:
    farm, jobs = farm_jobs
    farm.serving_of(jobs[0])
    farm.serving_of(jobs[2])
    assert len(unpacked(farm)) == 2
    monkeypatch.setattr(project_cache, "PROJECTS_DISK_SHARE", 1e-15)  # no room for anything kept
    newest = farm.serving_of(jobs[3]).runner.project
    assert unpacked(farm) == [newest.parent]  # the one in use is never removed


def test_a_task_is_taken_for_the_nodes_lease_whatever_its_queues_own_timeout(
    aws: str, boto_client: Any, tmp_path: Path
) -> None:
    # A queue made with a visibility timeout below the lease's renewal period showed a taken
    # task to the other nodes before its first renewal: two nodes rendered one task.
    boto_client("s3").create_bucket(Bucket="studio")
    environ = {
        **os.environ,
        "BRENDA_FARM": "studio",
        "BRENDA_FARM_OUTPUTS": "s3://studio/frames/",
        "BRENDA_RUNNING_ON_EC2": "0",
    }
    config = load_config(environ=environ)
    settings = RenderSettings(blend="scene.blend")
    project = archive(tmp_path / "shot.tar.gz", 100)
    job = JobRegistry(config).submit(
        make_job(config, project=f"file://{project}", frames="1", settings=settings)
    )
    sqs = boto_client("sqs")
    url = sqs.get_queue_url(QueueName=job.queue)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    (tmp_path / "node").mkdir()
    source = JobsSource(JobRegistry(config), Node(config, tmp_path / "node", Stopper()))
    assert source.take() is not None
    time.sleep(2.5)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
