# SPDX-License-Identifier: GPL-3.0-or-later
"""prune's ranking and perf's arithmetic, as the original computed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.errors import BrendaError
from shared.workstation.ssh import (
    Host,
    minute_of_hour_at_least,
    performance,
    prune_choice,
    rank_key,
)

LAUNCH = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_prune_shuts_down_exited_nodes_then_the_most_recently_finished() -> None:
    answers = {
        Host("a"): "1764050000",
        Host("b"): "BIG",
        Host("c"): "SMALL",
        Host("d"): "1764040000",
        Host("e"): "",
    }
    ranking, shutdown = prune_choice(answers, keep=2)
    assert [str(host) for _, host in ranking] == ["b", "a", "d", "e", "c"]
    assert [key for key, _ in ranking] == [2**32, 1764050000, 1764040000, -1, -1]
    assert [str(host) for host in shutdown] == ["b", "a", "d"]
    assert prune_choice(answers, keep=9)[1] == []
    with pytest.raises(BrendaError, match="0 or more"):
        prune_choice(answers, keep=-1)


@pytest.mark.parametrize(("text", "key"), [("SMALL", -1), ("BIG", 2**32), ("42\n", 42), ("?", -1)])
def test_rank_keys(text: str, key: int) -> None:
    assert rank_key(text) == key


@pytest.mark.parametrize(
    ("minutes", "threshold", "selected"),
    [(55, 50, True), (115, 50, True), (49, 50, False), (0, 0, True)],
)
def test_threshold_is_minutes_past_the_hour_of_uptime(
    minutes: int, threshold: int, selected: bool
) -> None:
    now = LAUNCH + timedelta(minutes=minutes, seconds=30)
    assert minute_of_hour_at_least(LAUNCH, threshold, now) is selected


def test_perf_on_a_known_fleet() -> None:
    two_hours = int((LAUNCH + timedelta(hours=2)).timestamp())
    one_hour = int((LAUNCH + timedelta(hours=1)).timestamp())
    table = performance(
        [
            ("c7i.2xlarge", LAUNCH, 40, two_hours, 0.20),
            ("c7i.2xlarge", LAUNCH, 20, one_hour, 0.30),
            ("m7i.xlarge", LAUNCH, 10, one_hour, None),
        ]
    )
    fast, slow = table
    assert (fast.instance_type, fast.nodes, fast.tasks, fast.hours) == ("c7i.2xlarge", 2, 60, 3.0)
    assert fast.tasks_per_hour == pytest.approx(20.0)
    assert fast.price_per_hour == pytest.approx(0.25)
    assert fast.tasks_per_dollar == pytest.approx(80.0)
    assert (slow.tasks_per_hour, slow.tasks_per_dollar) == (10.0, None)
