# SPDX-License-Identifier: GPL-3.0-or-later
"""The farm's nodes: launch a number of them, make or resize its self-sizing fleet, stop them,
and say how they stand. No bpy module use.

``brenda-run`` (spot, demand, fleet, stop, cancel, status) and the add-on's Launch Nodes and
Stop Farm call these with the same orders: Launch Nodes with a self-sizing fleet and
``brenda-run fleet`` given the same settings make the same launch template and Auto Scaling
group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..aws.ec2 import Instance, SpotRequest
from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..core.text import counted
from ..farm import autoscale, deadline, fleet
from ..farm.autoscale import FleetPlan, GroupState
from ..farm.deadline import DeadlinePlan
from ..farm.fleet import LaunchPlan, TypePrice


@dataclass(frozen=True)
class FleetOrder:
    """A self-sizing fleet as asked for."""

    maximum: int
    types: str | None = None
    """Instance types to mix, comma-separated; None: INSTANCE_TYPES, else INSTANCE_TYPE."""
    on_demand_base: int = 0
    image: str | None = None
    """The nodes' image; None: AMI_ID."""
    budget: float | None = None
    """US$ the farm may spend before the fleet stops growing; None: no budget."""


def plan_fleet(config: Config, order: FleetOrder) -> tuple[FleetPlan, tuple[str, ...]]:
    """The fleet to make, cut to the account's spot quota, and what to say about the cut."""
    return autoscale.fit_quota(
        config,
        autoscale.plan_fleet(
            config,
            maximum=order.maximum,
            types=order.types,
            on_demand_base=order.on_demand_base,
            image=order.image,
            budget=order.budget,
        ),
    )


def plan_fleet_by(
    config: Config, order: FleetOrder, finish_by: str, *, limit: int | None, now: datetime
) -> tuple[FleetPlan, tuple[str, ...], DeadlinePlan]:
    """The fleet of as many nodes as end the farm's work by ``finish_by`` (2026-11-27T18:00,
    18:00, +6h), from the task seconds measured so far, at most ``limit`` (-N); what to say
    about its quota; and the deadline's plan (nodes, cost). Refused when more nodes are needed
    than ``limit`` or the quota allows."""
    when = deadline.parse_deadline(finish_by, now)
    types = autoscale.fleet_types(config, order.types)
    finish = deadline.plan_deadline(
        deadline.work_left(config), when, now, autoscale.cautious_spot_price(config, types)
    )
    if limit is not None and finish.nodes > limit:
        raise UsageError(
            f"{finish.summary()}: more than -N {limit}; raise -N or give a later time."
        )
    plan, notes = plan_fleet(config, replace(order, maximum=finish.nodes))
    if plan.maximum < finish.nodes:
        raise BrendaError(" ".join([f"{finish.summary()}, more than the quota allows.", *notes]))
    return plan, notes, finish


def make_fleet(config: Config, plan: FleetPlan) -> str:
    """Make the farm's Auto Scaling group and launch template as planned, or change them to
    it; returns the group's name."""
    return autoscale.ensure_fleet(config, plan)


def start_fleet(config: Config, order: FleetOrder) -> str:
    """Make (or resize) the fleet; says what was made, in a sentence."""
    plan, notes = plan_fleet(config, order)
    group = make_fleet(config, plan)
    budget = f", stopping at US$ {plan.budget:.2f} spent" if plan.budget else ""
    return " ".join([f"Fleet {group}: up to {plan.maximum} nodes{budget}.", *notes])


@dataclass(frozen=True)
class NodeOrder:
    """A number of nodes as asked for."""

    spot: bool
    count: int
    instance_type: str | None = None
    """None: INSTANCE_TYPE."""
    image: str | None = None
    """None: AMI_ID."""
    price: str | None = None
    """The spot price to pay at most, US$ an hour; None: BID_PRICE, else the on-demand price."""
    persistent: bool = False
    placement: str | None = None
    """An availability zone or subnet id; None: EC2 chooses."""


def plan_nodes(config: Config, order: NodeOrder) -> tuple[LaunchPlan, tuple[str, ...]]:
    """The nodes to launch, cut to the account's spot quota, and what to say about the cut."""
    return fleet.fit_quota(
        config,
        fleet.plan_launch(
            config,
            spot=order.spot,
            count=order.count,
            instance_type=order.instance_type,
            image=order.image,
            price=order.price,
            persistent=order.persistent,
            placement=order.placement,
        ),
    )


def launch_nodes(config: Config, plan: LaunchPlan) -> list[str]:
    """Launch the planned nodes; returns their ids (a persistent plan's spot requests)."""
    return fleet.launch(config, plan)


def start_nodes(config: Config, order: NodeOrder) -> str:
    """Launch the nodes; says how many, in a sentence."""
    plan, notes = plan_nodes(config, order)
    ids = launch_nodes(config, plan)
    return " ".join([f"Launched {counted(len(ids), 'node')}.", *notes])


@dataclass(frozen=True)
class LaunchPrices:
    """What nodes cost now, shown before launching them."""

    instance_type: str
    spot: float | None
    """The type's cheapest spot price now, US$ an hour; None where AWS has none."""
    gpu_offers: list[TypePrice]
    """The GPU types, for a scene that renders on a GPU the type has not."""


def launch_prices(config: Config, instance_type: str | None, device: str) -> LaunchPrices:
    """The spot price of ``instance_type`` (None: INSTANCE_TYPE), and the GPU types' prices
    when ``device`` (the scene's Cycles device) is a GPU that type has not."""
    chosen = instance_type or config.text("INSTANCE_TYPE")
    cheapest = fleet.cheapest_spot_price(config, chosen)
    wants_gpu = device != "CPU" and chosen not in fleet.GPU_INSTANCE_TYPES
    return LaunchPrices(
        chosen,
        cheapest[0] if cheapest else None,
        fleet.gpu_prices(config) if wants_gpu else [],
    )


@dataclass(frozen=True)
class Stopped:
    """What stopping the farm did (or would do, in a dry run)."""

    group: str | None
    """The fleet taken to no nodes; None: the farm has none (or a dry run)."""
    draining: tuple[str, ...]
    """The fleet's nodes left to finish their task and go."""
    nodes: tuple[str, ...]
    """The nodes terminated (or stopped)."""
    cancelled: tuple[str, ...]
    """The open spot requests cancelled."""


def stop(
    config: Config,
    *,
    terminate: bool,
    reason: str,
    cancel_requests: bool = False,
    dry_run: bool = False,
) -> Stopped:
    """Take the fleet to no nodes (each draining node tagged with ``reason``), then stop the
    farm's other nodes, or terminate all of them (``terminate``: their spot requests cancelled,
    draining nodes too); ``cancel_requests`` cancels its open spot requests as well. The jobs
    stay for the next nodes."""
    draining = None if dry_run else autoscale.stop_fleet(config, reason)
    nodes = fleet.stop(config, terminate=terminate, dry_run=dry_run, draining=draining or ())
    cancelled = fleet.cancel(config, dry_run=dry_run) if cancel_requests else []
    group = autoscale.group_name(config.text("FARM")) if draining is not None else None
    return Stopped(group, tuple(draining or ()), tuple(nodes), tuple(cancelled))


def cancel_requests(config: Config, *, dry_run: bool = False) -> list[str]:
    """Cancel the farm's open spot requests (its running nodes keep running)."""
    return fleet.cancel(config, dry_run=dry_run)


@dataclass(frozen=True)
class FarmStatus:
    """The farm's fleet, nodes and spot requests, as ``brenda-run status`` shows them."""

    farm: str
    group: GroupState | None
    nodes: list[Instance]
    requests: list[SpotRequest]

    def lines(self, now: datetime) -> list[str]:
        lines = self.group.lines() if self.group is not None else []
        if not self.nodes and not self.requests:
            return [*lines, f"Farm {self.farm} has no nodes and no spot requests."]
        if self.nodes:
            lines.append(f"Nodes of farm {self.farm}:")
            for node in self.nodes:
                market = "spot" if node.spot else "on-demand"
                lines.append(
                    f"  {node.id}  {node.type:<12} {market:<9} {node.state:<8} "
                    f"up {uptime(node.uptime(now)):>10}  {node.address}"
                )
        if self.requests:
            lines.append(f"Spot requests of farm {self.farm}:")
            for request in self.requests:
                price = f"US$ {request.price}" if request.price else "-"
                lines.append(
                    f"  {request.id}  {request.kind:<10} {request.state:<9} {price:<10} "
                    f"{request.status}  {request.instance or ''}".rstrip()
                )
        return lines


def uptime(delta: timedelta) -> str:
    return str(timedelta(seconds=int(delta.total_seconds())))


def status(config: Config) -> FarmStatus:
    """The farm's fleet (if it has one), nodes and spot requests now."""
    nodes, requests = fleet.farm_state(config)
    return FarmStatus(config.text("FARM"), autoscale.group_state(config), nodes, requests)
