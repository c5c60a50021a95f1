# SPDX-License-Identifier: GPL-3.0-or-later
"""--finish-by: the times an artist writes, and the nodes a deadline needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.errors import UsageError
from shared.farm.deadline import STARTUP_SECONDS, WorkLeft, parse_deadline, plan_deadline

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def test_deadlines_read_as_artists_write_them() -> None:
    assert parse_deadline("+6h", NOW) == NOW + timedelta(hours=6)
    assert parse_deadline("+90m", NOW) == NOW + timedelta(minutes=90)
    assert parse_deadline("2026-11-27T18:00+01:00", NOW) == datetime(2026, 11, 27, 17, tzinfo=UTC)
    for clock in ("09:00", "18:00"):  # the next time the local clock shows it
        moment = parse_deadline(clock, NOW)
        assert moment.astimezone().strftime("%H:%M") == clock
        assert timedelta(0) < moment - NOW <= timedelta(days=1)
    with pytest.raises(UsageError, match="'next week' is not a time"):
        parse_deadline("next week", NOW)


def test_a_deadline_shares_the_work_over_the_time_left_after_a_start_and_a_tail() -> None:
    work = WorkLeft(node_seconds=36_000, typical_task=300, what="120 tasks of 5m")
    usable = 3600 - STARTUP_SECONDS - 300
    plan = plan_deadline(work, NOW + timedelta(hours=1), NOW, 0.25)
    assert plan.nodes == 36_000 / usable == 12
    assert plan.dollars == pytest.approx((36_000 + 12 * STARTUP_SECONDS) / 3600 * 0.25)
    with pytest.raises(UsageError, match="give a later time"):
        plan_deadline(work, NOW + timedelta(minutes=9), NOW, 0.25)
    with pytest.raises(UsageError, match="nothing left to render"):
        plan_deadline(WorkLeft(0, 0, "0 tasks"), NOW + timedelta(hours=1), NOW, 0.25)
