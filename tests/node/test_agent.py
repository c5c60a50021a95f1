# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's loop with shell tasks: outputs stored before deletion, failures, DONE modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from brenda_node.cli import main as node_main
from tests.node.conftest import Farm, script_tasks


def test_two_nodes_store_every_output_and_exit_when_the_queue_is_done(farm: Farm) -> None:
    farm.push(script_tasks('echo "frame $START" > "$OUTDIR/frame_$START.txt"\n', range(1, 7)))
    nodes = [farm.start_node("a"), farm.start_node("b")]
    assert [node.wait(timeout=60) for node in nodes] == [0, 0], farm.console("a")
    output = Path(farm.settings["RENDER_OUTPUT"].removeprefix("file://"))
    assert sorted(path.name for path in output.iterdir()) == [f"frame_{n}.txt" for n in range(1, 7)]
    assert (output / "frame_3.txt").read_text() == "frame 3\n"
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    counted = [farm.work_dir(name) / "task_count" for name in "ab"]
    assert sum(int(path.read_text()) for path in counted if path.exists()) == 6


def test_a_node_without_settings_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert node_main([]) == 1
    error = capsys.readouterr().err
    assert error.startswith("brenda-node: WORK_QUEUE is not set") and error.count("\n") == 1
    assert list(folder.iterdir()) == []
