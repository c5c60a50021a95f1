# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda demo``: the whole local farm, from a sample scene to frames and a contact sheet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brenda_node.demo import main
from tests.conftest import Studio


@pytest.mark.slow
def test_demo_renders_tiled_frames_and_a_contact_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from OpenImageIO import ImageBuf

    output = tmp_path / "out"
    argv = ["demo", "--frames", "1-3", "--tiles", "2x1", "--nodes", "2", "--size", "64x36"]
    assert main([*argv, "--samples", "2", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "6 tasks for 3 frames pushed to sqs://brenda-demo; starting 2 nodes." in out
    assert f"Frames:           3 in {output / 'frames'}" in out
    assert "Farm efficiency:  " in out
    frames = sorted(path.name for path in (output / "frames").iterdir())
    assert frames == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    sheet = ImageBuf(str(output / "contact-sheet.png")).spec()
    assert (sheet.width, sheet.height) == (3 * 64, 36)
    assert sorted(path.name for path in (output / "logs").iterdir()) == [
        "node-1.log",
        "node-2.log",
    ]
    assert "AWS_ENDPOINT_URL" not in os.environ


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tiles", "2by2"], "Tiles '2by2' must be written as two numbers like 2x2"),
        (["--frames", "5-1"], "End frame 1 is before start frame 5."),
        (["--nodes", "0"], "--nodes must be 1 or more, not 0."),
        (["--chunk", "0"], "--chunk must be 1 or more, not 0."),
        (["--tiles", "0x2"], "--tiles 0x2: both numbers must be above 0 (0x0: no tiles)."),
    ],
    ids=["tiles", "frames", "nodes", "chunk", "half tiles"],
)
def test_bad_demo_input_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["demo", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("brenda: ") and message in err and err.count("\n") == 1


def test_missing_blend_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.blend"
    assert main(["demo", "--blend", str(missing), "--output", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"brenda: --blend {missing} is not a .blend file.\n"


@pytest.mark.slow
def test_demo_packs_a_blend_with_everything_it_uses(
    studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from OpenImageIO import FLOAT, ImageBuf

    output = tmp_path / "out"
    argv = ["demo", "--blend", str(studio.blend), "--frames", "2", "--nodes", "1"]
    assert main([*argv, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "Packed 21 files (" in out
    rendered = ImageBuf(str(output / "frames" / "frame_000002.png")).get_pixels(FLOAT)
    original = ImageBuf(str(studio.reference)).get_pixels(FLOAT)
    assert np.abs(rendered - original).max() <= 1 / 255
