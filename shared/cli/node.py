# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-node``: the worker. Takes tasks from its farm's jobs (or a ``WORK_QUEUE``) and renders
them until no work is left (``DONE=exit``), forever (``DONE=poll``), or then powers the machine off
(``DONE=shutdown``). SIGTERM, SIGINT and spot interruption notices stop it cleanly: Blender is
stopped and the task goes back to the queue at once. Stopped by SIGINT (Ctrl-C) it exits with
status 130, as every command does; by SIGTERM or a notice, 0 (how a node is meant to end)."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from brenda_node.node import Node, Stopper
from brenda_node.power import shut_down

from ..core.config import load_config, node_required
from ..core.errors import BrendaError
from .common import (
    EXIT_DONE,
    EXIT_INTERRUPTED,
    ArgumentParser,
    add_common_options,
    help_text,
    run_command,
)

PROG = "brenda-node"

EPILOG = """\
settings (configuration file or BRENDA_* environment): FARM_OUTPUTS (a node of the farm's
jobs) or WORK_QUEUE, BLENDER_PROJECT and RENDER_OUTPUT (a node of one queue), required; WORK_DIR,
DONE, BLENDER, BLENDERS, JOB_REFRESH, VISIBILITY_TIMEOUT, VISIBILITY_TIMEOUT_REASSERT,
RECEIVE_WAIT, POLL_PAUSE, SHUTDOWN_COMMAND, RUNNING_ON_EC2, METADATA_URL, METADATA_POLL,
N_RETRIES, ERROR_PAUSE, RESET_PERIOD.

files in WORK_DIR: DONE (change it to steer a running node), task_count, task_last, log,
status.json, brenda.pid.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=help_text(__doc__),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(parser)
    parser.add_argument(
        "-S", "--shutdown", action="store_true", help="power the machine off when done"
    )
    parser.add_argument(
        "-d", "--dry-run", action="store_true", help="fetch the project (a queue's node), then stop"
    )
    parser.add_argument("-l", "--log", metavar="FILE", help="log file (default: WORK_DIR/log)")
    parser.add_argument(
        "-p", "--pidfile", metavar="FILE", help="pid file (default: WORK_DIR/brenda.pid)"
    )
    return parser


def configure_node_logging(log_file: Path) -> None:
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    for name in ("shared", "brenda_node"):
        logger = logging.getLogger(name)
        logger.handlers = list(handlers)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"DONE": ("shutdown", "-S")} if args.shutdown else None
    config = load_config(args.config, overrides=overrides)
    # Nothing is written, not even the log, before the node knows it can work.
    for key in node_required(config):
        if config.get(key) is None:
            raise config.missing(key)
    work = Path(config.text("WORK_DIR")).expanduser().resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrendaError(f"WORK_DIR {work} cannot be created: {error.strerror}.") from error
    configure_node_logging(Path(args.log) if args.log else work / "log")
    pidfile = Path(args.pidfile) if args.pidfile else work / "brenda.pid"
    held = lock_pid_file(pidfile, work)
    stopper = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stopper.stop(signal.Signals(number).name))
    log = logging.getLogger("brenda_node")
    try:
        node = Node(config, work, stopper)
        outcome = node.run(dry_run=args.dry_run)
        log.info("done (%d tasks completed): %s", node.state.tasks_done, outcome)
        if outcome == "shutdown":
            shut_down(config)
    finally:
        pidfile.unlink(missing_ok=True)
        os.close(held)
    return EXIT_INTERRUPTED if stopper.reason == signal.SIGINT.name else EXIT_DONE


def lock_pid_file(pidfile: Path, work: Path) -> int:
    """Lock ``pidfile`` and write this process's id in it; the open file, which holds the lock
    until this process ends. A lock, unlike the file, dies with its process however it ends
    (SIGKILL, a crash): a file left behind stops no later node, a running node stops any other."""
    try:
        held = os.open(pidfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise BrendaError(f"The pid file {pidfile} cannot be written: {error.strerror}.") from error
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.read(held, 32).decode(errors="replace").strip() or "?"
        os.close(held)
        raise BrendaError(
            f"Another node (pid {holder}) is running in {work}: its pid file {pidfile} is locked."
        ) from error
    os.ftruncate(held, 0)
    os.write(held, f"{os.getpid()}\n".encode())
    return held


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
