# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender's output read back, the launcher on PATH, and the bpy host's command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from brenda_node.blender import blender_command, find_blend, parse_line, write_launcher
from shared.errors import BrendaError

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
    with pytest.raises(BrendaError, match=r"^BLENDER=/nowhere/blender is not an executable"):
        blender_command("/nowhere/blender")


def test_the_bpy_wheel_stands_in_for_a_missing_blender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert blender_command(None) == [sys.executable, "-m", "brenda_node.bpy_host"]


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
