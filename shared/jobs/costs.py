# SPDX-License-Identifier: GPL-3.0-or-later
"""What rendering costs: the price a node pays, what each task cost, a job's totals. No bpy.

Each node keeps a ledger per job it serves, beside the job's frames at
``<output>/.brenda/nodes/<node run>.json``: its machine (instance type, zone, market) and, per
task, when it started, its wall and render seconds, the price in force and the dollars. The node
is the ledger's only writer and rewrites it whole after each task, so a write the store refused
(an outage) is made good by the next. ``brenda-work jobs`` and the add-on add a job's ledgers up.

Prices: spot from the zone's price history for the node's type (Linux/UNIX), integrated over
each task, since AWS bills spot by the second at the price in force and the price can change
while a task renders; on-demand from ``ON_DEMAND_PRICE`` or the list prices below; a node on the
local farm costs nothing. Idle time between tasks is not charged to any job.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..aws.session import cloud_errors, make_client
from ..core.config import Config
from ..core.errors import BrendaError
from ..outputs.store import LEDGERS, OutputStore

log = logging.getLogger(__name__)

SPOT_PRICE_REFRESH = 600.0
"""Seconds a node trusts the spot price history it read (one request per refresh)."""
SECONDS_PER_HOUR = 3600.0

ON_DEMAND_PRICES = {
    # US$ per hour, Linux, shared tenancy, as AWS lists them for us-east-1, us-east-2 and
    # us-west-2 (the same for these types). Elsewhere, or for another type, set ON_DEMAND_PRICE.
    **{f"c5.{size}": price for size, price in (
        ("large", 0.085), ("xlarge", 0.17), ("2xlarge", 0.34), ("4xlarge", 0.68),
        ("9xlarge", 1.53), ("12xlarge", 2.04), ("18xlarge", 3.06), ("24xlarge", 4.08),
    )},
    **{f"c6i.{size}": price for size, price in (
        ("large", 0.085), ("xlarge", 0.17), ("2xlarge", 0.34), ("4xlarge", 0.68),
        ("8xlarge", 1.36), ("12xlarge", 2.04), ("16xlarge", 2.72), ("24xlarge", 4.08),
        ("32xlarge", 5.44),
    )},
    **{f"c7i.{size}": price for size, price in (
        ("large", 0.08925), ("xlarge", 0.1785), ("2xlarge", 0.357), ("4xlarge", 0.714),
        ("8xlarge", 1.428), ("12xlarge", 2.142), ("16xlarge", 2.856), ("24xlarge", 4.284),
        ("48xlarge", 8.568),
    )},
    **{f"m5.{size}": price for size, price in (
        ("large", 0.096), ("xlarge", 0.192), ("2xlarge", 0.384), ("4xlarge", 0.768),
        ("8xlarge", 1.536), ("12xlarge", 2.304), ("16xlarge", 3.072), ("24xlarge", 4.608),
    )},
    **{f"g4dn.{size}": price for size, price in (
        ("xlarge", 0.526), ("2xlarge", 0.752), ("4xlarge", 1.204), ("8xlarge", 2.176),
        ("12xlarge", 3.912), ("16xlarge", 4.352),
    )},
    **{f"g5.{size}": price for size, price in (
        ("xlarge", 1.006), ("2xlarge", 1.212), ("4xlarge", 1.624), ("8xlarge", 2.448),
        ("16xlarge", 4.096),
    )},
    **{f"g6.{size}": price for size, price in (
        ("xlarge", 0.8048), ("2xlarge", 0.9776), ("4xlarge", 1.3232), ("8xlarge", 2.0144),
    )},
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
}  # fmt: skip
LISTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2")
_REGION = re.compile(r"^([a-z]+-[a-z]+-\d+)")


@dataclass(frozen=True)
class Machine:
    """What a node runs on."""

    market: str
    """spot, on-demand, local, or unknown (the metadata could not be read)."""
    instance_type: str = ""
    zone: str = ""

    @property
    def region(self) -> str:
        found = _REGION.match(self.zone)
        return found.group(1) if found else ""


LOCAL = Machine("local")


@dataclass(frozen=True)
class PricePoint:
    since: float
    """When this price came into force (seconds since the epoch)."""
    dollars_per_hour: float


def price_at(history: Sequence[PricePoint], moment: float) -> float | None:
    """The price in force at ``moment``; the oldest price known holds before it."""
    ordered = sorted(history, key=lambda point: point.since)
    if not ordered:
        return None
    earlier = [point for point in ordered if point.since <= moment]
    return (earlier[-1] if earlier else ordered[0]).dollars_per_hour


def cost_between(history: Sequence[PricePoint], start: float, end: float) -> float | None:
    """Dollars from ``start`` to ``end``, each price holding until the next (the oldest price
    known holds before it); None if no price is known."""
    ordered = sorted(history, key=lambda point: point.since)
    if not ordered:
        return None
    dollars = 0.0
    for index, point in enumerate(ordered):
        since = -math.inf if index == 0 else point.since
        until = ordered[index + 1].since if index + 1 < len(ordered) else math.inf
        seconds = min(end, until) - max(start, since)
        if seconds > 0:
            dollars += seconds * point.dollars_per_hour / SECONDS_PER_HOUR
    return dollars


class PriceBook:
    """The prices one node pays, read from AWS when it needs them (spot history cached)."""

    def __init__(self, machine: Machine, config: Config) -> None:
        self.machine = machine
        self.config = config
        self._history: list[PricePoint] = []
        self._read_at = -math.inf
        self._covers_from = math.inf
        self._warned = False
        self._lock = threading.Lock()

    def price(self, start: float) -> float | None:
        """US$ per hour in force at ``start``."""
        if self.machine.market == "local":
            return 0.0
        if self.machine.market == "on-demand":
            return self._on_demand()
        if self.machine.market == "spot":
            return price_at(self._spot_history(start), start)
        return None

    def cost(self, start: float, end: float) -> float | None:
        """US$ for this node's time from ``start`` to ``end``; None when no price is known."""
        if self.machine.market == "spot":
            return cost_between(self._spot_history(start), start, end)
        price = self.price(start)
        return None if price is None else price * (end - start) / SECONDS_PER_HOUR

    def _on_demand(self) -> float | None:
        configured = self.config.optional_number("ON_DEMAND_PRICE")
        if configured is not None:
            return configured
        if self.machine.region in LISTED_REGIONS:
            listed = ON_DEMAND_PRICES.get(self.machine.instance_type)
            if listed is not None:
                return listed
        self._warn(
            f"no list price for {self.machine.instance_type} in {self.machine.region or '?'}: "
            "set ON_DEMAND_PRICE to count its cost"
        )
        return None

    def _spot_history(self, start: float) -> list[PricePoint]:
        with self._lock:
            now = time.time()
            if now - self._read_at < SPOT_PRICE_REFRESH and start >= self._covers_from:
                return self._history
            since = min(start, now) - SPOT_PRICE_REFRESH
            try:
                self._history = read_spot_history(self.config, self.machine, since)
            except BrendaError as error:
                self._warn(f"the spot price is not known ({error})")
                return self._history
            self._read_at, self._covers_from = now, since
            return self._history

    def _warn(self, problem: str) -> None:
        if not self._warned:
            log.warning("costs: %s", problem)
            self._warned = True


def read_spot_history(config: Config, machine: Machine, since: float) -> list[PricePoint]:
    """The spot prices of the machine's type in its zone since ``since``, with the price in force
    then (AWS returns the last change before the start time as well)."""
    with cloud_errors(f"reading the spot price history of {machine.instance_type}"):
        client = make_client("ec2", config)
        pages = client.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=[machine.instance_type],
            ProductDescriptions=["Linux/UNIX"],
            Filters=[{"Name": "availability-zone", "Values": [machine.zone]}],
            StartTime=datetime.fromtimestamp(since, UTC),
        )
        return [
            PricePoint(entry["Timestamp"].timestamp(), float(entry["SpotPrice"]))
            for page in pages
            for entry in page["SpotPriceHistory"]
            if entry.get("AvailabilityZone", machine.zone) == machine.zone
        ]


@dataclass(frozen=True)
class TaskCost:
    """What one task took and cost on one node."""

    task: str
    frames: float
    """Frames the task rendered (a tile counts as its share of a frame); 0 unless stored."""
    started: float
    wall_seconds: float
    """From taking the task to the end of its render (Blender starting and loading included)."""
    render_seconds: float
    """What Blender reported rendering its frames took."""
    dollars_per_hour: float | None
    dollars: float | None
    outcome: str = ""
    """stored, failed, or given back (the node stopped, or the job was cancelled)."""


@dataclass
class Ledger:
    """One node run's tasks of one job."""

    node: str
    machine: Machine
    working_on: str | None = None
    updated: float = 0.0
    tasks: list[TaskCost] = field(default_factory=list)
    working_since: float | None = None
    """When the task it is working on began."""
    dollars_per_hour: float | None = None
    """Its price when that task began (None: not known)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        """The ledger ``text`` holds; ValueError saying what is wrong when it is not one. Any
        task may have written it (a task can do what its node can), so every field is checked:
        a string or negative amount would crash or fool whoever adds ledgers up."""
        document = _object(json.loads(text), "the ledger")
        machine = _object(document.get("machine"), "'machine'")
        tasks = document.get("tasks", [])
        if not isinstance(tasks, list):
            raise ValueError(f"'tasks' is {tasks!r}, not a list")
        return cls(
            node=_text(document, "node"),
            machine=Machine(
                _text(machine, "market"),
                _text(machine, "instance_type", ""),
                _text(machine, "zone", ""),
            ),
            working_on=_optional_text(document, "working_on"),
            updated=_amount(document, "updated", 0.0),
            tasks=[_task_cost(_object(task, "a task")) for task in tasks],
            working_since=_optional_amount(document, "working_since"),
            dollars_per_hour=_optional_amount(document, "dollars_per_hour"),
        )


OUTCOMES = ("", "stored", "failed", "given back")


def _task_cost(task: dict[str, Any]) -> TaskCost:
    outcome = _text(task, "outcome", "")
    if outcome not in OUTCOMES:
        raise ValueError(f"'outcome' is {outcome!r}, not one of {', '.join(OUTCOMES[1:])}")
    return TaskCost(
        task=_text(task, "task"),
        frames=_amount(task, "frames"),
        started=_amount(task, "started"),
        wall_seconds=_amount(task, "wall_seconds"),
        render_seconds=_amount(task, "render_seconds"),
        dollars_per_hour=_optional_amount(task, "dollars_per_hour"),
        dollars=_optional_amount(task, "dollars"),
        outcome=outcome,
    )


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {value!r}, not a JSON object")
    return value


def _text(document: dict[str, Any], key: str, default: str | None = None) -> str:
    """The text at ``key``; ``default`` when there is none (else it is required)."""
    if key not in document and default is not None:
        return default
    value = document.get(key)
    if not isinstance(value, str):
        raise ValueError(f"'{key}' is {value!r}, not a text")
    return value


def _optional_text(document: dict[str, Any], key: str) -> str | None:
    return None if document.get(key) is None else _text(document, key)


def _amount(document: dict[str, Any], key: str, default: float | None = None) -> float:
    """A finite number, 0 or more (seconds, times, frames, dollars) at ``key``; ``default`` when
    there is none (else it is required)."""
    if key not in document and default is not None:
        return default
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"'{key}' is {value!r}, not a number")
    if value < 0:
        raise ValueError(f"'{key}' is {value!r}, not an amount (it is below 0)")
    return float(value)


def _optional_amount(document: dict[str, Any], key: str) -> float | None:
    return None if document.get(key) is None else _amount(document, key)


def stored_ledgers(store: OutputStore) -> list[Ledger]:
    """The ledgers nodes wrote into an output store (a farm's one queue's, a job's); BrendaError
    naming the first that is not a ledger: a sum that left it out would be wrong."""
    found = []
    for name in store.names(LEDGERS):
        text = store.get_text(name)
        if text is None:
            continue
        try:
            found.append(Ledger.from_json(text))
        except (ValueError, TypeError, KeyError) as error:
            raise BrendaError(
                f"The ledger {name} in {store} is not a node's ledger ({error}): delete it, it "
                "was not written by a node."
            ) from error
    return found


OWNER = re.compile(r"[A-Za-z0-9_+=,.@:-]+")
"""An AWS user id (``AROA...:i-0123...`` for a node's instance role), as S3 keys may hold it."""


def ledger_name(owner: str | None, node: str, started: float) -> str:
    """The ledger's name: first its writer's AWS user id (``owner``), which the node role's
    policy requires of the ledgers a node writes (no node writes another's), then the node run."""
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%d-%H%M%S")
    run = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', node)}-{stamp}.json"
    if owner is None:
        return f"{LEDGERS}{run}"
    if not OWNER.fullmatch(owner):
        raise ValueError(f"{owner!r} is not an AWS user id")
    return f"{LEDGERS}{owner}-{run}"


@dataclass(frozen=True)
class JobCost:
    """A job's cost so far, from its ledgers."""

    dollars: float
    """What the priced tasks cost, failed and given-back ones included: money spent."""
    unpriced_tasks: int
    """Tasks whose price was not known (their cost is not in ``dollars``)."""
    frames_rendered: float
    node_seconds: float
    render_seconds: float
    nodes: int
    """Nodes rendering it now."""
    running_dollars: float = 0.0
    """What the tasks rendering now will cost by their end, each taking at least as long as
    the job's typical stored task: money a budget must count before the nodes stop."""

    @property
    def per_frame(self) -> float | None:
        return self.dollars / self.frames_rendered if self.frames_rendered else None

    def projected(self, frames_left: int) -> float | None:
        """The total once the frames left are rendered at the cost per frame so far."""
        per_frame = self.per_frame
        return None if per_frame is None else self.dollars + per_frame * frames_left

    def eta_seconds(self, frames_left: int) -> float | None:
        """Seconds until the frames left are rendered by the nodes on it now."""
        if frames_left == 0:
            return 0.0
        if not self.frames_rendered or not self.nodes:
            return None
        return frames_left * self.node_seconds / self.frames_rendered / self.nodes


def job_cost(ledgers: Iterable[Ledger], *, running: int, now: float, stale: float) -> JobCost:
    """Add a job's ledgers up. Nodes on it: ledgers working on a task and written within
    ``stale`` seconds, at most the ``running`` tasks SQS counts (a node that died mid-task
    leaves its ledger working, but its lease runs out)."""
    ledgers = list(ledgers)
    tasks = [task for ledger in ledgers for task in ledger.tasks]
    working = [
        ledger
        for ledger in ledgers
        if ledger.working_on is not None and now - ledger.updated <= stale
    ]
    stored_seconds = [task.wall_seconds for task in tasks if task.outcome == "stored"]
    typical = statistics.median(stored_seconds) if stored_seconds else 0.0
    return JobCost(
        dollars=sum(task.dollars for task in tasks if task.dollars is not None),
        unpriced_tasks=sum(task.dollars is None for task in tasks),
        frames_rendered=sum(task.frames for task in tasks if task.outcome == "stored"),
        node_seconds=sum(task.wall_seconds for task in tasks),
        render_seconds=sum(task.render_seconds for task in tasks),
        nodes=min(len(working), running),
        running_dollars=sum(
            ledger.dollars_per_hour * max(now - ledger.working_since, typical) / 3600
            for ledger in working
            if ledger.dollars_per_hour is not None and ledger.working_since is not None
        ),
    )


def format_dollars(dollars: float | None, *, unpriced: bool = False) -> str:
    """Cents for sums of a cent or more; three significant digits below (a frame often costs a
    fraction of a cent). A ``+`` when some tasks' price is not known."""
    if dollars is None:
        return "?"
    text = f"${dollars:,.2f}" if dollars == 0 or dollars >= 0.01 else f"${dollars:.3g}"
    return text + ("+" if unpriced else "")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = timedelta(seconds=round(seconds))
    hours, rest = divmod(int(whole.total_seconds()), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
