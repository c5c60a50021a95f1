# SPDX-License-Identifier: GPL-3.0-or-later
"""Real Blender (the bpy wheel) on a local farm: frames, multiframe chunks and tiles assembled
into frames equal to a whole render, through s3:// and file:// projects and outputs."""

from __future__ import annotations

import os
import signal
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import FLOAT, ImageBuf

from shared.outputs.store import FolderStore
from shared.tasks.task import (
    FrameChunk,
    FrameRange,
    RenderSettings,
    chunk_frames,
    load_template,
    render_tasks,
    script_tasks,
    tile_grid,
)
from tests.node.conftest import Farm, make_sample_blend, wait_for

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 64, 36
TOLERANCE = 2 / 255


@pytest.fixture(scope="module")
def sample_blend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    return make_sample_blend(
        folder / "scene.blend", width=WIDTH, height=HEIGHT, samples=4, frames=4
    )


def pixels(path: Path) -> Any:

    image = ImageBuf(str(path))
    assert (image.spec().width, image.spec().height) == (WIDTH, HEIGHT)
    return image.get_pixels(FLOAT)


def assert_same_image(first: Path, second: Path) -> None:
    difference = np.abs(pixels(first) - pixels(second))
    assert difference.max() <= TOLERANCE
    assert pixels(first)[..., :3].std() > 0.05  # a real picture, not a blank one


def test_render_tasks_through_s3_with_tiles_assembled(
    farm: Farm, sample_blend: Path, boto_client: Any, tmp_path: Path
) -> None:
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="projects")
    s3.create_bucket(Bucket="frames")
    archive = tmp_path / "shot.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(sample_blend, arcname="shot/scene.blend")
    s3.upload_file(str(archive), "projects", "shot.tar.gz")
    farm.settings.update(
        BLENDER_PROJECT="s3://projects/shot.tar.gz", RENDER_OUTPUT="s3://frames/job"
    )
    frames = render_tasks(RenderSettings(), chunk_frames([FrameRange(1, 2)], 2), None)
    tiles = render_tasks(RenderSettings(), [FrameChunk(3, 3, 1)], tile_grid(2, 2))
    whole = render_tasks(RenderSettings(output_name="whole_######"), [FrameChunk(3, 3, 1)], None)
    farm.push([*frames, *tiles, *whole])
    nodes = [farm.start_node("a"), farm.start_node("b")]
    assert [node.wait(timeout=240) for node in nodes] == [0, 0], farm.console("a")
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="frames")["Contents"])
    stored = [key.removeprefix("job/") for key in keys if not key.startswith("job/.brenda")]
    assert stored == [
        "frame_000001.png",
        "frame_000002.png",
        "frame_000003.png",
        "frame_000003_X-0.0-0.5-Y-0.0-0.5.png",
        "frame_000003_X-0.0-0.5-Y-0.5-1.0.png",
        "frame_000003_X-0.5-1.0-Y-0.0-0.5.png",
        "frame_000003_X-0.5-1.0-Y-0.5-1.0.png",
        "whole_000003.png",
    ]
    for name in ("frame_000003.png", "whole_000003.png", "frame_000001.png"):
        s3.download_file("frames", f"job/{name}", str(tmp_path / name))
    assert_same_image(tmp_path / "frame_000003.png", tmp_path / "whole_000003.png")
    assert (
        np.abs(pixels(tmp_path / "frame_000001.png") - pixels(tmp_path / "whole_000003.png")).max()
        > 0.1
    )


def test_original_templates_through_file_urls(
    farm: Farm, sample_blend: Path, tmp_path: Path
) -> None:
    project = Path(farm.settings["BLENDER_PROJECT"].removeprefix("file://"))
    (project / "scene.blend").write_bytes(sample_blend.read_bytes())
    whole = tmp_path / "whole-template"
    whole.write_text('blender -b *.blend -F PNG -o "$OUTDIR/whole_######" -s $START -e $END -a\n')
    tasks = []
    for name, frames, grid in (
        ("frame", (1, 2), None),
        ("subframe", (3, 3), (3, 1)),
        (str(whole), (3, 3), None),
    ):
        template, origin = load_template(name)
        chunks = chunk_frames([FrameRange(*frames)], 1)
        tasks += script_tasks(template, chunks, tile_grid(*grid) if grid else None, origin=origin)
    farm.push(tasks)
    nodes = [farm.start_node("a"), farm.start_node("b")]
    assert [node.wait(timeout=240) for node in nodes] == [0, 0], farm.console("a")
    output = Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))
    assert FolderStore(output).names() == [
        "frame_000001.png",
        "frame_000002.png",
        "frame_000003.png",
        "frame_000003_X-0.0-0.333333333333-Y-0.0-1.0.png",
        "frame_000003_X-0.333333333333-0.666666666667-Y-0.0-1.0.png",
        "frame_000003_X-0.666666666667-1.0-Y-0.0-1.0.png",
        "whole_000003.png",
    ]
    assert_same_image(output / "frame_000003.png", output / "whole_000003.png")


def test_a_node_killed_mid_render_loses_no_frame(
    farm: Farm, sample_blend: Path, tmp_path: Path
) -> None:
    project = Path(farm.settings["BLENDER_PROJECT"].removeprefix("file://"))
    (project / "scene.blend").write_bytes(sample_blend.read_bytes())
    farm.settings.update(VISIBILITY_TIMEOUT="4", VISIBILITY_TIMEOUT_REASSERT="1")
    # Three seconds a frame on any machine: with adaptive sampling on, 3000 samples of this
    # scene converge in under a second, and a fast machine finished the job before the kill.
    slow = tmp_path / "slow-template"
    slow.write_text(
        'blender -b *.blend --python-expr "import bpy; cycles = bpy.context.scene.cycles; '
        'cycles.use_adaptive_sampling = False; cycles.samples = 1000000; cycles.time_limit = 3" '
        '-F PNG -o "$OUTDIR/frame_######" -s $START -e $END -a\n'
    )
    template, origin = load_template(str(slow))
    farm.push(script_tasks(template, chunk_frames([FrameRange(1, 2)], 1), None, origin=origin))
    doomed = farm.start_node("doomed")
    wait_for(lambda: farm.status("doomed").get("sample"), 60, "Blender to report samples")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    interrupted = farm.status("doomed")["task"]
    survivor = farm.start_node("survivor")
    assert survivor.wait(timeout=240) == 0, farm.console("survivor")
    output = Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))
    assert FolderStore(output).names() == ["frame_000001.png", "frame_000002.png"]
    assert f"task {interrupted} done" in farm.console("survivor")
    counts = [farm.work_dir(name) / "task_count" for name in ("doomed", "survivor")]
    assert sum(int(path.read_text()) for path in counts if path.exists()) == 2
    pixels(output / "frame_000001.png")
    pixels(output / "frame_000002.png")
