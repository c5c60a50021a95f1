# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender's output read back, the launcher on PATH, and the bpy host's command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from brenda_node.blender import RunResult, find_blend, parse_line
from brenda_node.blenders import blender_command, write_launcher
from brenda_node.render_script import sequence_file, sequence_frame, udim_file
from shared.core.errors import BrendaError

BLENDER_LINES = {
    "Fra:12 Mem:8.55M (Peak 8.55M) | Time:00:00.00 | Remaining:00:00.00 | Mem:0.31M, "
    "Peak:0.31M | Scene, ViewLayer | Sample 3/16": (12, (3, 16), None, False),
    "Saved: '/tmp/out/frame_000012.png'": (None, None, "/tmp/out/frame_000012.png", False),
    "Error: Cannot read file '/tmp/none.blend': No such file or directory": (
        None,
        None,
        None,
        True,
    ),
    "Time: 00:00.28 (Saving: 00:00.10)": (None, None, None, False),
}


@pytest.mark.parametrize("text", list(BLENDER_LINES), ids=["progress", "saved", "error", "time"])
def test_blender_lines_are_understood(text: str) -> None:
    line = parse_line(text)
    assert (line.frame, line.sample, line.saved, line.error) == BLENDER_LINES[text]


# Real lines of a background Cycles render on each version (32x24, 16 samples): Blender 4.x
# prints its progress; 5.x prints only "Saved:" as a log line, and the render script relays the
# statistics Blender hands its render_stats handlers as 4.x printed them.
VERSION_LINES = {
    "4.2": [
        "Fra:1 Mem:10.28M (Peak 12.08M) | Time:00:00.00 | Remaining:00:00.00 | Mem:0.11M, "
        "Peak:0.11M | Scene, ViewLayer | Sample 1/16",
        "Saved: '/tmp/probe/s42/f_0001.png'",
        "Time: 00:00.29 (Saving: 00:00.28)",
    ],
    "4.5": [
        "Fra:1 Mem:8.20M (Peak 10.09M) | Time:00:00.00 | Remaining:00:00.00 | Mem:0.11M, "
        "Peak:0.11M | Scene, ViewLayer | Sample 1/16",
        "Saved: '/tmp/probe/q/f_0001.png'",
        "Time: 00:00.28 (Saving: 00:00.26)",
    ],
    "5.0": [
        "Fra:1 | Remaining: 00:00.00 | Mem: 2M | Sample 1/16",
        "00:00.514  render           | Saved: '/tmp/probe/s50/f_0001.png'",
        "Time: 00:00.07 (Saving: 00:00.06)",
    ],
    "5.2": [
        "Fra:1 | Remaining: 00:00.00 | Mem: 1M | Sample 1/16",
        "00:00.605  render           | Saved: '/tmp/probe/s52/f_0001.png'",
        "Time: 00:00.12 (Saving: 00:00.11)",
    ],
    "5.3": [
        "Fra:1 | Remaining: 00:00.07 | Mem: 1M | Sample 1/16",
        "00:01.911  render           | Saved: '/tmp/probe/q/f_0001.png'",
        "Time: 00:00.40 (Saving: 00:00.31)",
    ],
    # A render of over a minute, as 4.x prints its time (hours only when there are some).
    "4.5 long": [
        "Fra:240 Mem:812.40M (Peak 1203.10M) | Time:01:02.50 | Remaining:00:03.10 | "
        "Mem:412.00M, Peak:412.00M | Scene, ViewLayer | Sample 512/1024",
        "Saved: '/farm/out/frame_000240.exr'",
        "Time: 01:02:03.25 (Saving: 00:00.40)",
    ],
}
VERSION_MEANINGS = {
    "4.2": (1, (1, 16), "/tmp/probe/s42/f_0001.png", 0.29),
    "4.5": (1, (1, 16), "/tmp/probe/q/f_0001.png", 0.28),
    "5.0": (1, (1, 16), "/tmp/probe/s50/f_0001.png", 0.07),
    "5.2": (1, (1, 16), "/tmp/probe/s52/f_0001.png", 0.12),
    "5.3": (1, (1, 16), "/tmp/probe/q/f_0001.png", 0.40),
    "4.5 long": (240, (512, 1024), "/farm/out/frame_000240.exr", 3723.25),
}


@pytest.mark.parametrize("version", list(VERSION_LINES))
def test_progress_saved_files_and_render_times_are_read_on_every_version(version: str) -> None:
    progress, saved, took = (parse_line(text) for text in VERSION_LINES[version])
    frame, sample, path, seconds = VERSION_MEANINGS[version]
    assert (progress.frame, progress.sample) == (frame, sample)
    assert saved.saved == path and saved.frame is None and not saved.error
    assert took.render_seconds == pytest.approx(seconds)
    assert saved.text == VERSION_LINES[version][1]  # logged as Blender printed it


def test_launcher_runs_the_configured_blender_with_its_arguments(tmp_path: Path) -> None:
    fake = tmp_path / "my blender"
    fake.write_text('#!/bin/sh\necho "args: $*"\n')
    fake.chmod(0o755)
    command = blender_command(str(fake))
    assert command == [str(fake)]
    launcher = write_launcher(tmp_path / "bin", command)
    result = subprocess.run(
        [str(launcher), "-b", "a b.blend", "-a"], capture_output=True, text=True, check=True
    )
    assert result.stdout == "args: -b a b.blend -a\n"


def test_unknown_blender_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(
        BrendaError, match=r"^The Blender program /nowhere/blender is not an executable"
    ):
        blender_command("/nowhere/blender")


def test_the_bpy_wheel_stands_in_for_a_missing_blender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert blender_command(None) == [sys.executable, "-P", "-m", "brenda_node.bpy_host"]


def test_find_blend_wants_exactly_one(tmp_path: Path) -> None:
    with pytest.raises(BrendaError, match="has no .blend file at its top level"):
        find_blend(tmp_path)
    (tmp_path / "a.blend").write_bytes(b"")
    assert find_blend(tmp_path) == tmp_path / "a.blend"
    (tmp_path / "b.blend").write_bytes(b"")
    with pytest.raises(BrendaError, match=r"several .blend files \(a.blend, b.blend\)"):
        find_blend(tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window-geometry", "0", "0", "1", "1"], "the Blender option --window-geometry is not"),
        (["-s"], "-s needs a value"),
        (["-s", "one"], "-s needs a whole number, not 'one'"),
        (["-S", "Nope"], "there is no scene named 'Nope' in the file"),
    ],
    ids=["unknown flag", "missing value", "not a number", "no such scene"],
)
def test_bpy_host_usage_errors(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "brenda_node.bpy_host", "-b", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"blender (bpy host): {message}" in result.stderr


MISSING_LINES = {
    "Info: Cannot find lib '/work/project/libs/materials.blend'": (
        "library /work/project/libs/materials.blend"
    ),
    "Info: LIB: Material: 'Metal' missing from '/work/project/libs/materials.blend', parent "
    "'/work/project/libs/props.blend'": "Material 'Metal' from /work/project/libs/materials.blend",
    "Info: Read library: '/work/project/libs/props.blend', '//../libs/props.blend', parent "
    "'<direct>'": None,
}


@pytest.mark.parametrize("text", list(MISSING_LINES), ids=["library", "data-block", "found"])
def test_blenders_missing_library_lines_are_understood(text: str) -> None:
    assert parse_line(text).missing == MISSING_LINES[text]


@pytest.mark.parametrize("render_anyway", [False, True], ids=["fails", "render anyway"])
def test_a_run_that_missed_a_library_fails_unless_the_job_renders_anyway(
    tmp_path: Path, render_anyway: bool
) -> None:
    result = RunResult(
        exit_code=0,
        seconds=1.0,
        outputs=[tmp_path / "frame_000001.png"],
        missing=["library /work/project/libs/materials.blend", "Material 'Metal' from x.blend"],
        render_anyway=render_anyway,
    )
    expected = (
        "Blender could not find library /work/project/libs/materials.blend; Material 'Metal' "
        "from x.blend (pack the project with Brenda)"
    )
    assert result.failure() == (None if render_anyway else expected)


@pytest.mark.parametrize(
    ("frame", "cyclic", "number"),
    [(1, False, 1), (3, False, 3), (9, False, 3), (0, False, 0), (4, True, 1), (-1, True, 2)],
)
def test_image_sequences_show_the_file_blender_shows(frame: int, cyclic: bool, number: int) -> None:
    # A 3-file sequence starting at scene frame 1, shifted by an offset of 10.
    assert sequence_frame(frame, 1, 3, 10, cyclic) == number + 10


def test_sequence_and_udim_files_are_named_like_blender_names_them() -> None:
    assert sequence_file("/p/glow.0001.png", 12) == "/p/glow.0012.png"
    assert sequence_file("/p/v2/shot_01_0001.exr", 7) == "/p/v2/shot_01_0007.exr"
    assert sequence_file("/p/still.png", 7) == "/p/still.png"
    assert udim_file("/p/wood.<UDIM>.png", 1012) == "/p/wood.1012.png"
    assert udim_file("/p/wood.<UVTILE>.png", 1012) == "/p/wood.u2_v2.png"


def test_the_bpy_host_never_imports_from_the_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks run from their project folder: a project's bpy.py or json.py must not shadow
    # Blender's or Python's own modules when the job does not allow Python.
    monkeypatch.setenv("PATH", "/nonexistent")
    project = tmp_path / "project"
    project.mkdir()
    ran = tmp_path / "ran"
    for name in ("bpy", "json"):
        (project / f"{name}.py").write_text(f"open({str(ran)!r}, 'a').write('{name}\\n')\n")
    script = project / "script.py"
    script.write_text("import json, bpy\nprint('rendered with', bpy.app.version_string)\n")
    result = subprocess.run(
        [*blender_command(None), "-b", "--python", str(script)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rendered with" in result.stdout
    assert not ran.exists(), ran.read_text()
