# SPDX-License-Identifier: GPL-3.0-or-later
"""What rendering costs: prices integrated over tasks (checked to the cent against sums worked
out by hand), the spot price history read from moto's server, a job's totals, the formats."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.core.config import load_config
from shared.jobs.costs import (
    LOCAL,
    JobCost,
    Ledger,
    Machine,
    PriceBook,
    PricePoint,
    TaskCost,
    cost_between,
    format_dollars,
    format_duration,
    job_cost,
    price_at,
)

TEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
# A spot price that changes twice while the fleet renders from 10:00 to 12:00.
HISTORY = [
    PricePoint(TEN - 600, 0.0312),
    PricePoint(TEN + 1800, 0.0420),
    PricePoint(TEN + 4500, 0.0385),
]


def test_a_price_holds_from_its_time_until_the_next_and_the_oldest_before_it() -> None:
    assert price_at(HISTORY, TEN + 1799.9) == 0.0312
    assert price_at(HISTORY, TEN + 1800) == 0.0420
    assert price_at(HISTORY, TEN - 86400) == 0.0312
    assert price_at(HISTORY[::-1], TEN + 9000) == 0.0385
    assert price_at([], TEN) is None


def test_costs_follow_the_price_in_force_second_by_second_to_the_cent() -> None:
    # 10:00-10:30 at 0.0312, 10:30-11:15 at 0.0420, 11:15-12:00 at 0.0385, per node-hour:
    # 0.0156 + 0.0315 + 0.028875 = 0.075975 per node; 100 nodes: US$ 7.5975.
    per_node = cost_between(HISTORY, TEN, TEN + 7200)
    assert per_node == pytest.approx(0.075975, abs=1e-12)
    assert format_dollars(100 * per_node) == "$7.60"
    # A 20 s task across the 10:30 change: 10 s at each price.
    assert cost_between(HISTORY, TEN + 1790, TEN + 1810) == pytest.approx(
        (10 * 0.0312 + 10 * 0.0420) / 3600, abs=1e-15
    )
    # The fleet's 6,000 frames of 120 s each cost the same, frame by frame, as the whole.
    frames = [cost_between(HISTORY, TEN + 120 * n, TEN + 120 * (n + 1)) for n in range(60)]
    assert sum(c or 0 for c in frames) == pytest.approx(per_node, abs=1e-12)
    assert format_dollars(100 * per_node / 6000) == "$0.00127"
    assert cost_between([], TEN, TEN + 1) is None


def config(**settings: str) -> Any:
    environ = {**os.environ, **{f"BRENDA_{key}": value for key, value in settings.items()}}
    return load_config(environ=environ)


def test_the_spot_price_comes_from_the_zones_price_history_on_aws(aws: str) -> None:
    # moto's server has one price for every type and zone: US$ 0.00001 per hour, since 2006.
    book = PriceBook(Machine("spot", "c5.large", "us-east-1a"), config())
    assert book.price(TEN) == 0.00001
    assert book.cost(TEN, TEN + 3600 * 1000) == pytest.approx(0.01, abs=1e-12)


def test_a_type_without_a_spot_price_in_its_zone_has_no_cost_rather_than_a_wrong_one(
    aws: str,
) -> None:
    book = PriceBook(Machine("spot", "no.such-type", "us-east-1a"), config())
    assert book.cost(TEN, TEN + 60) is None
    assert book.price(TEN) is None


def test_on_demand_uses_the_list_price_or_on_demand_price_and_the_local_farm_is_free() -> None:
    listed = PriceBook(Machine("on-demand", "c5.large", "us-east-1b"), config())
    assert listed.cost(TEN, TEN + 7200) == pytest.approx(0.17, abs=1e-12)
    set_price = PriceBook(
        Machine("on-demand", "c5.large", "eu-west-1a"), config(ON_DEMAND_PRICE="0.096")
    )
    assert set_price.cost(TEN, TEN + 1800) == pytest.approx(0.048, abs=1e-12)
    unlisted = PriceBook(Machine("on-demand", "c5.large", "eu-west-1a"), config())
    assert unlisted.cost(TEN, TEN + 60) is None
    assert PriceBook(LOCAL, config()).cost(TEN, TEN + 3600) == 0.0
    assert PriceBook(Machine("unknown"), config()).cost(TEN, TEN + 3600) is None


def task(
    dollars: float | None, wall: float, outcome: str = "stored", frames: float = 1
) -> TaskCost:
    return TaskCost(
        "frame", frames if outcome == "stored" else 0, TEN, wall, wall * 0.9, None, dollars, outcome
    )


def test_a_jobs_cost_counts_every_task_and_its_frames_only_the_stored_ones() -> None:
    spot = Ledger("a", Machine("spot", "g5.xlarge", "us-east-1a"), None, TEN, [
        task(0.21, 1800), task(0.21, 1800), task(0.21, 1800), task(0.07, 600, "failed"),
    ])  # fmt: skip
    on_demand = Ledger("b", Machine("on-demand", "g5.xlarge", "us-east-1a"), "frame 7", TEN, [
        task(0.503, 1800), task(0.503, 1800), task(0.503, 1800), task(None, 5, "given back"),
    ])  # fmt: skip
    cost = job_cost([spot, on_demand], running=1, now=TEN + 60, stale=3600)
    assert cost.dollars == pytest.approx(2.209, abs=1e-12)
    assert cost.unpriced_tasks == 1
    assert (cost.frames_rendered, cost.node_seconds, cost.nodes) == (6, 11405, 1)
    assert format_dollars(cost.per_frame) == "$0.37"
    assert format_dollars(cost.projected(4)) == "$3.68"
    assert cost.eta_seconds(4) == pytest.approx(4 * 11405 / 6)
    # A node that stopped writing long ago, or more ledgers at work than tasks running: the
    # nodes on the job are those SQS sees holding its tasks.
    assert job_cost([spot, on_demand], running=1, now=TEN + 7200, stale=3600).nodes == 0
    assert job_cost([on_demand, on_demand], running=1, now=TEN, stale=3600).nodes == 1


def test_tasks_rendering_now_count_at_least_a_typical_tasks_length_at_their_price() -> None:
    machine = Machine("spot", "g5.xlarge", "us-east-1a")
    done = Ledger(
        "a", machine, None, TEN, [task(0.2, 1800), task(0.2, 1800), task(0.1, 5, "failed")]
    )
    started = Ledger("b", machine, "frame 7", TEN, [], TEN, 0.40)  # 60 s in: 1,800 s to go by
    long = Ledger("c", machine, "frame 8", TEN - 3600, [], TEN - 3600, 0.50)  # 1 h 1 min in
    unpriced = Ledger("d", machine, "frame 9", TEN, [], TEN, None)
    cost = job_cost([done, started, long, unpriced], running=3, now=TEN + 60, stale=7200)
    assert cost.running_dollars == pytest.approx(0.40 * 1800 / 3600 + 0.50 * 3660 / 3600)
    # Ledgers long silent are nodes gone: their tasks are not running.
    assert job_cost([started], running=1, now=TEN + 9000, stale=7200).running_dollars == 0


def test_a_job_without_stored_frames_has_no_cost_per_frame_or_eta() -> None:
    cost = JobCost(0.0, 0, 0, 0.0, 0.0, 0)
    assert (cost.per_frame, cost.projected(10), cost.eta_seconds(10)) == (None, None, None)
    assert cost.eta_seconds(0) == 0.0


def test_dollars_and_durations_read_as_people_write_them() -> None:
    assert [format_dollars(d) for d in (0, 0.004999, 0.01, 1234.567, None)] == [
        "$0.00",
        "$0.005",
        "$0.01",
        "$1,234.57",
        "?",
    ]
    assert format_dollars(2.5, unpriced=True) == "$2.50+"
    assert [format_duration(s) for s in (None, 0, 59.6, 61, 7600)] == [
        "-",
        "0s",
        "1m 00s",
        "1m 01s",
        "2h 06m",
    ]


def test_a_ledger_reads_back_as_written() -> None:
    ledger = Ledger(
        "node-1:42", Machine("spot", "c5.large", "us-east-1a"), "frame 3", TEN, [task(0.01, 60)]
    )
    assert Ledger.from_json(ledger.to_json()) == ledger


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"dollars": True}, "'dollars' is True, not a number"),
        ({"dollars": float("nan")}, "'dollars' is nan, not a number"),
        ({"wall_seconds": -5}, "'wall_seconds' is -5, not an amount (it is below 0)"),
        ({"frames": "12"}, "'frames' is '12', not a number"),
        ({"outcome": "paid"}, "'outcome' is 'paid', not one of stored, failed, given back"),
        ({"task": None}, "'task' is None, not a text"),
    ],
)
def test_a_ledger_that_is_not_one_is_refused_saying_why(
    change: dict[str, Any], problem: str
) -> None:
    ledger = Ledger("node-1:42", LOCAL, None, TEN, [task(0.01, 60)])
    document = json.loads(ledger.to_json())
    document["tasks"][0].update(change)
    with pytest.raises(ValueError) as refused:
        Ledger.from_json(json.dumps(document))
    assert str(refused.value) == problem
    for whole in ("[]", '{"machine": {"market": "local"}}', '{"node": "n", "machine": 1}'):
        with pytest.raises(ValueError):
            Ledger.from_json(whole)
