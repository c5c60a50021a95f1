# SPDX-License-Identifier: GPL-3.0-or-later
"""Every output image is read back before its task counts as done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import ImageBuf, ImageSpec

from brenda_node.validate import check_image, check_outputs
from shared.cli.work import main as brenda_work
from tests.node.conftest import Farm, script_tasks


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
        check_image(black, single_colour=True) == "frame_0003.png is one colour all over (value 0)"
    )


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
