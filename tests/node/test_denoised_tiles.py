# SPDX-License-Identifier: GPL-3.0-or-later
"""Tiles of a scene Cycles denoises are rendered noisy with the denoiser's passes, assembled, and
the whole frame denoised once: the result is the whole-frame render's, with no seams."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.tasks import FrameChunk, RenderSettings, RenderTask, tile_grid
from tests.node.conftest import Farm
from tests.node.test_packed_projects import pixels

pytestmark = pytest.mark.slow

# Blender's default scene as a new user renders it: Cycles, denoising on (its default).
SCENE = """
import bpy, sys
bpy.ops.wm.read_homefile(use_empty=False)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 16
scene.cycles.use_denoising = True
scene.render.resolution_x, scene.render.resolution_y = 96, 54
scene.render.resolution_percentage = 100
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


def test_tiles_with_denoising_match_the_whole_frame_render(farm: Farm, tmp_path: Path) -> None:
    project = tmp_path / "denoise-project"
    project.mkdir()
    blend = project / "scene.blend"
    subprocess.run(
        [sys.executable, "-c", SCENE, str(blend)], check=True, capture_output=True, timeout=120
    )
    farm.settings["BLENDER_PROJECT"] = f"file://{project}"
    settings = RenderSettings(blend="scene.blend")
    frame = FrameChunk(1, 1, 1)
    farm.push([RenderTask(frame, None, settings)])
    assert farm.start_node("whole").wait(timeout=180) == 0, farm.console("whole")
    whole = pixels(farm.output / "frame_000001.png")

    tiled = tmp_path / "tiled"
    farm.settings["RENDER_OUTPUT"] = f"file://{tiled}"
    farm.push([RenderTask(frame, tile, settings) for tile in tile_grid(2, 2) or []])
    assert farm.start_node("tiles").wait(timeout=180) == 0, farm.console("tiles")
    assert (tiled / "frame_000001.png").is_file(), sorted(path.name for path in tiled.iterdir())
    assembled = pixels(tiled / "frame_000001.png")
    assert assembled.shape == whole.shape
    # Tolerance: one level in 255 (OpenImageDenoise on the same noisy pixels and passes).
    assert np.abs(assembled - whole).max() <= 1 / 255
