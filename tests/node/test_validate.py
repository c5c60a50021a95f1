# SPDX-License-Identifier: GPL-3.0-or-later
"""Every output image is read back before its task counts as done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import ImageBuf, ImageSpec

from brenda_node.validate import check_image, check_outputs
from shared.cli.work import main as brenda_work
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask
from tests.node.conftest import Farm, script_tasks

# A camera looking at nothing but a red world: every pixel of the render is the same red, with
# alpha 1 (what a missing object or material looks like in a lit set).
RED_WORLD = """
import bpy, sys
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.cycles.use_denoising = False
scene.cycles.device = "CPU"
scene.view_settings.view_transform = "Standard"
scene.render.resolution_x, scene.render.resolution_y = 16, 8
scene.render.resolution_percentage = 100
scene.render.dither_intensity = 0.0  # no noise added to the 8-bit frame
scene.render.image_settings.color_mode = "RGBA"
scene.world = bpy.data.worlds.new("Red")
scene.world.color = (1.0, 0.0, 0.0)
camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
scene.collection.objects.link(camera)
scene.camera = camera
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


def write(path: Path, pixels: Any, pixel_type: str = "uint8") -> Path:

    height, width, channels = pixels.shape
    image = ImageBuf(ImageSpec(width, height, channels, pixel_type))
    image.set_pixels(image.roi, pixels.astype(np.float32))
    assert image.write(str(path)), image.geterror()
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "frame_0001.png", np.random.default_rng(1).random((4, 8, 3)))


def test_a_good_frame_passes(good: Path) -> None:
    assert check_image(good, size=(8, 4), single_colour=True) is None


def test_a_frame_of_another_size_fails(good: Path) -> None:
    assert check_image(good, size=(16, 9)) == "frame_0001.png is 8x4, not the job's 16x9"


def test_a_truncated_frame_fails(good: Path) -> None:
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    problem = check_image(good)
    assert problem is not None and problem.startswith("frame_0001.png cannot be read back (")


def test_nan_and_infinity_in_a_float_frame_fail(tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).random((4, 8, 4))
    pixels[1, 2, 0], pixels[3, 3, 1] = np.nan, np.inf
    frame = write(tmp_path / "frame_0002.exr", pixels, "half")
    assert check_image(frame) == "frame_0002.exr holds 2 NaN or infinite values"


def test_a_one_colour_frame_fails_only_when_the_job_asks(tmp_path: Path) -> None:
    black = write(tmp_path / "frame_0003.png", np.zeros((4, 8, 3)))
    assert check_image(black) is None
    assert (
        check_image(black, single_colour=True)
        == "frame_0003.png is one colour all over (R 0, G 0, B 0)"
    )


@pytest.mark.parametrize(
    ("name", "colour", "shown"),
    [
        ("red.png", (1.0, 0.0, 0.0), "R 1, G 0, B 0"),
        ("red.exr", (1.0, 0.0, 0.0, 1.0), "R 1, G 0, B 0, A 1"),
        ("black.png", (0.0, 0.0, 0.0, 1.0), "R 0, G 0, B 0, A 1"),
        ("blue.tif", (0.0, 0.0, 1.0, 0.0), "R 0, G 0, B 1, A 0"),
    ],
)
def test_a_frame_of_one_colour_that_is_not_grey_or_has_alpha_fails(
    tmp_path: Path, name: str, colour: tuple[float, ...], shown: str
) -> None:
    pixel_type = "half" if name.endswith(".exr") else "uint8"
    frame = write(tmp_path / name, np.tile(colour, (4, 8, 1)), pixel_type)
    assert check_image(frame, single_colour=True) == f"{name} is one colour all over ({shown})"


def test_a_frame_of_two_colours_passes(tmp_path: Path) -> None:
    pixels = np.tile((1.0, 0.0, 0.0, 1.0), (4, 8, 1))
    pixels[3, 7] = (0.0, 1.0, 0.0, 1.0)
    assert check_image(write(tmp_path / "two.png", pixels), single_colour=True) is None


def test_files_that_are_not_images_are_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "render.log"
    log.write_text("not an image")
    assert check_outputs([log]) is None


def test_a_task_that_writes_a_broken_frame_fails_with_the_reason_shown(
    farm: Farm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    farm.settings.update(MAX_RECEIVE_COUNT="1")
    farm.push(script_tasks('echo "not a picture" > "$OUTDIR/frame_$START.png"\n', range(7, 8)))
    node = farm.start_node("a")
    assert node.wait(timeout=60) == 0, farm.console("a")
    output = Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))
    assert not (output / "frame_7.png").exists()
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_work(["status"]) == 0
    out = capsys.readouterr().out
    assert "  frames 7: Task frames 7 failed: frame_7.png cannot be read back (" in out


@pytest.mark.slow
def test_a_red_frame_rendered_by_a_node_fails_when_the_job_asks(
    farm: Farm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Path(farm.settings["BLENDER_PROJECT"].removeprefix("file://"))
    subprocess.run(
        [sys.executable, "-c", RED_WORLD, str(project / "red.blend")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    farm.settings.update(MAX_RECEIVE_COUNT="1")
    checked = RenderSettings(blend="red.blend", single_colour=True)
    unchecked = RenderSettings(blend="red.blend", output_name="unchecked_######")
    farm.push(
        [
            RenderTask(FrameChunk(1, 1, 1), None, checked),
            RenderTask(FrameChunk(1, 1, 1), None, unchecked),
        ]
    )
    assert farm.start_node("a").wait(timeout=240) == 0, farm.console("a")
    assert farm.stored() == ["unchecked_000001.png"]
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_work(["status"]) == 0
    assert (
        "  frames 1: Task frames 1 failed: frame_000001.png is one colour all over "
        "(R 1, G 0, B 0, A 1)\n" in capsys.readouterr().out
    )
