# SPDX-License-Identifier: GPL-3.0-or-later
"""Scale on paper: the node protocol for 100,000 tasks on 1,000 spot nodes, simulated.

A discrete-event model of one farm (one work queue) on a self-sizing fleet. The nodes play the
protocol of ``brenda_node`` with its own settings (read from Brenda's defaults): take a task
(ReceiveMessage with a long poll), start protected from scale-in (the group launches them so)
and drop it when idle, write their ledger when a task begins and ends, renew the lease every
VISIBILITY_TIMEOUT_REASSERT seconds, store the frame, delete the message; idle, they poll (and
count the queue) and drop their protection; they read the spot price every SPOT_PRICE_REFRESH
seconds and check the budget as ``brenda_node.budget`` spreads it. The group follows the backlog
per node as the target-tracking policy does (one evaluation a minute, on SQS metrics a few
minutes old), launches with a boot delay, replaces interrupted nodes, and removes idle nodes only.
Spot interruptions arrive at ``--interruptions`` per node-hour with a two-minute notice; the
node gives its task back at once and the render time spent on it is lost.

It prints requests per second per API (mean, and the busiest minute) against the documented
limits, the wall time against the ideal (all the work spread over the maximum from the first
second), the work lost to interruptions, and then the same run for 10, 100 and 1,000 nodes
(100 tasks per node): requests per node-minute must stay flat as the fleet grows. The budget
design before this bench (every node reading every ledger every five minutes; nodes launched
unprotected, each protecting itself at its first task) runs in the same sweep as the baseline:
its ledger reads grow with the square of the fleet, and its protection calls burst at scale-out.

Run: ``python bench/scale.py [--nodes 1000] [--tasks 100000] [--task-seconds 120]``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brenda_node.budget import BUDGET_CHECK, check_interval
from shared.core.config import load_config
from shared.jobs.costs import SPOT_PRICE_REFRESH

SETTINGS = load_config(None)
RECEIVE_WAIT = SETTINGS.integer("RECEIVE_WAIT")
REASSERT = SETTINGS.integer("VISIBILITY_TIMEOUT_REASSERT")
POLL_PAUSE = SETTINGS.integer("POLL_PAUSE")

SCALER_PERIOD = 60.0
"""Target tracking evaluates a one-minute metric."""
METRIC_DELAY = 180.0
"""SQS metrics reach CloudWatch a few minutes late."""
NOTICE = 120.0
"""A spot interruption notice comes two minutes before the instance goes."""
BOOT = (60.0, 180.0)
"""Seconds from launch to the first task (boot, service start, project fetch)."""
PROJECT_OBJECTS = 40
"""Content-store objects a node fetches for its project (a GET each)."""
LEDGERS_PER_LIST = 1000
"""ListObjectsV2 returns up to 1,000 keys a page."""

UNLIMITED = (math.inf, math.inf, "SQS standard queue: nearly unlimited")
EC2_READS = (20.0, 100.0, "as EC2 non-mutating calls: 20/s, bursts of 100")
LIMITS = {
    "sqs:ReceiveMessage": UNLIMITED,
    "sqs:ChangeMessageVisibility": UNLIMITED,
    "sqs:DeleteMessage": UNLIMITED,
    "sqs:GetQueueAttributes": UNLIMITED,
    "s3:PUT (frames, ledgers)": (3500.0, math.inf, "3,500 PUT/s per prefix"),
    "s3:GET (project)": (5500.0, math.inf, "5,500 GET/s per prefix"),
    "s3:GET (ledgers)": (5500.0, math.inf, "5,500 GET/s per prefix"),
    "s3:LIST (ledgers)": (5500.0, math.inf, "5,500 GET/s per prefix"),
    "ec2:DescribeSpotPriceHistory": EC2_READS,
    "autoscaling:DescribeAutoScalingGroups": EC2_READS,
    "autoscaling:SetInstanceProtection": (
        5.0,
        200.0,
        "as EC2 mutating calls: 5/s, bursts of 200",
    ),
}
"""Requests per second each API sustains, the burst its token bucket allows, and where that
comes from. Auto Scaling publishes no rates: EC2's documented buckets stand in for them."""


@dataclass
class Node:
    ident: int
    born: float
    ready: float = 0.0
    gone: float | None = None
    task_started: float | None = None
    task_seconds: float = 0.0
    protected: bool = True
    """The group launches its nodes protected from scale-in."""
    budget_due: float = 0.0
    version: int = 0
    """Bumped when the node is interrupted, so its scheduled events are dropped."""
    leaving: bool = False
    """Interrupted: it goes at the end of the notice, and the group has replaced it."""


@dataclass
class Farm:
    nodes_max: int
    tasks: int
    task_seconds: float
    interruptions_per_hour: float
    baseline: bool
    """The design before: budget checks every BUDGET_CHECK s on every node, nodes launched
    unprotected."""
    seed: int
    now: float = 0.0
    events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    waiting: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    stored: int = 0
    nodes: dict[int, Node] = field(default_factory=dict)
    launched: int = 0
    ledgers: int = 0
    interrupted: int = 0
    lost_seconds: float = 0.0
    node_seconds: float = 0.0
    backlog_history: list[tuple[float, int]] = field(default_factory=list)
    finished: float | None = None
    _order: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        mu = math.log(self.task_seconds) - 0.125  # lognormal, sigma 0.5, mean task_seconds
        self.waiting = [self.random.lognormvariate(mu, 0.5) for _ in range(self.tasks)]
        self.work = sum(self.waiting)
        self.budget_interval = BUDGET_CHECK if self.baseline else check_interval(self.nodes_max)

    # The event loop.
    def at(self, moment: float, action: Callable[[], None]) -> None:
        self._order += 1
        heapq.heappush(self.events, (moment, self._order, action))

    def call(self, api: str, count: float = 1, moment: float | None = None) -> None:
        self.requests[(api, int((self.now if moment is None else moment) // 60))] += count

    def run(self) -> None:
        self.at(0.0, self.scale)
        while self.events and self.finished is None:
            self.now, _, action = heapq.heappop(self.events)
            action()
        for node in list(self.nodes.values()):
            self.retire(node)

    # The group.
    def live(self) -> list[Node]:
        return [node for node in self.nodes.values() if not node.leaving]

    def scale(self) -> None:
        seen = self.backlog(self.now - METRIC_DELAY)
        desired = min(self.nodes_max, seen)
        live = self.live()
        for _ in range(desired - len(live)):
            self.launch()
        surplus = len(live) - desired
        for node in live:
            if surplus <= 0:
                break
            if not node.protected and node.ready <= self.now:
                self.retire(node)
                surplus -= 1
        self.backlog_history.append((self.now, len(self.waiting) + self.in_flight))
        self.at(self.now + SCALER_PERIOD, self.scale)

    def backlog(self, moment: float) -> int:
        seen = [count for when, count in self.backlog_history if when <= moment]
        return seen[-1] if seen else len(self.waiting) + self.in_flight

    def launch(self) -> None:
        node = Node(self.launched, self.now, protected=not self.baseline)
        self.launched += 1
        self.nodes[node.ident] = node
        node.ready = self.now + self.random.uniform(*BOOT)
        self.at(node.ready, lambda: self.boot(node))
        if self.interruptions_per_hour > 0:
            notice = node.ready + self.random.expovariate(self.interruptions_per_hour / 3600)
            self.at(notice, lambda: self.interrupt(node))

    def retire(self, node: Node) -> None:
        if node.gone is None:
            node.gone = self.now
            self.node_seconds += node.gone - node.born
            self.nodes.pop(node.ident)

    def interrupt(self, node: Node) -> None:
        if node.gone is not None:
            return
        self.interrupted += 1
        node.version += 1
        node.leaving = True
        if node.task_started is not None:  # given back at once: ChangeMessageVisibility 0
            self.lost_seconds += self.now - node.task_started
            self.call("sqs:ChangeMessageVisibility")
            self.waiting.append(node.task_seconds)
            self.in_flight -= 1
            node.task_started = None
        self.at(self.now + NOTICE, lambda: self.retire(node))
        self.launch()  # the group replaces it (capacity rebalancing starts it on the notice)

    # A node.
    def boot(self, node: Node) -> None:
        if node.gone is not None:
            return
        self.call("autoscaling:DescribeAutoScalingGroups")  # its group, protection, budget
        self.call("s3:GET (project)", PROJECT_OBJECTS + 1)  # manifest and objects
        self.ledgers += 1
        self.read_price(node)
        node.budget_due = self.now + self.random.uniform(
            0, max(0.0, self.budget_interval - BUDGET_CHECK)
        )
        self.take(node, node.version)

    def take(self, node: Node, version: int) -> None:
        if node.gone is not None or node.version != version:
            return
        self.call("sqs:ReceiveMessage")
        if not self.waiting:
            self.call("sqs:GetQueueAttributes")  # is the queue done?
            if node.protected:
                node.protected = False
                self.call("autoscaling:SetInstanceProtection")
            pause = RECEIVE_WAIT + (POLL_PAUSE if self.in_flight == 0 else 0)
            self.at(self.now + pause, lambda: self.take(node, version))
            return
        seconds = self.waiting.pop()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self.now >= node.budget_due:
            node.budget_due = self.now + self.budget_interval
            self.call("s3:LIST (ledgers)", math.ceil(self.ledgers / LEDGERS_PER_LIST))
            self.call("s3:GET (ledgers)", self.ledgers)
        if not node.protected:
            node.protected = True
            self.call("autoscaling:SetInstanceProtection")
        self.call("s3:PUT (frames, ledgers)")  # the ledger: working on it
        node.task_started, node.task_seconds = self.now, seconds
        for renewal in range(1, int(seconds // REASSERT) + 1):
            self.call("sqs:ChangeMessageVisibility", moment=self.now + renewal * REASSERT)
        self.at(self.now + seconds, lambda: self.done(node, version))

    def done(self, node: Node, version: int) -> None:
        if node.gone is not None or node.version != version:
            return
        node.task_started = None
        self.call("s3:PUT (frames, ledgers)", 2)  # the frame, then the ledger
        self.call("sqs:DeleteMessage")
        self.in_flight -= 1
        self.stored += 1
        if self.stored == self.tasks:
            self.finished = self.now
        self.take(node, version)

    def read_price(self, node: Node) -> None:
        """The node's spot price, read again every SPOT_PRICE_REFRESH seconds."""
        if node.gone is None and not node.leaving:
            self.call("ec2:DescribeSpotPriceHistory")
            self.at(self.now + SPOT_PRICE_REFRESH, lambda: self.read_price(node))

    # What it did.
    def throttled(self, api: str, rate: float, burst: float) -> float:
        """Requests a token bucket of ``rate`` per second holding ``burst`` would refuse, minute
        by minute (a refused call is retried: a node's protection change at its next poll)."""
        if math.isinf(rate):
            return 0.0
        last = max(minute for (name, minute) in self.requests if name == api)
        tokens, refused = burst, 0.0
        for minute in range(last + 1):
            tokens = min(burst + rate * 60, tokens + rate * 60) - self.requests[(api, minute)]
            if tokens < 0:
                refused -= tokens
                tokens = 0.0
        return refused

    def rates(self) -> dict[str, tuple[float, float]]:
        """Mean requests per second per API over the run, and its busiest minute's."""
        assert self.finished is not None
        totals: Counter[str] = Counter()
        busiest: Counter[str] = Counter()
        for (api, _minute), count in self.requests.items():
            totals[api] += count
            busiest[api] = max(busiest[api], count)
        return {api: (totals[api] / self.finished, busiest[api] / 60) for api in totals}


def simulate(
    nodes: int,
    tasks: int,
    *,
    task_seconds: float,
    interruptions: float,
    baseline: bool,
    seed: int,
) -> Farm:
    farm = Farm(nodes, tasks, task_seconds, interruptions, baseline, seed)
    farm.run()
    return farm


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def report(farm: Farm) -> None:
    assert farm.finished is not None
    ideal = farm.work / farm.nodes_max
    print(
        f"{farm.tasks:,} tasks of {farm.task_seconds:g} s (mean) on up to {farm.nodes_max:,} "
        f"spot nodes, {farm.interruptions_per_hour:.0%} interrupted per node-hour"
    )
    print(
        f"  wall time {hours(farm.finished)} against the ideal {hours(ideal)} "
        f"(x{farm.finished / ideal:.3f}: boot, metric delay, the last tasks' tail)"
    )
    print(
        f"  node time paid {hours(farm.node_seconds)} for {hours(farm.work)} of rendering "
        f"(x{farm.node_seconds / farm.work:.3f}); nodes launched {farm.launched:,}"
    )
    print(
        f"  interruptions {farm.interrupted:,}: {hours(farm.lost_seconds)} of rendering lost "
        f"({farm.lost_seconds / farm.work:.2%} of the work), every task stored "
        f"({farm.stored:,}/{farm.tasks:,})"
    )
    print(f"  tasks in flight at most {farm.peak_in_flight:,} (SQS allows 120,000 per queue)")
    print(f"  {'API':<38}{'mean/s':>8}{'busiest min/s':>15}{'throttled':>11}  limit")
    for api, (mean, peak) in sorted(farm.rates().items()):
        rate, burst, where = LIMITS[api]
        throttled = farm.throttled(api, rate, burst)
        print(f"  {api:<38}{mean:>8.2f}{peak:>15.2f}{throttled:>11,.0f}  {where}")


def per_node_minute(farm: Farm) -> dict[str, float]:
    minutes = farm.node_seconds / 60
    totals: Counter[str] = Counter()
    for (api, _minute), count in farm.requests.items():
        totals[api] += count
    return {api: count / minutes for api, count in totals.items()}


def sweep(sizes: list[int], tasks_per_node: int, args: argparse.Namespace) -> None:
    print(f"\nRequests per node-minute as the fleet grows ({tasks_per_node} tasks per node):")
    runs = {
        (size, baseline): simulate(
            size,
            size * tasks_per_node,
            task_seconds=args.task_seconds,
            interruptions=args.interruptions,
            baseline=baseline,
            seed=args.seed,
        )
        for size in sizes
        for baseline in (True, False)
    }
    apis = sorted({api for farm in runs.values() for api, _ in farm.requests})
    print(f"  {'API':<38}" + "".join(f"{size:>10,}" for size in sizes))
    for api in apis:
        cells = "".join(
            f"{per_node_minute(runs[(size, False)]).get(api, 0):>10.3f}" for size in sizes
        )
        print(f"  {api:<38}{cells}")
    print("  the design before (the baseline, same run):")
    reads = "s3:GET (ledgers)"
    before = [per_node_minute(runs[(size, True)]).get(reads, 0) for size in sizes]
    now = [per_node_minute(runs[(size, False)]).get(reads, 0) for size in sizes]
    print(f"  {reads:<38}" + "".join(f"{value:>10.3f}" for value in before))
    largest = sizes[-1]
    print(
        f"  at {largest:,} nodes budget checks read {before[-1] / now[-1]:.1f}x fewer ledgers "
        f"than before: {now[-1] * largest / 60:,.1f} GETs/s for the farm, not "
        f"{before[-1] * largest / 60:,.1f}"
    )
    protection = "autoscaling:SetInstanceProtection"
    was, is_now = runs[(largest, True)], runs[(largest, False)]
    print(
        f"  {protection} at {largest:,} nodes: busiest minute "
        f"{was.rates()[protection][1]:.2f}/s before, {is_now.rates()[protection][1]:.2f}/s now; "
        f"throttled {was.throttled(protection, *LIMITS[protection][:2]):,.0f} before, "
        f"{is_now.throttled(protection, *LIMITS[protection][:2]):,.0f} now"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000, help="the fleet's maximum")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--task-seconds", type=float, default=120.0, help="mean task length")
    parser.add_argument(
        "--interruptions", type=float, default=0.05, help="spot interruptions per node-hour"
    )
    parser.add_argument("--sweep", default="10,100,1000", help="fleet sizes to compare")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    farm = simulate(
        args.nodes,
        args.tasks,
        task_seconds=args.task_seconds,
        interruptions=args.interruptions,
        baseline=False,
        seed=args.seed,
    )
    report(farm)
    sizes = [int(size) for size in args.sweep.split(",") if size]
    if sizes:
        sweep(sizes, max(1, args.tasks // args.nodes), args)
    print(f"\n(simulated in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
