# SPDX-License-Identifier: GPL-3.0-or-later
"""The artist's render device and Blender travel with the job: a node that cannot match them
fails the task saying how it differs (or warns, when the job says so) instead of rendering
something else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.tasks.task import Environment, FrameChunk, RenderSettings, RenderTask
from tests.node.conftest import Farm, make_sample_blend

pytestmark = pytest.mark.slow


def task(frame: int, **settings: Any) -> RenderTask:
    return RenderTask(
        FrameChunk(frame, frame, 1), None, RenderSettings(blend="scene.blend", **settings)
    )


def test_a_node_that_differs_from_the_artists_blender_fails_or_warns_as_the_job_says(
    farm: Farm, tmp_path: Path
) -> None:
    project = tmp_path / "env-project"
    project.mkdir()
    make_sample_blend(project / "scene.blend", width=16, height=9, samples=1, frames=5)
    farm.settings.update(BLENDER_PROJECT=f"file://{project}", MAX_RECEIVE_COUNT="1")
    old_blender = Environment(blender="3.6", view="AgX")
    farm.push(
        [
            task(1, device="CUDA"),
            task(2, environment=old_blender),
            task(3, environment=Environment(blender="3.6", on_mismatch="warn")),
            task(
                4,
                environment=Environment(
                    blender="4.5", addons=(("brenda_no_such_addon", "1.2.0"),), view="Standard"
                ),
            ),
            task(
                5,
                environment=Environment(blender="4.5", view="AgX", display="sRGB", ocio="builtin"),
            ),
        ]
    )
    assert farm.start_node("a").wait(timeout=240) == 0, farm.console("a")
    assert farm.stored() == ["frame_000003.png", "frame_000005.png"]
    notes = " ".join(path.read_text() for path in (farm.output / ".brenda" / "failures").iterdir())
    assert "the job renders on CUDA, but this node has no CUDA device (Blender sees " in notes
    assert "launch GPU nodes or render the job on CPU" in notes
    differs = "this node's Blender differs from the artist's"
    assert f"{differs}: Blender 4.5 here, 3.6 where the job was pushed" in notes
    assert "add-on brenda_no_such_addon 1.2.0 is not on this node" in notes
    assert "view transform AgX here, Standard at push" in notes
    assert (
        "Warning: this node's Blender differs from the artist's: Blender 4.5 here, 3.6"
        in farm.console("a")
    )
