# SPDX-License-Identifier: GPL-3.0-or-later
"""Projects packed by ``brenda pack`` (or uploaded by ``brenda upload``) rendered by a real
``brenda-node`` with the sources moved away: the pixels equal a render of the original, and a
texture missing on the node fails its task with the file named until it is dead-lettered
(unless the job renders anyway)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import FLOAT, ImageBuf

from shared.cli.brenda import main as brenda
from shared.cli.work import main as brenda_work
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask
from tests.conftest import Faults, Studio
from tests.node.conftest import Farm

pytestmark = pytest.mark.slow


def pixels(path: Path) -> Any:

    return ImageBuf(str(path)).get_pixels(FLOAT)


def pack(studio: Studio, archive: Path, *options: str) -> None:
    assert brenda(["pack", str(studio.blend), "-o", str(archive), *options]) == 0


def frame_task(frame: int, *, render_anyway: bool = False) -> RenderTask:
    settings = RenderSettings(blend="shots/shot1.blend", render_anyway=render_anyway)
    return RenderTask(FrameChunk(frame, frame, 1), None, settings)


def test_a_packed_studio_project_renders_like_the_original(
    farm: Farm, studio: Studio, tmp_path: Path
) -> None:
    archive = tmp_path / "shot1.tar.gz"
    pack(studio, archive)
    output = tmp_path / "frames"
    farm.settings.update(BLENDER_PROJECT=f"file://{archive}", RENDER_OUTPUT=f"file://{output}")
    farm.push([frame_task(2)])
    with studio.moved_away():
        node = farm.start_node("a")
        assert node.wait(timeout=240) == 0, farm.console("a")
    rendered, original = pixels(output / "frame_000002.png"), pixels(studio.reference)
    assert rendered.shape == original.shape == (48, 64, 4)
    assert np.abs(rendered - original).max() <= 1 / 255
    assert original[..., :3].std() > 0.1  # a real picture, not a blank one


def test_a_texture_missing_on_the_node_fails_its_task_until_it_is_dead_lettered(
    farm: Farm,
    broken_studio: Studio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "shot1.tar.gz"
    pack(broken_studio, archive, "--render-anyway")
    output = tmp_path / "frames"
    farm.settings.update(
        BLENDER_PROJECT=f"file://{archive}",
        RENDER_OUTPUT=f"file://{output}",
        MAX_RECEIVE_COUNT="2",
    )
    farm.push([frame_task(2), frame_task(3, render_anyway=True)])
    node = farm.start_node("a")
    assert node.wait(timeout=240) == 0, farm.console("a")
    # Packing cannot rewrite a path to a file it does not have: the absolute one stays.
    missing = (
        "Error: 2 files the render reads are missing on the node: "
        f"{broken_studio.sources[0]}/textures/inside.png (image 'inside.png'); "
        f"{farm.work_dir('a')}/project/textures/inside.png (image 'inside.png.001') "
        "(pack the project with Brenda, or let the job render anyway)"
    )
    assert (
        farm.console("a").count(f"Task frames 2 failed: the task exited with status 1 ({missing})")
        == 2
    )
    assert sorted(path.name for path in output.iterdir() if path.is_file()) == ["frame_000003.png"]
    capsys.readouterr()
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_work(["status"]) == 0
    out = capsys.readouterr().out
    assert "  dead-lettered         1\n" in out
    assert f"  frames 2: Task frames 2 failed: the task exited with status 1 ({missing})" in out


def test_a_studio_project_uploaded_to_the_content_store_renders_like_the_original(
    farm: Farm,
    studio: Studio,
    tmp_path: Path,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto_client("s3").create_bucket(Bucket="studio-projects")
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio-projects/projects/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert brenda(["upload", str(studio.blend)]) == 0
    version = re.search(r"^Project version: (\S+)$", capsys.readouterr().out, re.M)
    assert version, "no version printed"
    output = tmp_path / "frames"
    farm.settings.update(BLENDER_PROJECT=version.group(1), RENDER_OUTPUT=f"file://{output}")
    farm.push([frame_task(2)])
    with studio.moved_away():
        assert farm.start_node("a").wait(timeout=240) == 0, farm.console("a")
    rendered, original = pixels(output / "frame_000002.png"), pixels(studio.reference)
    assert rendered.shape == original.shape == (48, 64, 4)
    assert np.abs(rendered - original).max() <= 1 / 255


def test_a_library_linked_from_a_library_in_another_folder_is_found_on_the_node(
    farm: Farm, faults: Faults, tmp_path: Path
) -> None:
    """Blender gives a nested library's path relative to the file it opened, not to the library
    that links it (libs/props/ links ../../materials/metal.blend; Blender says
    //../materials/metal.blend)."""
    archive = tmp_path / "shot.tar.gz"
    assert brenda(["pack", str(faults.nested), "-o", str(archive)]) == 0
    output = tmp_path / "frames"
    farm.settings.update(BLENDER_PROJECT=f"file://{archive}", RENDER_OUTPUT=f"file://{output}")
    settings = RenderSettings(blend="shots/shot.blend")
    farm.push([RenderTask(FrameChunk(1, 1, 1), None, settings)])
    with faults.nested_moved_away():
        assert farm.start_node("a").wait(timeout=240) == 0, farm.console("a")
    assert "missing on the node" not in farm.console("a")
    rendered, original = pixels(output / "frame_000001.png"), pixels(faults.reference)
    assert rendered.shape == original.shape == (16, 16, 4)
    assert np.abs(rendered - original).max() <= 1 / 255
    assert original[..., 2].max() > 0.8  # the nested library's blue texture is in the picture
