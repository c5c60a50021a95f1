# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench scripts run to the end on a small load (they print figures; tests check they work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


def run_bench(script: str, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``bench/script`` to the end, successfully."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_push_bench_runs_several_rounds_without_purging_a_queue() -> None:
    # Three rounds per client: moto allows one purge a minute, which stopped the second round.
    result = run_bench("push.py", "--tasks", "60", "--round", "20", "--rtt-ms", "1")
    assert "PurgeQueueInProgress" not in result.stdout + result.stderr
    assert result.stdout.count("speed-up") == 2


@pytest.mark.slow
def test_the_warm_bench_renders_both_ways_and_prints_the_speed_up() -> None:
    argv = ["--tasks", "2", "--objects", "1", "--textures", "1", "--samples", "1"]
    result = run_bench("warm.py", *argv)
    assert result.stdout.count("frames/hour") == 2 and "speed-up: " in result.stdout


def test_the_upload_bench_sends_only_the_change_after_the_first_upload() -> None:
    result = run_bench("upload.py", "--files", "20", "--large-mb", "1")
    lines = result.stdout.splitlines()
    assert "content store sends     1.00 MB" in lines[2], result.stdout
    assert "node fetches     1.00 MB" in lines[2], result.stdout


@pytest.mark.slow
def test_the_chunking_bench_compares_three_ways_for_two_edits() -> None:
    result = run_bench("blend_chunks.py", "--spheres", "1")
    assert result.stdout.count("content-defined chunks") == 2


def test_the_scale_simulation_stores_every_task_and_compares_with_the_design_before() -> None:
    argv = ["--nodes", "20", "--tasks", "400", "--sweep", "5,20", "--interruptions", "0.5"]
    result = run_bench("scale.py", *argv, timeout=120)
    out = result.stdout
    assert "every task stored (400/400)" in out, out
    assert "against the ideal" in out and "sqs:ReceiveMessage" in out
    assert "budget checks read" in out and "the design before" in out


@pytest.mark.slow
def test_the_video_bench_renders_then_encodes_and_prints_the_ratio() -> None:
    argv = ["--frames", "3", "--width", "64", "--height", "36", "--samples", "1"]
    result = run_bench("video.py", *argv)
    assert "3 frames 64x36" in result.stdout
    assert result.stdout.count("encode/render ratio: ") == 2
