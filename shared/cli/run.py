# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-run``: rent the render nodes (spot or on-demand EC2) and watch or stop them."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from ..core.config import Config, load_config
from ..core.errors import UsageError
from ..core.text import counted
from ..farm import fleet, image, releases
from ..farm.deadline import DeadlinePlan
from ..jobs.costs import format_dollars
from ..services import farm as farm_service
from ..services.farm import FleetOrder, NodeOrder
from .common import (
    ArgumentParser,
    add_common_options,
    configure_logging,
    print_plan,
    progress_bar,
    run_command,
    usage_errors,
)

PROG = "brenda-run"
COMMANDS = (
    "init",
    "fleet",
    "spot",
    "demand",
    "price",
    "status",
    "stop",
    "cancel",
    "script",
    "blender",
    "image",
)

DESCRIPTION = """\
Launch and manage the farm's EC2 nodes. Everything is tagged brenda:farm=FARM (default
"brenda"); status, stop and cancel act on that farm only.

commands:
  init     one-time set-up: key pair, security group admitting SSH from your address only,
           the nodes' IAM role (least privilege; no AWS keys on nodes)
  fleet    a fleet that sizes itself: an Auto Scaling group of 0 to -N spot nodes of the
           INSTANCE_TYPES (--types), following the work queue's or the active jobs'
           backlog (scale to zero); --budget US$ stops it at a spend, --finish-by TIME sizes
           it to end in time (and says the cost first); cut to the spot vCPU quota
  spot     launch spot nodes (-N count, -p max price, -P persistent, -i type, -a AMI, -z zone)
  demand   launch on-demand nodes (they terminate when they shut down)
  price    current spot price per availability zone (--gpu: of the GPU instance types)
  status   the farm's nodes (uptime, address) and spot requests
  stop     terminate the farm's nodes with -T (cancelling their spot requests first)
  cancel   cancel the farm's open spot requests
  script   print the user data a node boots with
  image    build the node image on EC2 from a stock Ubuntu 24.04 (Blender BLENDER_VERSIONS,
           or --blender-versions), tag it, print its id; AMI_ID=latest then uses it
  blender  add VERSION: put Blender's official Linux release in the farm's store
           (BLENDER_RELEASES), checked against blender.org's SHA-256; a node that lacks a
           job's version fetches it from there once
"""

EPILOG = """\
examples:
  brenda-run init
  brenda-run price
  brenda-run -N 50 --types c7i.2xlarge,c6i.2xlarge,c6a.2xlarge fleet
  brenda-run --finish-by 2026-11-27T18:00 --budget 80 -d fleet
  brenda-run price --gpu                 GPU types for --device CUDA/OPTIX jobs, with prices
  brenda-run -N 20 -p 0.25 -d spot       show what would be launched, launch nothing
  brenda-run -N 20 -p 0.25 -z us-east-1b spot
  brenda-run status
  brenda-run -T stop
  brenda-run blender add 5.2.4           nodes with only 4.5 then render 5.2 jobs too
  brenda-run --blender-versions "4.5.5 5.2.4" image
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="|".join(COMMANDS))
    parser.add_argument("target", nargs="*", metavar="add VERSION", help="blender: add VERSION")
    add_common_options(parser)
    parser.add_argument("-a", "--ami", metavar="AMI", help="node image (default AMI_ID)")
    parser.add_argument(
        "-N",
        "--n-instances",
        type=int,
        metavar="N",
        help="number of nodes (fleet: at most; default 1, or what --finish-by needs)",
    )
    parser.add_argument(
        "-i", "--instance-type", metavar="TYPE", help="instance type (default INSTANCE_TYPE)"
    )
    parser.add_argument(
        "-p", "--price", metavar="US$", help="spot: max price per hour (default BID_PRICE)"
    )
    parser.add_argument("-P", "--persistent", action="store_true", help="spot: persistent request")
    parser.add_argument(
        "-z", "--zone", metavar="ZONE|SUBNET", help="availability zone or subnet id"
    )
    parser.add_argument("-T", "--terminate", action="store_true", help="stop: terminate the nodes")
    parser.add_argument(
        "-d", "--dry-run", action="store_true", help="print what would happen; spend nothing"
    )
    parser.add_argument(
        "--gpu", action="store_true", help="price: the GPU instance types, spot and on-demand"
    )
    parser.add_argument(
        "--types", metavar="T1,T2", help="fleet: instance types to mix (default INSTANCE_TYPES)"
    )
    parser.add_argument(
        "--on-demand-base", type=int, default=0, metavar="N", help="fleet: N on-demand nodes"
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="US$",
        help="fleet: stop starting nodes once the farm has spent this much",
    )
    parser.add_argument(
        "--finish-by",
        metavar="TIME",
        help="fleet: as many nodes as end the work by TIME (2026-11-27T18:00, 18:00, +6h), "
        "from the seconds measured so far; says the cost first",
    )
    parser.add_argument(
        "--blender-versions",
        metavar="'X.Y.Z ...'",
        help="image: the Blender releases to install (default BLENDER_VERSIONS)",
    )
    parser.add_argument("--no-ssh-keys", action="store_true", help="init: skip the key pair")
    parser.add_argument(
        "--no-security-group", action="store_true", help="init: skip the security group"
    )
    return parser


def cmd_launch(args: argparse.Namespace, config: Config) -> int:
    order = NodeOrder(
        spot=args.command == "spot",
        count=1 if args.n_instances is None else args.n_instances,
        instance_type=args.instance_type,
        image=args.ami,
        price=args.price,
        persistent=args.persistent,
        placement=args.zone,
    )
    plan, notes = farm_service.plan_nodes(config, order)
    for note in notes:
        print(f"Note: {note}")
    print_plan(plan.summary(), plan.user_data, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    ids = farm_service.launch_nodes(config, plan)
    what = "spot request" if plan.persistent else "node"
    print(f"Launched {counted(len(ids), what)}: {' '.join(ids)}")
    return 0


def cmd_status(config: Config) -> int:
    for line in farm_service.status(config).lines(datetime.now(UTC)):
        print(line)
    return 0


def cmd_fleet(args: argparse.Namespace, config: Config) -> int:
    order = FleetOrder(
        maximum=1 if args.n_instances is None else args.n_instances,
        types=args.types,
        on_demand_base=args.on_demand_base,
        image=args.ami,
        budget=args.budget,
    )
    finish: DeadlinePlan | None = None
    if args.finish_by is None:
        plan, notes = farm_service.plan_fleet(config, order)
    else:
        plan, notes, finish = farm_service.plan_fleet_by(
            config, order, args.finish_by, limit=args.n_instances, now=datetime.now(UTC)
        )
    for note in notes:
        print(f"Note: {note}")
    if finish is not None:
        print(finish.summary())
        dollars = finish.dollars
        if args.budget and dollars is not None and dollars > args.budget:
            print(
                f"Note: that is more than the budget of {format_dollars(args.budget)}: the "
                "fleet stops at the budget, before the end."
            )
    for line in plan.summary():
        print(line)
    if args.dry_run:
        print("Dry run: nothing was made.")
        return 0
    group = farm_service.make_fleet(config, plan)
    print(f"Fleet {group} is ready; 'brenda-run stop' takes it to zero.")
    return 0


def cmd_price(args: argparse.Namespace, config: Config) -> int:
    if args.gpu:
        print("GPU instance types (for jobs on CUDA or OPTIX), US$ per hour:")
        for row in fleet.gpu_prices(config):
            spot = f"{row.spot:.4f} in {row.zone}" if row.spot is not None else "-"
            demand = f"{row.on_demand:.4f}" if row.on_demand is not None else "-"
            print(f"  {row.instance_type:<14} spot {spot:<24} on-demand {demand}")
        return 0
    instance_type = args.instance_type or config.text("INSTANCE_TYPE")
    prices = fleet.spot_prices(config, instance_type)
    print(f"Spot price of {instance_type}:")
    for zone, (price, stamp) in prices.items():
        print(f"  {zone:<16} US$ {price:.4f}/hour  ({stamp:%Y-%m-%d %H:%M} UTC)")
    return 0


def cmd_blender(args: argparse.Namespace, config: Config) -> int:
    if len(args.target) != 2 or args.target[0] != "add":
        raise UsageError("blender needs add VERSION, like: brenda-run blender add 5.2.4.")
    with progress_bar("bytes") as progress:
        done = releases.add_release(config, args.target[1], progress, dry_run=args.dry_run)
    print(f"Dry run: {done}." if args.dry_run else f"Stored Blender {args.target[1]} as {done}.")
    return 0


def cmd_image(args: argparse.Namespace, config: Config) -> int:
    if args.blender_versions is not None:
        with usage_errors():
            image.checked_versions(args.blender_versions)
    versions = args.blender_versions or config.text("BLENDER_VERSIONS")
    plan = image.plan_image(config, versions, args.instance_type)
    for line in plan.lines():
        print(line)
    if args.dry_run:
        print("Dry run: nothing was launched.")
        return 0

    def pause(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    made = image.build_image(config, plan, wait=pause, say=print)
    print(f"Image {made} is ready: AMI_ID={made}, or AMI_ID=latest for the farm's newest.")
    return 0


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    config = load_config(args.config)
    command = args.command
    if args.target and command != "blender":
        raise UsageError(f"{command} takes no arguments ({' '.join(args.target)}).")
    if command == "blender":
        return cmd_blender(args, config)
    if command == "image":
        return cmd_image(args, config)
    if command in ("spot", "demand"):
        return cmd_launch(args, config)
    if command == "fleet":
        return cmd_fleet(args, config)
    if command == "script":
        print(fleet.user_data(config), end="")
        return 0
    if command == "status":
        return cmd_status(config)
    if command == "price":
        return cmd_price(args, config)
    if command == "stop":
        stopped = farm_service.stop(
            config,
            terminate=args.terminate,
            reason="stopped by brenda-run stop",
            dry_run=args.dry_run,
        )
        if stopped.group is not None:
            print(
                f"Fleet {stopped.group}: 0 nodes wanted; "
                f"{len(stopped.draining)} node(s) finish their task and go."
            )
        verb = "TERMINATE" if args.terminate else "STOP"
        print(
            f"{verb} {' '.join(stopped.nodes) if stopped.nodes else '(no nodes)'}"
            + (" (dry run)" if args.dry_run else "")
        )
        return 0
    if command == "cancel":
        ids = farm_service.cancel_requests(config, dry_run=args.dry_run)
        print(
            f"CANCEL {' '.join(ids) if ids else '(no open requests)'}"
            + (" (dry run)" if args.dry_run else "")
        )
        return 0
    result = fleet.init(
        config, key_pair=not args.no_ssh_keys, security_group=not args.no_security_group
    )
    print(f"Key pair:          {result.key}")
    print(f"Security group:    {result.security_group} (SSH from {result.ssh_from} only)")
    print(f"Instance profile:  {result.profile}; its nodes may")
    for line in result.grants:
        print(f"  - {line}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
