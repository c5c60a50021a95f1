# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench scripts run to the end on a small load (they print figures; tests check they work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


def test_the_push_bench_runs_several_rounds_without_purging_a_queue() -> None:
    # Three rounds per client: moto allows one purge a minute, which stopped the second round.
    result = subprocess.run(
        [sys.executable, str(BENCH / "push.py"), "--tasks", "60", "--round", "20", "--rtt-ms", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PurgeQueueInProgress" not in result.stdout + result.stderr
    assert result.stdout.count("speed-up") == 2


@pytest.mark.slow
def test_the_warm_bench_renders_both_ways_and_prints_the_speed_up() -> None:
    argv = ["--tasks", "2", "--objects", "1", "--textures", "1", "--samples", "1"]
    result = subprocess.run(
        [sys.executable, str(BENCH / "warm.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("frames/hour") == 2 and "speed-up: " in result.stdout


def test_the_upload_bench_sends_only_the_change_after_the_first_upload() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "upload.py"), "--files", "20", "--large-mb", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "content store sends     1.00 MB" in lines[2], result.stdout
    assert "node fetches     1.00 MB" in lines[2], result.stdout


@pytest.mark.slow
def test_the_chunking_bench_compares_three_ways_for_two_edits() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "blend_chunks.py"), "--spheres", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("content-defined chunks") == 2


def test_the_scale_simulation_stores_every_task_and_compares_with_the_design_before() -> None:
    argv = ["--nodes", "20", "--tasks", "400", "--sweep", "5,20", "--interruptions", "0.5"]
    result = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "every task stored (400/400)" in out, out
    assert "against the ideal" in out and "sqs:ReceiveMessage" in out
    assert "budget checks read" in out and "the design before" in out
