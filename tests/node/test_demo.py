# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda demo``: the whole local farm, from a sample scene to frames and a contact sheet."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from OpenImageIO import FLOAT, ImageBuf

from shared.cli.brenda import build_parser, job_frames, main, plan, run_folder
from tests.conftest import Studio
from tests.node.conftest import wait_for


@pytest.mark.slow
def test_demo_renders_tiled_frames_and_a_contact_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    argv = ["demo", "--frames", "1-3", "--tiles", "2x1", "--nodes", "2", "--size", "64x36"]
    assert main([*argv, "--samples", "2", "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    [output] = (tmp_path / "out").iterdir()
    assert output.name.startswith("run-")
    assert f"This run's frames, contact sheet and logs: {output}\n" in out
    assert "6 tasks for 3 frames pushed to sqs://brenda-demo; starting 2 nodes." in out
    assert f"Frames:           3 in {output / 'frames'}" in out
    assert "Farm efficiency:  " in out
    cost = re.search(r"^Cost: +\$0\.00 \(a local farm is free; ([\d.]+) node-seconds", out, re.M)
    assert cost and float(cost.group(1)) > 0, out
    assert "Rendered on:      CPU\n" in out
    warm = re.search(
        r"^Warm Blender: +([\d.]+) s a task once .* ([\d.]+) s for the first", out, re.M
    )
    assert warm and 0 < float(warm.group(1)) < float(warm.group(2)), out
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
        (
            ["--frames", "1-1000000"],  # the demo's frames per task are --chunk, not -S
            "That makes 1000000 tasks; Brenda sends at most 100000 at once: render more frames "
            "per task, or fewer frames at a time.",
        ),
        (["--size", "0x0"], "--size 0x0: both numbers must be from 4 to 65536 (pixels)."),
        (["--size", "3x180"], "--size 3x180: both numbers must be from 4 to 65536 (pixels)."),
        (["--samples", "-1"], "--samples must be 1 or more, not -1."),
    ],
    ids=["tiles", "frames", "nodes", "chunk", "half tiles", "too many", "0x0", "3x180", "-1"],
)
def test_bad_demo_input_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brenda: ") and message in err and err.count("\n") == 1


def test_a_missing_or_broken_blend_is_one_line_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.blend"
    output = tmp_path / "out"
    assert main(["demo", "--blend", str(missing), "--output", str(output)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"brenda: --blend {missing} not found.\n")
    broken = tmp_path / "broken.blend"
    broken.write_text("not a blend file")
    started = time.monotonic()
    assert main(["demo", "--blend", str(broken), "--output", str(output)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and time.monotonic() - started < 5
    assert err == (
        f"brenda: {broken} cannot be read as a .blend file (File is not a blend file: {broken}).\n"
    )
    assert not output.exists()


def test_an_unwritable_output_is_said_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["demo", "--output", str(blocker / "out")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"brenda: --output {blocker / 'out'} cannot be written: Not a directory.\n"


def test_each_run_gets_a_folder_of_its_own(tmp_path: Path) -> None:
    first, second = run_folder(tmp_path), run_folder(tmp_path)
    assert first != second and first.parent == second.parent == tmp_path
    assert (first / "frames").is_dir() and (second / "frames").is_dir()


FIVE_FRAMES = """
import bpy, os, sys
bpy.context.scene.frame_start, bpy.context.scene.frame_end = 3, 7
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
sys.stdout.flush()
os._exit(0)
"""


def test_a_blend_renders_its_own_frame_range_unless_frames_are_given(tmp_path: Path) -> None:
    blend = tmp_path / "five.blend"
    subprocess.run([sys.executable, "-c", FIVE_FRAMES, str(blend)], check=True, timeout=120)
    parser = build_parser()
    own = parser.parse_args(["demo", "--blend", str(blend)])
    assert job_frames(own) == "3-7"
    assert len(plan(own, job_frames(own)).frames) == 5
    assert job_frames(parser.parse_args(["demo", "--blend", str(blend), "--frames", "1"])) == "1"
    assert job_frames(parser.parse_args(["demo"])) == "1-24"


@pytest.mark.slow
def test_sigterm_stops_the_demo_like_ctrl_c_and_keeps_the_frames_stored(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    output = tmp_path / "out"
    argv = ["demo", "--frames", "1-40", "--nodes", "1", "--size", "32x18", "--samples", "1"]
    demo = subprocess.Popen(
        [sys.executable, "-m", "shared.cli.brenda", *argv, "--output", str(output)],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: any(output.glob("run-*/frames/*.png")), 120, "the first frame to be stored"
        )
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err
    [frames] = output.glob("run-*/frames")
    kept = sorted(path.name for path in frames.iterdir())
    assert kept and len(kept) < 40
    noun = "frame" if len(kept) == 1 else "frames"
    assert f"Interrupted: {len(kept)} {noun} stored so far, in {frames}." in out
    assert err.endswith("brenda: interrupted\n")
    assert list(scratch.iterdir()) == []  # the demo's temporary folder is gone
    leftovers = subprocess.run(
        ["pgrep", "-f", f"brenda_node -c {scratch}"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""  # no orphaned node


@pytest.mark.slow
def test_demo_packs_a_blend_with_everything_it_uses(
    studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    output = tmp_path / "out"
    argv = ["demo", "--blend", str(studio.blend), "--frames", "2", "--nodes", "1"]
    assert main([*argv, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "Packed 21 files (" in out
    [run] = output.iterdir()
    rendered = ImageBuf(str(run / "frames" / "frame_000002.png")).get_pixels(FLOAT)
    original = ImageBuf(str(studio.reference)).get_pixels(FLOAT)
    assert np.abs(rendered - original).max() <= 1 / 255


@pytest.mark.slow
def test_demo_renders_a_blend_whose_files_are_missing_only_with_render_anyway(
    broken_studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo's advice names demo's own flag: it has --render-anyway, as pack and upload have."""
    argv = ["demo", "--blend", str(broken_studio.blend), "--frames", "2", "--nodes", "1"]
    assert main([*argv, "--output", str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("brenda: 1 file the render reads is missing: ")
    assert err.endswith(
        ". Put them back, or run it again with --render-anyway to render without them.\n"
    )
    output = tmp_path / "out"
    assert main([*argv, "--render-anyway", "--output", str(output)]) == 0
    [run] = output.iterdir()
    assert (run / "frames" / "frame_000002.png").is_file()
