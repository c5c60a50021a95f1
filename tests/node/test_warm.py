# SPDX-License-Identifier: GPL-3.0-or-later
"""Warm Blender: one Blender keeps the .blend loaded and renders task after task, with pixels
equal to a fresh Blender's; a crashed warm process is replaced, and a stopped node leaves none."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.cli.work import main as brenda_work
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask
from tests.node.conftest import (
    Farm,
    MetadataServer,
    make_sample_blend,
    processes_running,
    wait_for,
)
from tests.node.test_packed_projects import pixels

pytestmark = pytest.mark.slow


def frame_tasks(frames: range) -> list[RenderTask]:
    settings = RenderSettings(blend="scene.blend")
    return [RenderTask(FrameChunk(frame, frame, 1), None, settings) for frame in frames]


def warm_starts(console: str) -> int:
    return len(re.findall(r"warm Blender \d+ started", console))


@pytest.fixture
def project(farm: Farm, tmp_path: Path) -> Path:
    folder = tmp_path / "warm-project"
    folder.mkdir()
    make_sample_blend(folder / "scene.blend", width=32, height=18, samples=4, frames=4)
    farm.settings["BLENDER_PROJECT"] = f"file://{folder}"
    return folder


def test_one_warm_blender_renders_every_task_and_matches_a_fresh_blender(
    farm: Farm, project: Path, tmp_path: Path
) -> None:
    farm.push(frame_tasks(range(1, 5)))
    assert farm.start_node("warm").wait(timeout=180) == 0, farm.console("warm")
    assert farm.stored() == [f"frame_{n:06d}.png" for n in range(1, 5)]
    assert warm_starts(farm.console("warm")) == 1
    warm = {n: pixels(farm.output / f"frame_{n:06d}.png") for n in (1, 4)}

    cold = tmp_path / "cold"
    farm.settings["RENDER_OUTPUT"] = f"file://{cold}"
    farm.push(frame_tasks(range(1, 5, 3)))
    assert farm.start_node("cold", WARM_BLENDER="0").wait(timeout=180) == 0
    assert warm_starts(farm.console("cold")) == 0
    for frame, image in warm.items():
        assert np.array_equal(image, pixels(cold / f"frame_{frame:06d}.png")), frame


def test_a_warm_blender_is_replaced_after_warm_tasks_and_when_it_crashes(
    farm: Farm, project: Path
) -> None:
    blend = str(
        make_sample_blend(project / "scene.blend", width=160, height=90, samples=800, frames=3)
    )
    farm.settings.update(MAX_RECEIVE_COUNT="3")
    farm.push(frame_tasks(range(1, 4)))
    node = farm.start_node("a", WARM_TASKS="2")
    wait_for(lambda: farm.status("a").get("sample"), 120, "the first render")
    [warm] = processes_running(blend)
    os.kill(int(warm), signal.SIGKILL)  # a crash in the middle of a task
    assert node.wait(timeout=180) == 0, farm.console("a")
    assert farm.stored() == [f"frame_{n:06d}.png" for n in range(1, 4)]
    failures = list((farm.output / ".brenda" / "failures").iterdir())
    assert len(failures) == 1 and "status -9" in failures[0].read_text()
    # The crash, then three tasks on warm processes of at most two tasks each.
    assert warm_starts(farm.console("a")) == 3
    assert processes_running(blend) == []


@pytest.mark.parametrize("stop", ["SIGTERM", "spot notice"])
def test_a_node_told_to_stop_gives_the_task_back_and_leaves_no_warm_blender(
    farm: Farm, project: Path, metadata: MetadataServer, stop: str
) -> None:
    make_sample_blend(project / "scene.blend", width=320, height=180, samples=4000, frames=1)
    farm.push(frame_tasks(range(1, 2)))
    node = farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url, METADATA_POLL="1")
    wait_for(lambda: farm.status("a").get("sample"), 120, "the render")
    if stop == "SIGTERM":
        node.send_signal(signal.SIGTERM)
    else:
        metadata.values["/latest/meta-data/spot/instance-action"] = '{"action": "terminate"}'
    assert node.wait(timeout=30) == 0
    counts = farm.counts()
    assert (counts.pending, counts.in_flight) == (1, 0)
    assert processes_running(str(project / "scene.blend")) == []
    assert "goes back to the queue" in farm.console("a")


def test_a_node_killed_mid_render_loses_nothing_and_its_warm_blender_ends(
    farm: Farm, project: Path
) -> None:
    make_sample_blend(project / "scene.blend", width=160, height=90, samples=800, frames=2)
    blend = str(project / "scene.blend")
    farm.settings.update(VISIBILITY_TIMEOUT="3", VISIBILITY_TIMEOUT_REASSERT="1")
    farm.push(frame_tasks(range(1, 3)))
    doomed = farm.start_node("doomed")
    wait_for(lambda: farm.status("doomed").get("sample"), 120, "the render")
    doomed.kill()
    doomed.wait()
    # Its warm Blender sees the end of its stdin once its frame is done, and exits.
    wait_for(lambda: processes_running(blend) == [], 120, "the orphaned warm Blender to end")
    assert farm.start_node("b").wait(timeout=180) == 0, farm.console("b")
    assert farm.stored() == ["frame_000001.png", "frame_000002.png"]
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)


def test_a_warm_blender_never_renders_an_older_version_of_the_project(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A project re-packed at the same URL is fetched again into the same folder, and a file://
    folder's .blend is saved again: the warm Blender, keyed by folder and .blend alone, kept
    rendering the file it had loaded (the old frame size here)."""
    blends = tmp_path / "blends"
    blends.mkdir()
    old = make_sample_blend(blends / "old.blend", width=16, height=8, samples=1, frames=1)
    new = make_sample_blend(blends / "new.blend", width=24, height=12, samples=1, frames=1)
    archive, folder = tmp_path / "shot.tar.gz", tmp_path / "shot"
    folder.mkdir()

    def pack(blend: Path) -> None:
        with tarfile.open(archive, "w:gz") as bundle:
            bundle.add(blend, "scene.blend")

    def rendered_size(project: Path) -> tuple[int, int]:
        """The size of the frame a job of ``project`` rendered."""
        argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", "1"]
        assert brenda_work([*argv, "submit"]) == 0
        match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
        assert match
        key = f"frames/{match.group(1)}/frame_000001.png"
        s3 = boto_client("s3")
        wait_for(
            lambda: s3.list_objects_v2(Bucket="studio", Prefix=key).get("KeyCount"),
            120,
            f"{key} to be stored",
        )
        frame = tmp_path / "frame.png"
        s3.download_file("studio", key, str(frame))
        height, width = pixels(frame).shape[:2]
        return width, height

    pack(old)
    shutil.copyfile(old, folder / "scene.blend")
    node = job_farm.start_node("a", DONE="poll", POLL_PAUSE="1")
    try:
        assert rendered_size(archive) == (16, 8)
        pack(new)  # the same URL, fetched again into the same folder
        assert rendered_size(archive) == (24, 12), job_farm.console("a")[-3000:]
        # The old warm Blender's folder was replaced under it: it failed a try of the task.
        assert " ERROR: " not in job_farm.console("a"), job_farm.console("a")[-3000:]
        assert rendered_size(folder) == (16, 8)
        shutil.copyfile(new, folder / "scene.blend")  # saved again where the node renders it
        assert rendered_size(folder) == (24, 12), job_farm.console("a")[-3000:]
        assert warm_starts(job_farm.console("a")) == 4
    finally:
        node.kill()
        node.wait()
