# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-tool``: ssh and rsync on every node at once, and prune or measure the farm."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..core.config import Config, load_config
from ..core.errors import BrendaError, UsageError
from ..core.text import counted
from ..farm import fleet
from ..workstation.ssh import (
    REMOTE_COUNTS,
    REMOTE_STATE,
    Fanout,
    Host,
    HostResult,
    minute_of_hour_at_least,
    parse_host,
    performance,
    prune_choice,
    read_hosts_file,
)
from .common import ArgumentParser, add_common_options, configure_logging, run_command

PROG = "brenda-tool"
ABBREVIATIONS = {"s": "ssh", "r": "rsync", "i": "instances"}
COMMANDS = ("ssh", "rsync", "instances", "perf", "prune")

DESCRIPTION = """\
Run commands on every node of the farm at once, and shrink or measure the farm.

commands (options go before the command; what follows it is passed on):
  ssh ARGS...     run a command on every node (s)
  rsync ARGS...   rsync with every node; HOST in an argument becomes the node's address (r)
  instances       list the nodes: address, uptime, type (i)
  prune N         shut nodes down until N remain, those that finished a task most recently
                  first (-T terminates; -d only shows the ranking)
  perf            tasks per hour and per US$ by instance type
"""

EPILOG = """\
examples:
  brenda-tool ssh tail -n 20 /var/lib/brenda/log
  brenda-tool ssh 'echo shutdown > /var/lib/brenda/DONE'
  brenda-tool rsync -a HOST:/var/lib/brenda/log logs/
  brenda-tool -d prune 10
  brenda-tool perf

SSH host keys are pinned per farm in ~/.brenda/known_hosts-FARM (trust on first use).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(parser)
    parser.add_argument("-u", "--user", help="login user on the nodes (default AWS_USER)")
    parser.add_argument("-n", "--host", metavar="ADDRESS[:PORT]", help="this node only")
    parser.add_argument(
        "-H", "--hosts-file", type=Path, metavar="FILE", help="the nodes listed in FILE"
    )
    parser.add_argument(
        "-t",
        "--threshold",
        type=int,
        default=0,
        metavar="MINUTES",
        help="only nodes whose uptime is at least MINUTES past the hour",
    )
    parser.add_argument("--imatch", metavar="TYPE,...", help="only these instance types")
    parser.add_argument("-T", "--terminate", action="store_true", help="prune: terminate")
    parser.add_argument("-d", "--dry-run", action="store_true", help="prune: only show")
    parser.add_argument(
        "command",
        choices=(*COMMANDS, *ABBREVIATIONS),
        metavar="ssh|rsync|instances|perf|prune",
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def select_hosts(args: argparse.Namespace, config: Config) -> list[Host]:
    if args.host or args.hosts_file:
        hosts = [parse_host(args.host)] if args.host else read_hosts_file(args.hosts_file)
        if not hosts:
            raise BrendaError(f"The hosts file {args.hosts_file} names no host.")
        return hosts
    nodes, _ = fleet.farm_state(config)
    now = datetime.now(UTC)
    types = set(args.imatch.split(",")) if args.imatch else None
    return [
        Host(node.address, 22, node)
        for node in nodes
        if node.state == "running"
        and node.address
        and minute_of_hour_at_least(node.launched, args.threshold, now)
        and (types is None or node.type in types)
    ]


def report(results: list[HostResult]) -> int:
    failed = 0
    for result in results:
        for line in result.output.splitlines():
            print(f"[{result.host}] {line}")
        if result.error is not None:
            failed += 1
            print(f"{PROG}: {result.host}: {result.error}", file=sys.stderr)
    if failed:
        print(f"{PROG}: {failed} of {counted(len(results), 'node')} failed.", file=sys.stderr)
    return 1 if failed else 0


def remote(template: str, config: Config) -> str:
    return template.format(
        folder=shlex.quote(config.text("REMOTE_WORK_DIR")),
        pidfile=shlex.quote(config.text("REMOTE_PIDFILE")),
    )


def check_arguments(command: str, arguments: list[str]) -> None:
    """The command's own arguments, checked before anything is looked up."""
    if command == "prune" and (len(arguments) != 1 or not arguments[0].isdigit()):
        raise UsageError("prune needs the number of nodes to keep, like: brenda-tool prune 10.")
    if command == "ssh" and not arguments:
        raise UsageError("ssh needs a command to run, like: brenda-tool ssh uptime.")
    if command == "rsync" and not arguments:
        raise UsageError("rsync needs arguments, like: brenda-tool rsync -a HOST:log logs/.")
    if command in ("instances", "perf") and arguments:
        raise UsageError(
            f"{command} takes no arguments ({' '.join(arguments)}); options go before the "
            f"command, like: brenda-tool -c FILE {command}."
        )


def cmd_prune(args: argparse.Namespace, config: Config, fanout: Fanout, hosts: list[Host]) -> int:
    results = fanout.each(hosts, lambda host: fanout.ssh(host, remote(REMOTE_STATE, config)))
    answers = {result.host: result.output if result.error is None else "" for result in results}
    ranking, shutdown = prune_choice(answers, int(args.arguments[0]))
    print("Prune ranking (most recently finished first; BIG = node exited, -1 = no task yet):")
    for key, host in ranking:
        print(f"  {key:>11}  {host}")
    print("Shut down:" + ("".join(f" {host}" for host in shutdown) if shutdown else " none"))
    if args.dry_run or not shutdown:
        return 0
    strangers = [str(host) for host in shutdown if host.instance is None]
    if strangers:
        raise BrendaError(
            f"{', '.join(strangers)} are not known nodes of farm {config.text('FARM')}: "
            "prune shuts down farm nodes only (leave out -n/-H)."
        )
    fleet.shut_down(config, [host.instance for host in shutdown], terminate=args.terminate)
    print(("Terminated" if args.terminate else "Stopped") + f" {counted(len(shutdown), 'node')}.")
    return 0


def cmd_perf(config: Config, fanout: Fanout, hosts: list[Host]) -> int:
    results = fanout.each(hosts, lambda host: fanout.ssh(host, remote(REMOTE_COUNTS, config)))
    _, requests = fleet.farm_state(config)
    prices = {request.id: request.price for request in requests}
    records = []
    for result in results:
        node = result.host.instance
        numbers = result.output.split()
        if node is None or result.error is not None or len(numbers) != 2:
            continue
        price = prices.get(node.spot_request) if node.spot_request else None
        records.append((node.type, node.launched, int(numbers[0]), int(numbers[1]), price))
    if not records:
        print("No node has finished a task yet.")
        return 0
    table = performance(records)
    total_tasks = sum(item.tasks for item in table)
    total_hours = sum(item.hours for item in table)
    farm_rate = total_tasks / total_hours * sum(item.nodes for item in table)
    print(f"Tasks per hour (farm: {farm_rate:.2f})")
    for item in table:
        nodes = counted(item.nodes, "node")
        print(f"  {item.instance_type:<14} {item.tasks_per_hour:10.2f}  ({nodes})")
    print("Tasks per US$")
    for item in sorted(table, key=lambda entry: entry.tasks_per_dollar or 0, reverse=True):
        value = f"{item.tasks_per_dollar:10.2f}" if item.tasks_per_dollar else "   unknown"
        print(f"  {item.instance_type:<14} {value}")
    return 0


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    config = load_config(args.config)
    command = ABBREVIATIONS.get(args.command, args.command)
    check_arguments(command, args.arguments)
    hosts = select_hosts(args, config)
    if not hosts:
        print(f"Farm {config.text('FARM')} has no running nodes.")
        return 0
    if command == "instances":
        now = datetime.now(UTC)
        for host in hosts:
            node = host.instance
            detail = f"  up {str(now - node.launched).split('.')[0]}  {node.type}" if node else ""
            print(f"{host}{detail}")
        return 0
    user = args.user or config.text("AWS_USER")
    fanout = Fanout(config, user, config.integer("TOOL_THREADS"))
    if command == "ssh":
        line = " ".join(args.arguments)
        return report(fanout.each(hosts, lambda host: fanout.ssh(host, line)))
    if command == "rsync":
        return report(fanout.each(hosts, lambda host: fanout.rsync(host, args.arguments)))
    if command == "prune":
        return cmd_prune(args, config, fanout, hosts)
    return cmd_perf(config, fanout, hosts)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
