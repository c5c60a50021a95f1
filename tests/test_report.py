# SPDX-License-Identifier: GPL-3.0-or-later
"""What a job's report adds up from the nodes' ledgers (chunks, tiles, failed tries, other
tasks), and its charts' SVG: every word escaped, bars as tall as their values."""

from __future__ import annotations

import re

from shared.core.charts import area_chart, bar_chart
from shared.jobs.costs import Ledger, Machine, TaskCost
from shared.jobs.report import node_groups, per_frame, stored_over_time, task_frames


def cost(
    task: str, started: float, seconds: float, dollars: float | None, outcome: str
) -> TaskCost:
    frames = float(len(task_frames(task))) if outcome == "stored" else 0.0
    return TaskCost(task, frames, started, seconds, seconds / 2, 0.4, dollars, outcome)


def test_task_frames_reads_chunks_and_tiles_and_nothing_from_other_titles() -> None:
    assert task_frames("frames 1-4") == (1, 2, 3, 4)
    assert task_frames("frames 7 tile X-0.0-0.5-Y-0.0-0.5") == (7,)
    assert task_frames("frames 1-10:3") == (1, 4, 7, 10)
    assert task_frames("script task") == ()
    assert task_frames("frames <b>") == ()


def test_per_frame_shares_a_task_among_its_frames_and_adds_every_try() -> None:
    ledgers = [
        Ledger(
            "a",
            Machine("spot", "c5.xlarge"),
            tasks=[
                cost("frames 1-2", 0, 40, 0.02, "stored"),
                cost("frames 3", 50, 10, None, "failed"),
                cost("frames 3", 70, 30, 0.01, "stored"),
                cost("a script", 90, 5, 0.5, "stored"),
            ],
        ),
        Ledger("b", Machine("local"), tasks=[cost("frames 3", 60, 8, 0.0, "given back")]),
    ]
    assert per_frame(ledgers) == {1: (10.0, 0.01), 2: (10.0, 0.01), 3: (24.0, 0.01)}
    groups = node_groups(ledgers)
    assert [(group.instance_type, group.market, group.tasks) for group in groups] == [
        ("c5.xlarge", "spot", 4),
        ("-", "local", 1),
    ]
    assert groups[0].unpriced == 1 and groups[0].dollars == 0.53
    # Stored frames count at each stored task's end, from the first task's start.
    assert stored_over_time(ledgers) == [(0, 0.0), (40, 2.0), (95, 2.0), (100, 3.0)]


def test_charts_escape_their_words_and_draw_bars_to_scale() -> None:
    svg = bar_chart(
        [("<b>1</b>", 2.0), ("2", 1.0), ("3", 0.0)],
        colour="#123456",
        label='"quoted" & <tagged>',
        unit_text="{:.1f} s",
        css_class="bar",
    )
    assert "<b>" not in svg and "&lt;b&gt;1&lt;/b&gt;: 2.0 s" in svg
    assert "&quot;quoted&quot; &amp; &lt;tagged&gt;" in svg
    heights = [float(value) for value in re.findall(r'class="bar"[^>]* height="([\d.]+)"', svg)]
    assert heights[0] == 2 * heights[1] > 0 and heights[2] == 0
    assert "http" not in svg
    area = area_chart(
        [(10.0, 0.0), (20.0, 1.0), (40.0, 3.0)],
        colour="#654321",
        label="stored",
        x_text="{:.0f} s",
        y_text="{:.0f} frames",
        css_class="area",
    )
    assert area.count("<polygon") == 1 and ">30 s</text>" in area and ">3 frames</text>" in area
